// Device memory as a limit a user can act on: before a command opens its run folder, one
// training step is measured on 2 and on 4 images (model, gradients, optimizer state and
// activations, built afresh and freed), scaled linearly to the batch, and compared with what the
// device has. A step that cannot fit stops here with one message, before anything is written.
import { freemem } from 'node:os';
import { buildModel, type ModelSpec } from '../../models/registry.js';
import { zeros } from '../creation.js';
import * as F from '../functional.js';
import { parseBytes } from '../gpu/windows.js';
import { formatBytes } from '../gpu/pool.js';
import type { Module } from '../nn/module.js';
import { SGD } from '../optim/sgd.js';
import { backend } from '../runtime.js';
import { scope } from '../scope.js';
import type { Tensor } from '../tensor.js';

/** Raised when a training step needs more memory than the device has. */
export class DeviceMemoryError extends Error {}

/**
 * Bytes the device has for a training step: DAWNET_MEMORY (e.g. "2GiB") when set; else, on a
 * software adapter whose buffers live in host memory, the free host memory plus what dawnet
 * already holds; else null (WebGPU does not report a GPU's memory, so only DAWNET_MEMORY limits it).
 */
export function deviceMemory(): number | null {
  const asked = process.env.DAWNET_MEMORY;
  if (asked) return parseBytes(asked);
  const gpu = backend();
  return gpu.isSoftware ? freemem() + gpu.memory().bytesInUse : null;
}

/** Peak bytes `step(n)` adds over what is held before it (its tensors freed after). */
function measure(step: (n: number) => void, n: number): number {
  const gpu = backend();
  const before = gpu.memory().bytesInUse;
  gpu.resetPeak();
  scope(() => step(n));
  return Math.max(0, gpu.memory().peakBytesInUse - before);
}

/**
 * What `step` needs, measured on 2 and on 4 images (a batch norm in training needs two):
 * bytes at `batch` images, and the largest batch `has` bytes hold (0: not two).
 */
function stepNeed(step: (n: number) => void): { bytes: (batch: number) => number; fits: (has: number) => number } {
  const two = measure(step, 2);
  const four = measure(step, 4);
  backend().resetPeak();
  const perImage = Math.max(0, (four - two) / 2);
  return {
    bytes: (batch) => Math.max(two, two + perImage * (batch - 2)),
    fits: (has) => (two > has ? 0 : 2 + Math.floor((has - two) / Math.max(perImage, 1))),
  };
}

/**
 * Throws DeviceMemoryError when `step` (one whole training step on n images, building and
 * freeing its own model and optimizer) needs more than the device has at `batch` images; the
 * message names the need, the memory and `flag`, the flag that sets the batch.
 */
export function requireStepFits(step: (n: number) => void, batch: number, flag = '--batchSize'): void {
  const has = deviceMemory();
  if (has === null) return;
  const need = stepNeed(step);
  const bytes = need.bytes(batch);
  if (bytes <= has) return;
  const fits = need.fits(has);
  const advice = fits >= 1 ? `lower ${flag} to ${fits} or less` : `not even 2 images fit; use a smaller model or --imageSize`;
  throw new DeviceMemoryError(
    `a training step at ${flag} ${batch} needs about ${formatBytes(bytes)} of device memory (measured on 2 and 4 images, scaled), and the device has ${formatBytes(has)}${process.env.DAWNET_MEMORY ? ' (DAWNET_MEMORY)' : ''}: ${advice}. Nothing was written.`,
  );
}

/** `batch`, or the largest smaller batch whose step fits the device (at least 1; the step's own check reports what does not). */
export function batchThatFits(step: (n: number) => void, batch: number): number {
  const has = deviceMemory();
  if (has === null) return batch;
  return Math.max(1, Math.min(batch, stepNeed(step).fits(has)));
}

/**
 * One training step with SGD (momentum) on a module built afresh: `backward(model, n)` runs the
 * forward and backward passes on n images; the model and its optimizer are freed after.
 */
export function sgdStep<M extends Module>(build: () => M, backward: (model: M, n: number) => void): (n: number) => void {
  return (n) => {
    const model = build();
    const optimizer = new SGD(model.parameters(), { lr: 0, momentum: 0.9 });
    try {
      backward(model, n);
      optimizer.step();
    } finally {
      optimizer.zeroGrad();
      optimizer.dispose();
      model.dispose();
    }
  };
}

/** Cross-entropy of `logits` against n labels (their values do not change the memory). */
export function anyLabelsLoss(logits: Tensor): Tensor {
  return F.crossEntropy(logits, zeros([logits.shape[0]!], { dtype: 'int32' }));
}

/**
 * One training step of a classifier trained with SGD (momentum) and cross-entropy on images of
 * `imageShape` (C, H, W), `perSample` images per sample of the batch (RotNet's 4 rotations).
 */
export function classifierStep(spec: ModelSpec, imageShape: readonly number[], perSample = 1): (n: number) => void {
  return sgdStep(
    () => buildModel(spec, 0),
    (model, n) => anyLabelsLoss(model.forward(zeros([n * perSample, ...imageShape]))).backward(),
  );
}

/** requireStepFits for classifierStep. */
export function requireClassifierStepFits(spec: ModelSpec, imageShape: readonly number[], batch: number, perSample = 1): void {
  requireStepFits(classifierStep(spec, imageShape, perSample), batch);
}
