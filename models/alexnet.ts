// AlexNet as the RotNet reference code builds it (FeatureLearningRotNet architectures/AlexNet.py):
// batch norm after every conv and FC layer, convolutions with bias (nn.Conv2d's default), FC
// layers without bias; convolution weights initialised N(0, 2 / (k·k·out)) as the reference's
// NIN. Stages for features(): conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5, fc_block,
// classifier.
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import { Conv2d } from '../src/nn/conv.js';
import { FeatureNet } from '../src/nn/feature-net.js';
import { assign, constant, kaimingNormal, type InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/normalization.js';
import { Module } from '../src/nn/module.js';
import { MaxPool2d } from '../src/nn/pooling.js';

export interface AlexNetOptions extends InitOptions {
  numClasses?: number;
  inChannels?: number;
  /** Input side in pixels; sets the pool5 feature count (224 gives 6×6×256). */
  imageSize?: number;
}

const convOut = (size: number, k: number, s: number, p: number) => Math.floor((size + 2 * p - k) / s) + 1;

/** The side of pool5's (and of conv3…conv5's, before it) feature maps for an input side. */
export function alexnetSides(imageSize: number): { conv5: number; pool5: number } {
  // conv1 (11×11 stride 4, padding 2), then 3×3 stride-2 max-pools after conv1, conv2 and conv5.
  let side = convOut(imageSize, 11, 4, 2);
  for (let i = 0; i < 2; i++) side = convOut(side, 3, 2, 0);
  return { conv5: side, pool5: convOut(side, 3, 2, 0) };
}

/** RotNet AlexNet's convolutional stages conv1 … pool5, named as its state dict (conv1.0.weight …). */
export function alexnetTrunk(inChannels: number, imageSize: number, init: InitOptions): [string, Sequential | MaxPool2d][] {
  // Checked before any layer allocates GPU memory.
  if (alexnetSides(imageSize).pool5 < 1) throw new Error(`AlexNet: a ${imageSize}-pixel input is too small (pool5 would be empty); use at least 63 pixels`);
  const block = (cin: number, cout: number, k: number, stride: number, padding: number) =>
    // The bias is redundant under batch norm, but the reference has it (and so do its checkpoints).
    new Sequential(new Conv2d(cin, cout, k, { stride, padding, ...init }), new BatchNorm2d(cout), new ReLU());
  const pool = () => new MaxPool2d(3, { stride: 2 });
  return [
    ['conv1', block(inChannels, 64, 11, 4, 2)], ['pool1', pool()], ['conv2', block(64, 192, 5, 1, 2)], ['pool2', pool()],
    ['conv3', block(192, 384, 3, 1, 1)], ['conv4', block(384, 256, 3, 1, 1)], ['conv5', block(256, 256, 3, 1, 1)], ['pool5', pool()],
  ];
}

/** Convolution weights N(0, 2 / (k·k·out)) and zero linear biases, as the RotNet reference. */
export function alexnetInit(net: Module, init: InitOptions): void {
  for (const [, m] of net.namedModules()) {
    if (m instanceof Conv2d) assign(m.weight, kaimingNormal(m.weight.shape, 'fan_out', init));
    if (m instanceof Linear && m.bias) assign(m.bias, constant(m.bias.shape, 0));
  }
}

export class AlexNet extends FeatureNet {
  constructor({ numClasses = 4, inChannels = 3, imageSize = 224, ...init }: AlexNetOptions = {}) {
    super();
    const named: [string, Module][] = alexnetTrunk(inChannels, imageSize, init);
    const side = alexnetSides(imageSize).pool5;
    const pool5 = 256 * side * side;
    named.push([
      'fc_block',
      new Sequential(
        new Flatten(),
        new Linear(pool5, 4096, { bias: false, ...init }),
        new BatchNorm1d(4096),
        new ReLU(),
        new Linear(4096, 4096, { bias: false, ...init }),
        new BatchNorm1d(4096),
        new ReLU(),
      ),
    ]);
    named.push(['classifier', new Sequential(new Linear(4096, numClasses, init))]);
    for (const [name, m] of named) {
      this.registerModule(name, m);
      this.stage(name, (x) => m.forward(x));
    }
    alexnetInit(this, init);
  }
}
