// The safetensors format (huggingface/safetensors): an unsigned 64-bit little-endian header
// length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, …,
// "__metadata__": {string: string}}, then the tensors' bytes, little-endian and row-major, with
// offsets relative to the end of the header, covering the buffer with no holes.
// Written as the reference implementation writes it: tensors ordered by descending dtype
// alignment then by name (so each one is aligned to its element size), the header padded with
// spaces to a multiple of 8 bytes. Files are written to `<path>.tmp-<pid>`, flushed and renamed,
// so a crash or an error never leaves a half-written file at `path` (src/atomic-file.ts).
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';

export type SafetensorsDType = 'F32' | 'F64' | 'I32' | 'I64';
export type SafetensorsData = Float32Array | Float64Array | Int32Array | BigInt64Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsContents {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** A tensor to be written whose bytes may be fetched only when its turn comes (GPU readback). */
export interface TensorSpec {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsData | (() => Promise<SafetensorsData>);
}

export class SafetensorsError extends Error {}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, F64: 8, I32: 4, I64: 8 };
/** The reference implementation's Dtype order, which increases with alignment. */
const RANK: Record<SafetensorsDType, number> = { I32: 0, F32: 1, F64: 2, I64: 3 };
const MAX_HEADER = 100_000_000;
const METADATA = '__metadata__';

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function arrayDType(data: SafetensorsData): SafetensorsDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  return 'I64';
}

/** The header bytes (length prefix included) and the tensors in file order with their offsets. */
export function planSafetensors(
  specs: readonly Omit<TensorSpec, 'data'>[],
  metadata: Record<string, string> = {},
): { header: Uint8Array; order: { spec: number; begin: number; end: number }[]; dataBytes: number } {
  const names = new Set<string>();
  for (const s of specs) {
    if (s.name === METADATA) throw new SafetensorsError(`safetensors: '${METADATA}' cannot name a tensor`);
    if (names.has(s.name)) throw new SafetensorsError(`safetensors: tensor '${s.name}' appears twice`);
    if (!(s.dtype in BYTES)) throw new SafetensorsError(`safetensors: unsupported dtype ${s.dtype} for '${s.name}'`);
    if (!s.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new SafetensorsError(`safetensors: invalid shape [${s.shape.join(', ')}] for '${s.name}'`);
    names.add(s.name);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`safetensors: metadata '${k}' must be a string`);
  }
  const indices = specs.map((_, i) => i);
  indices.sort((a, b) => RANK[specs[b]!.dtype] - RANK[specs[a]!.dtype] || (specs[a]!.name < specs[b]!.name ? -1 : specs[a]!.name > specs[b]!.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = metadata;
  const order: { spec: number; begin: number; end: number }[] = [];
  let offset = 0;
  for (const i of indices) {
    const s = specs[i]!;
    const end = offset + numel(s.shape) * BYTES[s.dtype];
    header[s.name] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [offset, end] };
    order.push({ spec: i, begin: offset, end });
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { header: bytes, order, dataBytes: offset };
}

/** Little-endian bytes of a typed array (every platform Node runs on is little-endian). */
function bytesOf(data: SafetensorsData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The whole file in memory. */
export function serializeSafetensors(tensors: ReadonlyMap<string, { dtype?: SafetensorsDType; shape: readonly number[]; data: SafetensorsData }>, metadata: Record<string, string> = {}): Uint8Array {
  const specs = [...tensors].map(([name, t]) => ({ name, dtype: t.dtype ?? arrayDType(t.data), shape: t.shape, data: t.data }));
  const { header, order, dataBytes } = planSafetensors(specs, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  for (const { spec, begin } of order) out.set(bytesOf(checkData(specs[spec]!, specs[spec]!.data)), header.length + begin);
  return out;
}

function checkData(spec: Omit<TensorSpec, 'data'>, data: SafetensorsData): SafetensorsData {
  if (arrayDType(data) !== spec.dtype || data.length !== numel(spec.shape)) {
    throw new SafetensorsError(`safetensors: '${spec.name}' is declared ${spec.dtype} [${spec.shape.join(', ')}] but its data is ${arrayDType(data)} × ${data.length}`);
  }
  return data;
}

/**
 * Writes a safetensors file atomically: a temporary file in the same directory, flushed to
 * disk, then renamed over `path`. Tensor data is fetched one tensor at a time, in file order, so
 * a model's tensors need not all be on the host at once. On any error the temporary file is
 * removed and `path` is left as it was.
 */
export async function writeSafetensors(path: string, specs: readonly TensorSpec[], metadata: Record<string, string> = {}): Promise<void> {
  const { header, order } = planSafetensors(specs, metadata);
  await writeFileAtomic(path, async (write) => {
    write(header);
    for (const { spec } of order) {
      const s = specs[spec]!;
      const data = typeof s.data === 'function' ? await s.data() : s.data;
      write(bytesOf(checkData(s, data)));
    }
  });
}

/** Parses a whole safetensors file, checking every offset against the header and the buffer. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsContents {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: ${why}`);
  };
  if (bytes.length < 8) fail(`not a safetensors file (${bytes.length} bytes, shorter than the 8-byte header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  // A safetensors file opens with a sane header length and then '{': anything else is another kind of file.
  const notSafetensors = 'not a safetensors file (it does not start with a header length and a JSON header)';
  if (n > MAX_HEADER) fail(notSafetensors);
  if (8 + n > bytes.length) fail(`header of ${n} bytes runs past the end of the ${bytes.length}-byte file`);
  if (bytes[8] !== 0x7b) fail(notSafetensors);
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    if (!text.startsWith('{')) fail('header does not start with {');
    header = JSON.parse(text);
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    fail(`header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const entries = Object.entries(header as Record<string, unknown>);
  const metadata: Record<string, string> = {};
  const found: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of entries) {
    if (name === METADATA) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${METADATA} is not an object`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${METADATA}.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info?.dtype;
    if (typeof dtype !== 'string' || !(dtype in BYTES)) fail(`'${name}' has dtype ${String(dtype)}; dawnet reads F32, F64, I32 and I64`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`'${name}' has an invalid shape`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) fail(`'${name}' has invalid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape as number[]) * BYTES[dtype as SafetensorsDType];
    if (end - begin !== expected) fail(`'${name}' spans ${end - begin} bytes, its dtype and shape need ${expected}`);
    found.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }
  // The data must be covered exactly, without holes or overlaps (no polyglot files).
  const sorted = [...found].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of sorted) {
    if (t.begin !== cursor) fail(`'${t.name}' starts at byte ${t.begin}, expected ${cursor} (a hole or an overlap)`);
    cursor = t.end;
  }
  const dataStart = 8 + n;
  if (dataStart + cursor !== bytes.length) fail(`the tensors cover ${cursor} bytes of data, the file holds ${bytes.length - dataStart}`);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const t of found) {
    // A copy, so that every array is aligned whatever the header's padding (and never a view of
    // a Node Buffer's shared pool: Buffer#slice does not copy).
    const raw = new Uint8Array(bytes.subarray(dataStart + t.begin, dataStart + t.end)).buffer;
    const data = t.dtype === 'F32' ? new Float32Array(raw) : t.dtype === 'F64' ? new Float64Array(raw) : t.dtype === 'I32' ? new Int32Array(raw) : new BigInt64Array(raw);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SafetensorsError(`${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a safetensors file' : (err as Error).message}`);
  }
  return parseSafetensors(bytes, path);
}
