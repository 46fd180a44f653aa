// Evaluation heads on frozen features, as the RotNet evaluation protocol uses them:
// a linear probe (adaptive pooling → batch norm without affine → Linear), an MLP head
// (Linear-BN-ReLU twice → Linear) and a conv head (an NIN block, then global pooling and Linear).
import * as F from '../src/functional.js';
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import type { InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/normalization.js';
import { AdaptiveAvgPool2d, AdaptiveMaxPool2d } from '../src/nn/pooling.js';
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
