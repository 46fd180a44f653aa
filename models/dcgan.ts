// DCGAN generator and discriminator as the PyTorch DCGAN example builds them (nz 100, ngf and
// ndf 64, 64×64 images, and a 32×32 variant with one layer fewer), initialised as its
// weights_init: convolutions N(0, 0.02), batch-norm weights N(1, 0.02) and biases 0.
// GanClassifier puts a linear classifier on the discriminator's trunk.
import * as F from '../src/functional.js';
import { LeakyReLU, ReLU, Sigmoid, Tanh } from '../src/nn/activation.js';
import { Sequential } from '../src/nn/container.js';
import { Conv2d, ConvTranspose2d } from '../src/nn/conv.js';
import { FeatureNet } from '../src/nn/feature-net.js';
import { assign, constant, normal, type InitOptions } from '../src/nn/init.js';
import { Linear } from '../src/nn/linear.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm2d } from '../src/nn/normalization.js';
import type { Tensor } from '../src/tensor.js';

export interface DcganOptions extends InitOptions {
  nz?: number;
  ngf?: number;
  ndf?: number;
  /** Image channels. */
  nc?: number;
  imageSize?: 32 | 64;
}

function checkSize(imageSize: number): 32 | 64 {
  if (imageSize !== 32 && imageSize !== 64) throw new Error(`DCGAN: imageSize must be 32 or 64, got ${imageSize}`);
  return imageSize;
}

function dcganInit(net: Module, init: InitOptions): void {
  for (const [, m] of net.namedModules()) {
    if (m instanceof Conv2d || m instanceof ConvTranspose2d) assign(m.weight, normal(m.weight.shape, 0, 0.02, init));
    if (m instanceof BatchNorm2d && m.weight && m.bias) {
      assign(m.weight, normal(m.weight.shape, 1, 0.02, init));
      assign(m.bias, constant(m.bias.shape, 0));
    }
  }
}

/** z (N, nz, 1, 1) → image (N, nc, S, S) in [−1, 1]; parameters under main.0 … as the example. */
export class DcganGenerator extends Module {
  readonly main: Sequential;
  readonly nz: number;

  constructor({ nz = 100, ngf = 64, nc = 3, imageSize = 64, ...init }: DcganOptions = {}) {
    super();
    this.nz = nz;
    const up = (cin: number, cout: number, stride: number, padding: number) => new ConvTranspose2d(cin, cout, 4, { stride, padding, bias: false, ...init });
    // Widths from the input side: ngf·8 → ngf·4 → ngf·2 → ngf at 64 px; one fewer at 32 px.
    const widths = checkSize(imageSize) === 64 ? [ngf * 8, ngf * 4, ngf * 2, ngf] : [ngf * 4, ngf * 2, ngf];
    const layers: Module[] = [up(nz, widths[0]!, 1, 0), new BatchNorm2d(widths[0]!), new ReLU()];
    for (let i = 1; i < widths.length; i++) layers.push(up(widths[i - 1]!, widths[i]!, 2, 1), new BatchNorm2d(widths[i]!), new ReLU());
    layers.push(up(widths.at(-1)!, nc, 2, 1), new Tanh());
    this.main = this.registerModule('main', new Sequential(...layers));
    dcganInit(this, init);
  }

  override forward(z: Tensor): Tensor {
    if (z.ndim !== 4 || z.shape[1] !== this.nz || z.shape[2] !== 1 || z.shape[3] !== 1) {
      throw new Error(`DcganGenerator: expected noise (N, ${this.nz}, 1, 1), got [${z.shape.join(', ')}]`);
    }
    return this.main.forward(z);
  }
}

/**
 * image (N, nc, S, S) → probability of real (N). Stages for features(): trunk (the features before
 * the last convolution, (N, ndf·8 or ndf·4, 4, 4)) and head.
 */
export class DcganDiscriminator extends FeatureNet {
  readonly trunk: Sequential;
  readonly head: Sequential;
  readonly trunkChannels: number;

  constructor({ ndf = 64, nc = 3, imageSize = 64, ...init }: DcganOptions = {}) {
    super();
    const down = (cin: number, cout: number) => new Conv2d(cin, cout, 4, { stride: 2, padding: 1, bias: false, ...init });
    const widths = checkSize(imageSize) === 64 ? [ndf, ndf * 2, ndf * 4, ndf * 8] : [ndf, ndf * 2, ndf * 4];
    const layers: Module[] = [down(nc, widths[0]!), new LeakyReLU(0.2)];
    for (let i = 1; i < widths.length; i++) layers.push(down(widths[i - 1]!, widths[i]!), new BatchNorm2d(widths[i]!), new LeakyReLU(0.2));
    this.trunkChannels = widths.at(-1)!;
    // The example's single `main` Sequential, split at its last convolution so the trunk can be
    // shared with a classifier; the names main.0 … main.N stay those of the example.
    const all = new Sequential(...layers, new Conv2d(this.trunkChannels, 1, 4, { stride: 1, padding: 0, bias: false, ...init }), new Sigmoid());
    this.registerModule('main', all);
    this.trunk = new Sequential(...layers);
    this.head = new Sequential(all.at(-2), all.at(-1));
    this.stage('trunk', (x) => this.trunk.forward(x));
    this.stage('head', (x) => F.flatten(this.head.forward(x), 0));
    dcganInit(this, init);
  }
}

/** A classifier on a discriminator's trunk: trunk features (N, C, 4, 4) → flatten → Linear. */
export class GanClassifier extends FeatureNet {
  readonly fc: Linear;

  constructor(readonly discriminator: DcganDiscriminator, numClasses: number, init: InitOptions = {}) {
    super();
    this.registerModule('discriminator', discriminator);
    this.fc = this.registerModule('fc', new Linear(discriminator.trunkChannels * 16, numClasses, init));
    this.stage('trunk', (x) => discriminator.trunk.forward(x));
    this.stage('fc', (x) => this.fc.forward(F.flatten(x, 1)));
  }
}
