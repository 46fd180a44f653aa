// How many images an inference pass (the student's teacher scoring, evaluate) takes at once: as
// many as the memory budget holds, from a measured forward pass rather than a fixed number.
import { freemem } from 'node:os';
import { noGrad } from '../autograd/tape.js';
import { zeros } from '../creation.js';
import { parseBytes } from '../gpu/windows.js';
import type { Module } from '../nn/module.js';
import { backend } from '../runtime.js';
import { scope } from '../scope.js';

/**
 * Bytes an inference pass may use: DAWNET_MEMORY (e.g. "2GiB") when set; else, on a software
 * adapter whose buffers live in host memory, a quarter of the free host memory; else 2 GiB
 * (WebGPU does not report a GPU's memory).
 */
export function memoryBudget(): number {
  const asked = process.env.DAWNET_MEMORY;
  if (asked) return parseBytes(asked);
  return backend().isSoftware ? freemem() / 4 : 2 ** 31;
}

/**
 * Images per chunk for `model` (in eval mode) on images of `imageShape` (C, H, W): the budget
 * over the peak memory one image adds, measured on two zero images; at least 1, at most `max`.
 */
export function inferenceBatch(model: Module, imageShape: readonly number[], max = 1024): number {
  const gpu = backend();
  const wasTraining = model.training;
  model.eval();
  const before = gpu.memory().bytesInUse;
  gpu.resetPeak();
  scope(() => noGrad(() => model.forward(zeros([2, ...imageShape]))));
  const perImage = Math.max(1, (gpu.memory().peakBytesInUse - before) / 2);
  model.train(wasTraining);
  return Math.max(1, Math.min(max, Math.floor(memoryBudget() / perImage)));
}
