// A convolutional VAE whose encoder is RotNet's AlexNet up to conv4 or conv5 (the same stages and
// state-dict names, so probes read its blocks as they read RotNet's), then μ and log σ² from
// linear layers; a transposed-convolution decoder (four 4×4 stride-2 layers, DCGAN-style) maps z
// back to the image's logits. Stages for features(): conv1 … conv4 (conv5), mu, and a classifier
// on μ when numClasses > 0 (what train:finetune trains).
import * as F from '../src/functional.js';
import { ReLU } from '../src/nn/activation.js';
import { Sequential } from '../src/nn/container.js';
import { ConvTranspose2d } from '../src/nn/conv.js';
import { FeatureNet } from '../src/nn/feature-net.js';
import type { InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import type { Module } from '../src/nn/module.js';
import { BatchNorm2d } from '../src/nn/normalization.js';
import type { Tensor } from '../src/tensor.js';
import { alexnetInit, alexnetSides, alexnetTrunk } from './alexnet.js';

export type VaeEncoderDepth = 'conv4' | 'conv5';

export interface VaeOptions extends InitOptions {
  inChannels?: number;
  /** Input side: at least 64 and a multiple of 16 (the decoder doubles its side four times). */
  imageSize?: number;
  latentDim?: number;
  /** The encoder's last AlexNet stage. */
  encoderDepth?: VaeEncoderDepth;
  /** 0: the pretext network; more: a Linear classifier on μ. */
  numClasses?: number;
}

/** Why a VAE cannot take this image side, or null. */
export function vaeSizeProblem(imageSize: number): string | null {
  return imageSize >= 64 && imageSize % 16 === 0 ? null : `the VAE needs an image side of at least 64 px and a multiple of 16 (AlexNet's encoder, a decoder of four doublings), got ${imageSize}`;
}

const DECODER_WIDTHS = [256, 128, 64, 32];

export class ConvVAE extends FeatureNet {
  readonly mu: Linear;
  readonly logvar: Linear;
  readonly decoderInput: Linear;
  readonly decoder: Sequential;
  readonly encoderDepth: VaeEncoderDepth;
  private readonly startSide: number;

  constructor({ inChannels = 3, imageSize = 64, latentDim = 128, encoderDepth = 'conv4', numClasses = 0, ...init }: VaeOptions = {}) {
    super();
    const problem = vaeSizeProblem(imageSize);
    if (problem) throw new RangeError(problem);
    this.encoderDepth = encoderDepth;
    const trunk = alexnetTrunk(inChannels, imageSize, init);
    const encoder = trunk.slice(0, trunk.findIndex(([name]) => name === encoderDepth) + 1);
    for (const [name, m] of encoder) {
      this.registerModule(name, m);
      this.stage(name, (x) => m.forward(x));
    }
    const side = alexnetSides(imageSize).conv5;
    const features = 256 * side * side;
    // μ is a stage (a probe or fine-tune reads it); log σ² and the decoder come after every stage's parameters.
    this.mu = this.registerModule('mu', new Linear(features, latentDim, init));
    this.stage('mu', (x) => this.mu.forward(F.flatten(x)));
    if (numClasses > 0) {
      const classifier = this.registerModule('classifier', new Linear(latentDim, numClasses, init));
      this.stage('classifier', (x) => classifier.forward(x));
    }
    this.logvar = this.registerModule('logvar', new Linear(features, latentDim, init));
    this.startSide = imageSize / 16;
    this.decoderInput = this.registerModule('decoder_input', new Linear(latentDim, DECODER_WIDTHS[0]! * this.startSide ** 2, init));
    const up = (cin: number, cout: number) => new ConvTranspose2d(cin, cout, 4, { stride: 2, padding: 1, ...init });
    const layers: Module[] = [];
    for (let i = 1; i < DECODER_WIDTHS.length; i++) layers.push(up(DECODER_WIDTHS[i - 1]!, DECODER_WIDTHS[i]!), new BatchNorm2d(DECODER_WIDTHS[i]!), new ReLU());
    layers.push(up(DECODER_WIDTHS.at(-1)!, inChannels));
    this.decoder = this.registerModule('decoder', new Sequential(...layers));
    alexnetInit(this, init);
  }

  /** μ and log σ² of q(z | x) for normalised images x. */
  encode(x: Tensor): { mu: Tensor; logvar: Tensor } {
    const h = F.flatten(this.features(x, [this.encoderDepth])[this.encoderDepth]!);
    return { mu: this.mu.forward(h), logvar: this.logvar.forward(h) };
  }

  /** The image's logits (N, C, S, S) for codes z (N, latentDim): sigmoid gives pixels in [0, 1]. */
  decode(z: Tensor): Tensor {
    const h = F.relu(this.decoderInput.forward(z));
    return this.decoder.forward(F.reshape(h, [z.shape[0]!, DECODER_WIDTHS[0]!, this.startSide, this.startSide]));
  }
}
