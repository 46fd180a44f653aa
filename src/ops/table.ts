// The op table: every op dawnet differentiates, one typed row each (see op.ts). Tests iterate it.
import { setGradientPrimitives } from '../autograd/tape.js';
import { batchNormOps } from './batchnorm.js';
import { binaryOps } from './binary.js';
import { concatOps } from './concat.js';
import { convOps } from './conv.js';
import { dropoutOps } from './dropout.js';
import { filled, layoutOps } from './layout.js';
import { lossOps } from './losses.js';
import { matmulOps } from './matmul.js';
import type { OpDef } from './op.js';
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
  ...layoutOps,
  ...convOps,
  ...batchNormOps,
  ...poolOps,
  ...dropoutOps,
  ...concatOps,
};

export type OpName = keyof typeof OPS;
export type AttrsOf<K extends OpName> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

setGradientPrimitives(
  (a, b) => binaryOps.add.forward([a, b], {}).out,
  (shape, value) => filled(shape, value),
);
