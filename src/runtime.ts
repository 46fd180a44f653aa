// The process-wide backend: `await init()` opens the device once; `shutdown()` destroys it so
// that Node can exit by itself.
import { Backend } from './gpu/backend.js';
import type { DeviceOptions } from './gpu/device.js';

let current: Backend | null = null;
let opening: Promise<Backend> | null = null;

/** Opens the GPU device (once). Options or DAWNET_ADAPTER / DAWNET_BACKEND choose the adapter. */
export async function init(options: DeviceOptions = {}): Promise<Backend> {
  if (current) return current;
  opening ??= Backend.open(options).then((b) => (current = b)).finally(() => (opening = null));
  return opening;
}

/** The open backend; ops call this. */
export function backend(): Backend {
  if (!current) throw new Error('dawnet: no device yet; call `await init()` before creating tensors');
  return current;
}

/**
 * Runs `fn` (synchronous) with `device` as the backend every op and allocation goes to, then
 * returns to the one before: data-parallel training runs each replica's step this way.
 */
export function onDevice<T>(device: Backend, fn: () => T): T {
  const before = current;
  current = device;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/**
 * The most GPU memory in use (MiB) since the last call, then starts a new peak: a training
 * loop calls it once per report for the step's peak (metrics.jsonl's peakMemoryMiB).
 */
export function takePeakMiB(): number {
  const gpu = backend();
  const peak = gpu.memory().peakBytesInUse;
  gpu.resetPeak();
  return Number((peak / 2 ** 20).toFixed(1));
}

/** Waits for queued GPU work, surfacing any error it raised. */
export async function sync(): Promise<void> {
  await backend().sync();
}

/** Destroys the device; tensors still alive become unusable. */
export function shutdown(): void {
  current?.destroy();
  current = null;
}
