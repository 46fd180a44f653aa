// The op table: every op dawnet differentiates, one typed row each (see op.ts). Tests iterate it,
// and every kernel in kernels/ belongs to a row or to one of the few owners outside the table.
import { setGradientPrimitives } from '../autograd/tape.js';
import { batchNormOps } from './batchnorm.js';
import { binaryOps } from './binary.js';
import { concatOps } from './concat.js';
import { convOps } from './conv.js';
import { dropoutOps } from './dropout.js';
import { filled, layoutOps } from './layout.js';
import { latentOps } from './latent.js';
import { lossOps } from './losses.js';
import { matmulOps } from './matmul.js';
import type { KernelRef, OpDef } from './op.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { softmaxOps } from './softmax.js';
import { unaryOps } from './unary.js';

export const OPS = {
  ...unaryOps,
  ...binaryOps,
  ...reduceOps,
  ...matmulOps,
  ...softmaxOps,
  ...lossOps,
  ...latentOps,
  ...layoutOps,
  ...convOps,
  ...batchNormOps,
  ...poolOps,
  ...dropoutOps,
  ...concatOps,
};

export type OpName = keyof typeof OPS;

/** The kernels no op row launches, by owner; test/ops.test.ts fails on a kernel claimed by neither. */
export const KERNELS_OUTSIDE_OPS: Record<string, readonly KernelRef[]> = {
  'src/optim: fused updates and gradient clipping': ['optim.sgd_step', 'optim.sgd_step_plain', 'optim.adam_step', 'optim.grad_zero', 'optim.grad_norm_partial', 'optim.grad_norm_final'],
  'src/data/augment.ts: augmentation on the GPU': ['augment.augment_u8', 'augment.augment_f32', 'augment.convert_u8'],
  'src/data/rotate.ts: the K-way rotation pretext': ['rotate.rotate_bilinear'],
  'src/ops/layout.ts: constant fills (creation, gradient seeds) and counters': ['fill.fill', 'fill.add_count'],
  'bench: the device peak': ['peak.fma_peak'],
  'src/gpu/launch.ts: sums across binding windows': ['fill.accumulate'],
};
export type AttrsOf<K extends OpName> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

setGradientPrimitives(
  (a, b) => binaryOps.add.forward([a, b], {}).out,
  (shape, value) => filled(shape, value),
);
