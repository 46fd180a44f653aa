// ResNet-18/34/50 with torchvision's exact structure, parameter names and initialisation
// (torchvision.models.resnet), plus a CIFAR stem (3×3 stride-1 conv, no max-pool) for 28–64 px
// images. Stages for features(): conv1, layer1…layer4, avgpool, fc.
import * as F from '../src/functional.js';
import { Conv2d } from '../src/nn/conv.js';
import { Sequential } from '../src/nn/container.js';
import { FeatureNet } from '../src/nn/feature-net.js';
import { assign, kaimingNormal, type InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm2d } from '../src/nn/normalization.js';
import { AdaptiveAvgPool2d, MaxPool2d } from '../src/nn/pooling.js';
import type { Tensor } from '../src/tensor.js';

// Each layer takes the model's generator, so that its construction draws from nothing else.
const conv3x3 = (cin: number, cout: number, stride: number, init: InitOptions) => new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false, ...init });
const conv1x1 = (cin: number, cout: number, stride: number, init: InitOptions) => new Conv2d(cin, cout, 1, { stride, bias: false, ...init });

interface Block extends Module {
  forward(x: Tensor): Tensor;
}

function residual(out: Tensor, identity: Tensor): Tensor {
  return F.relu(F.add(out, identity));
}

class BasicBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(inplanes: number, planes: number, stride: number, readonly downsample: Sequential | null, init: InitOptions) {
    super();
    this.conv1 = this.registerModule('conv1', conv3x3(inplanes, planes, stride, init));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, 1, init));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    if (downsample) this.registerModule('downsample', downsample);
  }

  override forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(F.relu(this.bn1.forward(this.conv1.forward(x)))));
    return residual(out, this.downsample ? this.downsample.forward(x) : x);
  }
}

class Bottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;

  constructor(inplanes: number, planes: number, stride: number, readonly downsample: Sequential | null, init: InitOptions) {
    super();
    // torchvision's ResNet v1.5: the stride sits on the 3×3 convolution.
    this.conv1 = this.registerModule('conv1', conv1x1(inplanes, planes, 1, init));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, stride, init));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv1x1(planes, planes * 4, 1, init));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    if (downsample) this.registerModule('downsample', downsample);
  }

  override forward(x: Tensor): Tensor {
    let out = F.relu(this.bn1.forward(this.conv1.forward(x)));
    out = F.relu(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    return residual(out, this.downsample ? this.downsample.forward(x) : x);
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck) & { expansion: number };

export interface ResNetOptions extends InitOptions {
  numClasses?: number;
  /** 'imagenet': 7×7/2 conv + 3×3/2 max-pool (224 px); 'cifar': 3×3/1 conv, no max-pool (28–64 px). */
  stem?: 'imagenet' | 'cifar';
  inChannels?: number;
}

export class ResNet extends FeatureNet {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly fc: Linear;
  readonly numFeatures: number;

  constructor(block: BlockClass, layers: readonly [number, number, number, number], options: ResNetOptions = {}) {
    super();
    const { numClasses = 1000, stem = 'imagenet', inChannels = 3, ...init } = options;
    this.conv1 = this.registerModule(
      'conv1',
      stem === 'imagenet' ? new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false, ...init }) : conv3x3(inChannels, 64, 1, init),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    const maxpool = stem === 'imagenet' ? new MaxPool2d(3, { stride: 2, padding: 1 }) : null;
    this.stage('conv1', (x) => {
      const y = F.relu(this.bn1.forward(this.conv1.forward(x)));
      return maxpool ? maxpool.forward(y) : y;
    });

    let inplanes = 64;
    layers.forEach((count, i) => {
      const planes = 64 * 2 ** i;
      const stride = i === 0 ? 1 : 2;
      const blocks: Module[] = [];
      for (let b = 0; b < count; b++) {
        const s = b === 0 ? stride : 1;
        const downsample =
          b === 0 && (s !== 1 || inplanes !== planes * block.expansion)
            ? new Sequential(conv1x1(inplanes, planes * block.expansion, s, init), new BatchNorm2d(planes * block.expansion))
            : null;
        blocks.push(new block(inplanes, planes, s, downsample, init));
        inplanes = planes * block.expansion;
      }
      const layer = this.registerModule(`layer${i + 1}`, new Sequential(...blocks));
      this.stage(`layer${i + 1}`, (x) => layer.forward(x));
    });

    const avgpool = new AdaptiveAvgPool2d(1);
    this.stage('avgpool', (x) => F.flatten(avgpool.forward(x), 1));
    this.numFeatures = inplanes;
    this.fc = this.registerModule('fc', new Linear(inplanes, numClasses, init));
    this.stage('fc', (x) => this.fc.forward(x));

    // torchvision: Kaiming normal (fan_out, relu) for every conv; BN weight 1, bias 0 (the
    // BatchNorm default); Linear keeps PyTorch's default.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) assign(m.weight, kaimingNormal(m.weight.shape, 'fan_out', init));
    }
  }
}

export const resnet18 = (options: ResNetOptions = {}) => new ResNet(BasicBlock, [2, 2, 2, 2], options);
export const resnet34 = (options: ResNetOptions = {}) => new ResNet(BasicBlock, [3, 4, 6, 3], options);
export const resnet50 = (options: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], options);
