// Binding windows, planned without a device: how far one storage binding may reach, and how an
// outer dimension is cut so that every tensor's window fits it. launch.ts runs the plans.

/** A range [start, start + count) of an outer dimension. */
export interface Window {
  start: number;
  count: number;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

/** Bytes from "1MiB", "512 KiB", "64MB" or a plain number of bytes. */
export function parseBytes(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`'${text}' is not a size: write bytes or a number with KiB, MiB or GiB (e.g. 1MiB)`);
  return Math.floor(Number(match[1]) * unit);
}

/**
 * The engine's binding ceiling: the device's maxStorageBufferBindingSize, lowered by
 * DAWNET_MAX_BINDING or init({ maxBinding }) (bytes, or text such as "1MiB"), rounded down to
 * the offset alignment so that windows can start on it.
 */
export function bindingCeiling(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>, maxBinding?: string | number): number {
  const device = limits.maxStorageBufferBindingSize;
  if (maxBinding === undefined || maxBinding === '') return device;
  let asked: number;
  try {
    asked = typeof maxBinding === 'number' ? maxBinding : parseBytes(maxBinding);
  } catch (err) {
    throw new Error(`DAWNET_MAX_BINDING / maxBinding: ${(err as Error).message}`);
  }
  const align = limits.minStorageBufferOffsetAlignment;
  if (!(asked >= align)) throw new Error(`DAWNET_MAX_BINDING / maxBinding: ${maxBinding} is below the ${align}-byte binding alignment`);
  return Math.min(device, Math.floor(asked / align) * align);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Windows of [0, extent) such that count × rowBytes[i] ≤ limit for every tensor i (rowBytes: the
 * bytes one outer index covers in each). When `align`-byte boundaries allow it, every window
 * starts where each tensor's byte offset is a multiple of align, so it binds in place; otherwise
 * (`aligned` false) windows are as large as fit and launch.ts copies them through scratch.
 * Windows are balanced (sizes differ by at most one alignment step), in increasing order.
 */
export function planWindows(extent: number, rowBytes: readonly number[], limit: number, align: number): { windows: Window[]; aligned: boolean } {
  const row = Math.max(4, ...rowBytes);
  if (row * extent <= limit) return { windows: [{ start: 0, count: extent }], aligned: true };
  const most = Math.floor(limit / row);
  if (most < 1) throw new Error(`one outer slice is ${row} bytes, over the ${limit}-byte binding limit`);
  // Outer indices per aligned step: the least multiple that puts every tensor on an align boundary.
  let step = 1;
  for (const bytes of rowBytes) {
    const need = align / gcd(bytes, align);
    step = (step * need) / gcd(step, need);
  }
  const aligned = most >= step;
  const unit = aligned ? step : 1;
  const largest = Math.floor(most / unit) * unit;
  const count = Math.ceil(extent / largest);
  const size = Math.ceil(extent / count / unit) * unit;
  const windows: Window[] = [];
  for (let start = 0; start < extent; start += size) windows.push({ start, count: Math.min(size, extent - start) });
  return { windows, aligned };
}
