// PyTorch's own checkpoint files: torch.save's zip format (PyTorch ≥ 1.6), a zip archive of
// `<name>/data.pkl` (the pickled object), `<name>/data/<key>` (each storage's raw little-endian
// bytes) and `<name>/version`. The pickle is read by the restricted unpickler of pickle.ts, which
// builds tensors and (ordered) dicts and refuses anything else. readTensorFile picks the reader
// by the file's first bytes, so loadCheckpoint takes `.pth` and `.safetensors` files alike.
import { open, readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { PickleTuple, unpickle, type PickleGlobal, type PickleValue } from './pickle.js';
import { readSafetensors, SafetensorsError, type SafetensorsContents, type SafetensorsData, type SafetensorsDType, type SafetensorsTensor } from './safetensors.js';

/** Storage classes by torch name: the safetensors dtype dawnet keeps and how to read the bytes. */
const STORAGES: Record<string, { dtype: SafetensorsDType; bytes: number; read: (b: ArrayBuffer) => SafetensorsData }> = {
  FloatStorage: { dtype: 'F32', bytes: 4, read: (b) => new Float32Array(b) },
  DoubleStorage: { dtype: 'F64', bytes: 8, read: (b) => new Float64Array(b) },
  HalfStorage: { dtype: 'F32', bytes: 2, read: (b) => Float32Array.from(new Uint16Array(b), halfToFloat) },
  IntStorage: { dtype: 'I32', bytes: 4, read: (b) => new Int32Array(b) },
  LongStorage: { dtype: 'I64', bytes: 8, read: (b) => new BigInt64Array(b) },
};

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The entries of a zip archive by name: stored or deflated, with zip64 sizes and offsets. */
export function readZip(bytes: Uint8Array, source: string): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: ${why}`);
  };
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a zip archive (no end-of-central-directory record)');
  let count = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || offset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {
    const record = Number(view.getBigUint64(eocd - 12, true));
    count = Number(view.getBigUint64(record + 32, true));
    offset = Number(view.getBigUint64(record + 48, true));
  }
  const entries = new Map<string, Uint8Array>();
  const decoder = new TextDecoder();
  for (let e = 0; e < count; e++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) fail(`central directory entry ${e} is damaged`);
    const method = view.getUint16(offset + 10, true);
    let compressed = view.getUint32(offset + 20, true);
    let size = view.getUint32(offset + 24, true);
    const [nameLength, extraLength, commentLength] = [28, 30, 32].map((k) => view.getUint16(offset + k, true)) as [number, number, number];
    let local = view.getUint32(offset + 42, true);
    const name = decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    // zip64: the 0xffffffff fields follow, in this order, in the extra field with id 1.
    for (let x = offset + 46 + nameLength; x + 4 <= offset + 46 + nameLength + extraLength; ) {
      const [id, length] = [view.getUint16(x, true), view.getUint16(x + 2, true)];
      if (id === 1) {
        let p = x + 4;
        const next = () => Number(view.getBigUint64((p += 8) - 8, true));
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      x += 4 + length;
    }
    if (view.getUint32(local, true) !== 0x04034b50) fail(`${name}: damaged local header`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + compressed > bytes.length) fail(`${name} runs past the end of the file`);
    const raw = bytes.subarray(start, start + compressed);
    if (method === 0) entries.set(name, raw);
    else if (method === 8) entries.set(name, inflateRawSync(raw));
    else fail(`${name} uses zip compression method ${method}; dawnet reads stored and deflated entries`);
    if (entries.get(name)!.length !== size) fail(`${name}: ${entries.get(name)!.length} bytes, the directory says ${size}`);
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

interface StorageRef {
  readonly storage: string;
  readonly key: string;
  readonly numel: number;
}

const isTensor = (v: PickleValue): v is SafetensorsTensor => typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v;

/** The object a torch.save zip archive holds, with tensors as safetensors tensors. */
export function parsePthObject(bytes: Uint8Array, source: string): PickleValue {
  const entries = readZip(bytes, source);
  const pkl = [...entries.keys()].find((k) => k.endsWith('/data.pkl') && k.split('/').length === 2);
  if (!pkl) throw new SafetensorsError(`${source}: a zip archive without <name>/data.pkl is not a torch.save file`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const storages = new Map<string, SafetensorsData>();
  const global = (name: string, call?: (args: PickleValue[]) => PickleValue): PickleGlobal => ({ global: name, ...(call ? { call } : {}) });
  const globals: Record<string, PickleGlobal> = {
    'collections.OrderedDict': global('collections.OrderedDict', () => new Map()),
    'torch._utils._rebuild_tensor_v2': global('torch._utils._rebuild_tensor_v2', ([storage, offset, size, stride]) => rebuild(storage, offset, size, stride)),
    'torch._utils._rebuild_parameter': global('torch._utils._rebuild_parameter', ([data]) => data!),
    ...Object.fromEntries(Object.keys(STORAGES).map((s) => [`torch.${s}`, global(s)])),
  };
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: ${why}`);
  };
  const ints = (v: PickleValue, what: string): number[] => {
    if (!(v instanceof PickleTuple) || !v.items.every((d) => typeof d === 'number')) fail(`${what} is not a tuple of integers`);
    return (v as PickleTuple).items as number[];
  };
  function rebuild(ref: PickleValue | undefined, offsetValue: PickleValue | undefined, sizeValue: PickleValue | undefined, strideValue: PickleValue | undefined): SafetensorsTensor {
    const { storage, key } = ref as StorageRef;
    const spec = STORAGES[storage]!;
    let data = storages.get(key);
    if (!data) {
      const raw = entries.get(`${prefix}data/${key}`) ?? fail(`storage ${key} is missing from the archive`);
      if (raw.length % spec.bytes !== 0) fail(`storage ${key} holds ${raw.length} bytes, not a whole number of ${storage} elements`);
      data = spec.read(new Uint8Array(raw).buffer);
      storages.set(key, data);
    }
    const shape = ints(sizeValue ?? null, 'a tensor size');
    const stride = ints(strideValue ?? null, 'a tensor stride');
    const offset = typeof offsetValue === 'number' ? offsetValue : fail('a tensor offset is not an integer');
    const numel = shape.reduce((a, b) => a * b, 1);
    // Gather through the strides: a saved view need not be contiguous.
    const out = new (data.constructor as new (n: number) => SafetensorsData)(numel);
    const index = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let at = offset;
      for (let d = 0; d < shape.length; d++) at += index[d]! * stride[d]!;
      if (at >= data.length) fail(`a tensor of shape [${shape.join(', ')}] reads past its storage ${key}`);
      (out as Float32Array)[i] = (data as Float32Array)[at]!;
      for (let d = shape.length - 1; d >= 0 && ++index[d]! === shape[d]; d--) index[d] = 0;
    }
    return { dtype: spec.dtype, shape, data: out };
  }
  return unpickle(entries.get(pkl)!, {
    source,
    globals,
    persistentLoad(pid) {
      const [kind, type, key, , numel] = pid instanceof PickleTuple ? pid.items : [];
      const storage = (type as PickleGlobal | undefined)?.global;
      if (kind !== 'storage' || !storage || typeof key !== 'string') fail('a persistent id that is not a storage');
      if (!(storage! in STORAGES)) fail(`${storage} tensors are not supported (dawnet reads ${Object.keys(STORAGES).join(', ')})`);
      return { storage: storage!, key: String(key), numel: Number(numel) } satisfies StorageRef;
    },
  });
}

/**
 * A state dict from a torch.save file: the top-level dict's tensors, or, when it holds none, the
 * one dict of tensors inside it (RotNet's {'network': …, 'epoch': …}, {'state_dict': …}).
 * Numbers and strings beside it become metadata (epoch).
 */
export function parsePth(bytes: Uint8Array, source: string): SafetensorsContents {
  const object = parsePthObject(bytes, source);
  if (!(object instanceof Map)) throw new SafetensorsError(`${source}: holds a ${object?.constructor?.name ?? typeof object}, not a dict of tensors`);
  const tensorDicts = [...object].filter(([, v]) => v instanceof Map && v.size > 0 && [...v.values()].every(isTensor));
  let dict: Map<PickleValue, PickleValue> = object;
  if (![...object.values()].some(isTensor)) {
    if (tensorDicts.length !== 1) {
      throw new SafetensorsError(`${source}: no state dict found (top-level keys: ${[...object.keys()].map(String).join(', ')}; expected tensors, or exactly one dict of tensors)`);
    }
    dict = tensorDicts[0]![1] as Map<PickleValue, PickleValue>;
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [k, v] of dict) if (isTensor(v)) tensors.set(String(k), v);
  const metadata: Record<string, string> = {};
  for (const [k, v] of object) if (typeof v === 'number' || typeof v === 'string') metadata[String(k)] = String(v);
  return { tensors, metadata };
}

/** The first n bytes of a file, or null when it cannot be read (readSafetensors then says why). */
async function head(path: string, n: number): Promise<Uint8Array | null> {
  try {
    const file = await open(path);
    try {
      const { buffer, bytesRead } = await file.read(new Uint8Array(n), 0, n, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch {
    return null;
  }
}

/** A safetensors file or a torch.save (.pth) file, told apart by their first bytes. */
export async function readTensorFile(path: string): Promise<SafetensorsContents> {
  const magic = await head(path, 4);
  if (magic && magic.length === 4 && new DataView(magic.buffer).getUint32(0, true) === 0x04034b50) return parsePth(await readFile(path), path);
  if (magic && magic[0] === 0x80 && magic[1]! <= 5) {
    throw new SafetensorsError(`${path}: a torch.save file in the legacy format (PyTorch < 1.6); re-save it with a newer torch, or as safetensors`);
  }
  return readSafetensors(path);
}
