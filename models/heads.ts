// Evaluation heads on frozen features, as the RotNet evaluation protocol uses them:
// a linear probe (adaptive pooling → batch norm without affine → Linear), an MLP head
// (Linear-BN-ReLU twice → Linear), a conv head (an NIN block, then global pooling and Linear) and
// the AlexNet conv4/conv5 head of RotNet's ImageNet protocol; headOf builds one by name.
import * as F from '../src/functional.js';
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import { Conv2d } from '../src/nn/conv.js';
import { assign, constant, kaimingNormal, type InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/normalization.js';
import { AdaptiveAvgPool2d, AdaptiveMaxPool2d, MaxPool2d } from '../src/nn/pooling.js';
import type { Tensor } from '../src/tensor.js';
import { NinBlock } from './nin.js';

/** Feature shape without the batch: [C, H, W] from a conv stage or [F] from an FC stage. */
export type FeatureShape = readonly number[];

export class LinearProbe extends Module {
  readonly layers: Sequential;

  /**
   * Conv features are pooled to poolSize × poolSize first (RotNet pools to ~9,000 values), by max
   * pooling as the reference's LinearClassifier (its pool_type default, used in every config).
   */
  constructor(
    features: FeatureShape,
    numClasses: number,
    { poolSize = 1, poolType = 'max', ...init }: { poolSize?: number; poolType?: 'max' | 'avg' } & InitOptions = {},
  ) {
    super();
    const channels = features[0]!;
    this.layers = this.registerModule(
      'layers',
      features.length === 3
        ? new Sequential(
            poolType === 'max' ? new AdaptiveMaxPool2d(poolSize) : new AdaptiveAvgPool2d(poolSize),
            new BatchNorm2d(channels, { affine: false }),
            new Flatten(),
            new Linear(channels * poolSize * poolSize, numClasses, init),
          )
        : new Sequential(new Flatten(), new BatchNorm1d(channels, { affine: false }), new Linear(channels, numClasses, init)),
    );
  }

  override forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

export class MlpHead extends Module {
  readonly layers: Sequential;

  /** The hidden width defaults to the reference's min(20 · classes, 2048) (200 for 10 classes). */
  constructor(features: FeatureShape, numClasses: number, { hidden = Math.min(20 * numClasses, 2048), ...init }: { hidden?: number } & InitOptions = {}) {
    super();
    const inFeatures = features.reduce((p, d) => p * d, 1);
    this.layers = this.registerModule(
      'layers',
      new Sequential(
        new Flatten(),
        new Linear(inFeatures, hidden, { bias: false, ...init }),
        new BatchNorm1d(hidden),
        new ReLU(),
        new Linear(hidden, hidden, { bias: false, ...init }),
        new BatchNorm1d(hidden),
        new ReLU(),
        new Linear(hidden, numClasses, init),
      ),
    );
  }

  override forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

/** RotNet's ConvClassifier on NIN conv2 features: a third NIN stage, global pooling, Linear. */
export class ConvHead extends Module {
  readonly block: Sequential;
  readonly classifier: Linear;

  constructor(features: FeatureShape, numClasses: number, init: InitOptions = {}) {
    super();
    if (features.length !== 3) throw new Error(`ConvHead: needs conv features [C, H, W], got [${features.join(', ')}]`);
    this.block = this.registerModule(
      'block',
      new Sequential({
        ConvB1: new NinBlock(features[0]!, 192, 3, init),
        ConvB2: new NinBlock(192, 192, 1, init),
        ConvB3: new NinBlock(192, 192, 1, init),
      }),
    );
    this.classifier = this.registerModule('classifier', new Linear(192, numClasses, init));
  }

  override forward(x: Tensor): Tensor {
    return this.classifier.forward(F.mean(F.flatten(this.block.forward(x), 2), 2));
  }
}

/**
 * RotNet's NonLinearClassifier for AlexNet features ('Alexnet_conv4' / 'Alexnet_conv5' of
 * architectures/NonLinearClassifier.py): on conv4 a conv5-like block first (3×3, 256, BN, ReLU),
 * then pool5 (max 3×3 stride 2), two FC layers of 4096 without bias, each BN-ReLU, and the
 * classifier. The reference's 256·6·6 inputs of the first FC layer follow the feature map here,
 * so smaller images work. Initialised as the reference: conv N(0, 2/(k·k·out)), linear
 * N(0, 2/out), biases zero.
 */
export class AlexNetHead extends Module {
  readonly layers: Sequential;

  constructor(features: FeatureShape, numClasses: number, { conv5 = false, hidden = 4096, ...init }: { conv5?: boolean; hidden?: number } & InitOptions = {}) {
    super();
    const [c, h, w] = features;
    if (features.length !== 3 || h! < 3 || w! < 3) throw new Error(`AlexNetHead: needs conv features [C, H, W] of at least 3×3, got [${features.join(', ')}]`);
    const pooled = (n: number) => Math.floor((n - 3) / 2) + 1;
    const layers: Record<string, Module> = {};
    if (conv5) layers.ConvB5 = new Sequential(new Conv2d(c!, 256, 3, { padding: 1, ...init }), new BatchNorm2d(256), new ReLU());
    Object.assign(layers, {
      Pool5: new MaxPool2d(3, { stride: 2 }),
      Flatten: new Flatten(),
      Linear1: new Linear((conv5 ? 256 : c!) * pooled(h!) * pooled(w!), hidden, { bias: false, ...init }),
      BatchNorm1: new BatchNorm1d(hidden),
      ReLU1: new ReLU(),
      Linear2: new Linear(hidden, hidden, { bias: false, ...init }),
      BatchNorm2: new BatchNorm1d(hidden),
      ReLU2: new ReLU(),
      LinearF: new Linear(hidden, numClasses, init),
    });
    this.layers = this.registerModule('layers', new Sequential(layers));
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d || m instanceof Linear) assign(m.weight, kaimingNormal(m.weight.shape, 'fan_out', init));
      if ((m instanceof Conv2d || m instanceof Linear) && m.bias) assign(m.bias, constant(m.bias.shape, 0));
    }
  }

  override forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

export const HEAD_TYPES = ['linear', 'mlp', 'conv', 'alexnet'] as const;
export type HeadType = (typeof HEAD_TYPES)[number];

/**
 * A head of `type` on the features of `block` (of shape `shape`); poolSize is the linear head's.
 * The AlexNet head gets its conv5-like block on conv4 only, as the reference's two heads.
 */
export function headOf(type: HeadType, block: string, shape: FeatureShape, numClasses: number, { poolSize = 2, ...init }: { poolSize?: number } & InitOptions = {}): Module {
  switch (type) {
    case 'linear':
      return new LinearProbe(shape, numClasses, { poolSize, ...init });
    case 'mlp':
      return new MlpHead(shape, numClasses, init);
    case 'conv':
      return new ConvHead(shape, numClasses, init);
    case 'alexnet':
      return new AlexNetHead(shape, numClasses, { conv5: block === 'conv4', ...init });
  }
}

/** Heads under their blocks' names, so that one checkpoint holds them all (train:probe's). */
export class HeadSet extends Module {
  constructor(readonly heads: readonly (readonly [string, Module])[]) {
    super();
    for (const [name, head] of heads) this.registerModule(name, head);
  }
}
