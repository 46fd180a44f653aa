// dawnet's public API: PyTorch-shaped, over WebGPU.
export { init, shutdown, sync, backend } from './runtime.js';
export type { DeviceOptions } from './gpu/device.js';
export { GpuError, DeviceLostError } from './gpu/backend.js';
export type { PoolStats } from './gpu/pool.js';
export { Tensor, type DType, type Shape } from './tensor.js';
export { tensor, zeros, ones, full, randn, rand, randint, type CreateOptions, type RandomOptions } from './creation.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export { scope } from './scope.js';
export { noGrad, isGradEnabled } from './autograd/tape.js';
export { gradcheck, type GradcheckResult } from './autograd/gradcheck.js';
export * as F from './functional.js';
export * as nn from './nn/index.js';
export * as data from './data/index.js';
export * as optim from './optim/index.js';
export * from './checkpoint/index.js';
export { OPS, type OpName } from './ops/table.js';
export type { OpDef, RefTensor, Tolerance } from './ops/op.js';

import { backend } from './runtime.js';
import type { PoolStats } from './gpu/pool.js';

/** GPU memory counters: bytes in use, held by the pool, the peak, and buffers created. */
export function memory(): PoolStats {
  return backend().memory();
}
