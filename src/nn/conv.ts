// torch.nn.Conv2d (weight OIHW: out, in/groups, kH, kW) and torch.nn.ConvTranspose2d
// (weight: in, out/groups, kH, kW), with PyTorch's default initialisation.
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import { defaultBias, defaultWeight, type InitOptions } from './init.js';
import { Module } from './module.js';

type Pair = number | [number, number];

export interface ConvOptions extends InitOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, options: ConvOptions = {}) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true } = options;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(stride);
    this.padding = pair(padding);
    this.dilation = pair(dilation);
    this.groups = groups;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d(${inChannels}, ${outChannels}): both channel counts must divide by groups = ${groups}`);
    }
    const shape = [outChannels, inChannels / groups, ...this.kernelSize];
    this.weight = this.registerParameter('weight', defaultWeight(shape, options))!;
    this.bias = this.registerParameter('bias', bias ? defaultBias(shape, outChannels, options) : null);
  }

  override forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

export interface ConvTransposeOptions extends InitOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  bias?: boolean;
}

export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, options: ConvTransposeOptions = {}) {
    super();
    const { stride = 1, padding = 0, outputPadding = 0, bias = true } = options;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(stride);
    this.padding = pair(padding);
    this.outputPadding = pair(outputPadding);
    const shape = [inChannels, outChannels, ...this.kernelSize];
    this.weight = this.registerParameter('weight', defaultWeight(shape, options))!;
    this.bias = this.registerParameter('bias', bias ? defaultBias(shape, outChannels, options) : null);
  }

  override forward(x: Tensor): Tensor {
    return F.convTranspose2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
      outputPadding: this.outputPadding,
    });
  }
}
