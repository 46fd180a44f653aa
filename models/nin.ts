// Network-in-Network as the RotNet reference code builds it (architectures/NetworkInNetwork.py):
// 3 to 5 stages of conv-BN-ReLU blocks with widths 192/160/96, stage 1 ending in max-pooling,
// stage 2 in average pooling, then global average pooling and a linear classifier. Parameter
// names follow the reference: conv1.Block1_ConvB1.layers.Conv.weight. Stages for features():
// conv1 … convN, classifier.
import * as F from '../src/functional.js';
import { ReLU } from '../src/nn/activation.js';
import { Sequential } from '../src/nn/container.js';
import { Conv2d } from '../src/nn/conv.js';
import { FeatureNet } from '../src/nn/feature-net.js';
import { assign, constant, kaimingNormal, type InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm2d } from '../src/nn/normalization.js';
import { AvgPool2d, MaxPool2d } from '../src/nn/pooling.js';
import type { Tensor } from '../src/tensor.js';

/** Conv (k×k, 'same' padding, no bias) → BatchNorm → ReLU, under `layers` as the reference. */
export class NinBlock extends Module {
  readonly layers: Sequential;

  constructor(cin: number, cout: number, k: number, init: InitOptions = {}) {
    super();
    this.layers = this.registerModule(
      'layers',
      new Sequential({
        Conv: new Conv2d(cin, cout, k, { padding: (k - 1) / 2, bias: false, ...init }),
        BatchNorm: new BatchNorm2d(cout),
        ReLU: new ReLU(),
      }),
    );
  }

  override forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

export interface NinOptions extends InitOptions {
  numClasses?: number;
  inChannels?: number;
  /** 3, 4 or 5 stages (RotNet's NIN-3 … NIN-5). */
  stages?: number;
  /**
   * Average-pool after stage 3 when there are more than 3 stages: the reference's default
   * (use_avg_on_conv3), but its CIFAR RotNet configs turn it off, so NIN-4's conv3 and conv4
   * keep conv2's 8×8 at 32 px.
   */
  useAvgOnConv3?: boolean;
}

export class NIN extends FeatureNet {
  readonly numChannels = 192;

  constructor({ numClasses = 4, inChannels = 3, stages = 4, useAvgOnConv3 = true, ...init }: NinOptions = {}) {
    super();
    if (!Number.isInteger(stages) || stages < 3 || stages > 5) throw new Error(`NIN: stages must be 3, 4 or 5, got ${stages}`);
    const [c1, c2, c3] = [192, 160, 96];
    const pool = (kind: 'max' | 'avg') => (kind === 'max' ? new MaxPool2d(3, { stride: 2, padding: 1 }) : new AvgPool2d(3, { stride: 2, padding: 1 }));
    const specs: Record<string, Module>[] = [
      { Block1_ConvB1: new NinBlock(inChannels, c1, 5, init), Block1_ConvB2: new NinBlock(c1, c2, 1, init), Block1_ConvB3: new NinBlock(c2, c3, 1, init), Block1_MaxPool: pool('max') },
      { Block2_ConvB1: new NinBlock(c3, c1, 5, init), Block2_ConvB2: new NinBlock(c1, c1, 1, init), Block2_ConvB3: new NinBlock(c1, c1, 1, init), Block2_AvgPool: pool('avg') },
    ];
    for (let s = 3; s <= stages; s++) {
      const spec: Record<string, Module> = {
        [`Block${s}_ConvB1`]: new NinBlock(c1, c1, 3, init),
        [`Block${s}_ConvB2`]: new NinBlock(c1, c1, 1, init),
        [`Block${s}_ConvB3`]: new NinBlock(c1, c1, 1, init),
      };
      if (s === 3 && stages > 3 && useAvgOnConv3) spec.Block3_AvgPool = pool('avg');
      specs.push(spec);
    }
    specs.forEach((spec, i) => {
      const block = this.registerModule(`conv${i + 1}`, new Sequential(spec));
      this.stage(`conv${i + 1}`, (x) => block.forward(x));
    });
    const classifier = this.registerModule('classifier', new Sequential({ Classifier: new Linear(c1, numClasses, init) }));
    // GlobalAveragePooling then the linear classifier, as the reference's last block.
    this.stage('classifier', (x) => classifier.forward(F.mean(F.flatten(x, 2), 2)));
    // The reference: conv weights N(0, 2 / (k·k·out)), linear biases zero.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) assign(m.weight, kaimingNormal(m.weight.shape, 'fan_out', init));
      if (m instanceof Linear && m.bias) assign(m.bias, constant(m.bias.shape, 0));
    }
  }
}
