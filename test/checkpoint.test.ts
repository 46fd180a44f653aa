// safetensors reading and writing, and checkpoints: PyTorch names and dtypes, optimizer state,
// metadata, mismatch reports, non-strict loads and atomic writes.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  F,
  Generator,
  loadCheckpoint,
  optim,
  parseSafetensors,
  readSafetensors,
  saveCheckpoint,
  scope,
  serializeSafetensors,
  tensor,
  type SafetensorsData,
  type Tensor,
} from '../src/index.js';
import { Module } from '../src/nn/module.js';
import { TinyNet, xorBlobs } from './fixtures/tiny-net.js';

const dir = mkdtempSync(join(tmpdir(), 'dawnet-checkpoint-'));

function headerOf(bytes: Uint8Array): { n: number; json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; text: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, json: JSON.parse(text), text };
}

/** A safetensors file from a literal header and data bytes, as another writer might make it. */
function rawFile(header: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  const tensors = new Map<string, { shape: number[]; data: SafetensorsData }>([
    ['b.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, -0, 6]) }],
    ['a.count', { shape: [], data: BigInt64Array.of(-5n) }],
    ['z.index', { shape: [4], data: Int32Array.from([1, -1, 2 ** 31 - 1, -(2 ** 31)]) }],
    ['c.double', { shape: [1], data: Float64Array.of(Math.PI) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
  ]);

  it('round-trips F32, F64, I32 and I64 tensors, scalars, empty tensors and metadata', () => {
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'ü' });
    const back = parseSafetensors(bytes);
    expect(back.metadata).toEqual({ format: 'pt', note: 'ü' });
    expect([...back.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      expect(got.shape).toEqual(t.shape);
      expect(got.data.constructor).toBe(t.data.constructor);
      expect(Array.from(got.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('writes the layout the reference implementation writes', () => {
    const bytes = serializeSafetensors(tensors, { format: 'pt' });
    const { n, json, text } = headerOf(bytes);
    // Header padded with spaces to a multiple of 8, so the data starts 8-byte aligned.
    expect(n % 8).toBe(0);
    expect(text.startsWith('{"__metadata__":{"format":"pt"}')).toBe(true);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    // Descending dtype alignment (I64, F64, F32, I32), then names; contiguous offsets from 0.
    const names = Object.keys(json).filter((k) => k !== '__metadata__');
    expect(names).toEqual(['a.count', 'c.double', 'b.weight', 'empty', 'z.index']);
    let cursor = 0;
    for (const name of names) {
      const [begin, end] = json[name]!.data_offsets;
      expect(begin).toBe(cursor);
      cursor = end;
    }
    expect(8 + n + cursor).toBe(bytes.length);
    expect(json['a.count']).toEqual({ dtype: 'I64', shape: [], data_offsets: [0, 8] });
    // Little-endian data: the I64 −5 is fb ff ff ff ff ff ff ff.
    expect(Array.from(bytes.subarray(8 + n, 8 + n + 8))).toEqual([0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it("reads another writer's unpadded file", () => {
    const file = rawFile('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Uint8Array(Int32Array.from([1, 2, 3, -4]).buffer));
    const t = parseSafetensors(file).tensors.get('test')!;
    expect(t.dtype).toBe('I32');
    expect(Array.from(t.data as Int32Array)).toEqual([1, 2, 3, -4]);
  });

  it('rejects malformed files with the reason', () => {
    const data = new Uint8Array(16);
    const bad: [string, Uint8Array, RegExp][] = [
      ['hole', rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', data), /hole/],
      ['overlap', rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data), /hole or an overlap/],
      ['size', rawFile('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', data), /need 12/],
      ['trailing bytes', rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data), /cover 8 bytes/],
      ['dtype', rawFile('{"a":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}}', data), /BF16/],
      ['metadata', rawFile('{"__metadata__":{"epoch":3}}', new Uint8Array(0)), /not a string/],
      ['not JSON', rawFile('{"a":', new Uint8Array(0)), /JSON/],
      ['short', new Uint8Array(4), /8-byte/],
    ];
    for (const [, bytes, why] of bad) expect(() => parseSafetensors(bytes)).toThrow(why);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1000n, true);
    expect(() => parseSafetensors(huge)).toThrow(/past the end/);
  });
});

/** Trains a few full-batch steps, leaving the model, its buffers and the optimizer with state. */
function train(net: TinyNet, opt: { step(): void; zeroGrad(): void }, steps: number, xs: Tensor, ys: Tensor): void {
  for (let i = 0; i < steps; i++) {
    scope(() => F.crossEntropy(net.forward(xs), ys).backward());
    opt.step();
    opt.zeroGrad();
  }
}

async function snapshot(net: Module): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [name, t] of net.namedState()) out.set(name, Array.from(await t.toArray()));
  return out;
}

function data(): { xs: Tensor; ys: Tensor; dispose(): void } {
  const { x, labels } = xorBlobs(16, 3);
  const xs = tensor(x, [16, 2]).keep();
  const ys = tensor(labels, [16]).keep();
  return { xs, ys, dispose: () => (xs.dispose(), ys.dispose()) };
}

describe('checkpoints', () => {
  it('store the model under PyTorch names, num_batches_tracked as I64, optimizer state and metadata', async () => {
    const { xs, ys, dispose } = data();
    const net = new TinyNet({ seed: 1, dropout: 0.2 });
    const opt = new optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
    train(net, opt, 3, xs, ys);
    const g = new Generator(9);
    g.normal(); // leaves a spare normal in the state: a number, where a fresh generator has NaN
    const path = join(dir, 'sgd.safetensors');
    const rng = { data: g.getState(), dropout: net.dropoutGenerator.getState(), init: new Generator(4).getState() };
    await saveCheckpoint(path, { model: net, optimizer: opt, epoch: 2, step: 3, args: { lr: 0.1, arch: 'tiny' }, classNames: ['even', 'odd'], rng });

    const file = await readSafetensors(path);
    const keys = [...file.tensors.keys()];
    for (const name of ['fc1.weight', 'fc1.bias', 'norm.running_mean', 'norm.num_batches_tracked', 'fc2.weight', 'fc2.bias']) expect(keys).toContain(name);
    expect(file.tensors.get('norm.num_batches_tracked')).toMatchObject({ dtype: 'I64', shape: [], data: BigInt64Array.of(3n) });
    expect(file.tensors.get('fc1.weight')!.shape).toEqual([16, 2]);
    expect(file.tensors.get('optimizer.state.fc2.weight.momentum_buffer')!.shape).toEqual([2, 16]);
    expect(file.metadata.format).toBe('pt');
    expect(file.metadata['dawnet.format_version']).toBe('1');
    expect(JSON.parse(file.metadata.optimizer!)).toMatchObject({ kind: 'SGD', groups: [{ hyperparameters: { lr: 0.1, momentum: 0.9, nesterov: true }, params: ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'] }] });

    const other = new TinyNet({ seed: 2, dropout: 0.2 });
    const otherOpt = new optim.SGD(other.parameters(), { lr: 0.5 });
    const loaded = await loadCheckpoint(path, { model: other, optimizer: otherOpt });
    expect(loaded).toMatchObject({ formatVersion: 1, epoch: 2, step: 3, args: { lr: 0.1, arch: 'tiny' }, classNames: ['even', 'odd'], missing: [], unexpected: [] });
    expect(loaded.rng).toEqual(rng);
    expect(Number.isNaN(loaded.rng!.init![4])).toBe(true);
    expect(otherOpt.paramGroups[0]).toMatchObject({ lr: 0.1, momentum: 0.9, nesterov: true });
    expect(await snapshot(other)).toEqual(await snapshot(net));

    // Training on from the copy gives the same bits as training on from the original.
    other.dropoutGenerator.setState(loaded.rng!.dropout!);
    await other.norm.syncCounter();
    train(net, opt, 2, xs, ys);
    train(other, otherOpt, 2, xs, ys);
    expect(await snapshot(other)).toEqual(await snapshot(net));
    for (const o of [opt, otherOpt]) o.dispose();
    for (const m of [net, other]) m.dispose();
    dispose();
  });

  it("round-trip Adam's moments and step counts", async () => {
    const { xs, ys, dispose } = data();
    const net = new TinyNet({ seed: 3 });
    const opt = new optim.AdamW(net.parameters(), { lr: 0.01 });
    train(net, opt, 4, xs, ys);
    const path = join(dir, 'adam.safetensors');
    await saveCheckpoint(path, { model: net, optimizer: opt });
    const file = await readSafetensors(path);
    expect(file.tensors.get('optimizer.state.fc1.bias.step')).toMatchObject({ dtype: 'F32', shape: [], data: Float32Array.of(4) });
    expect(file.tensors.get('optimizer.state.fc1.bias.exp_avg_sq')!.shape).toEqual([16]);

    const other = new TinyNet({ seed: 4 });
    const otherOpt = new optim.AdamW(other.parameters(), { lr: 0.01 });
    await loadCheckpoint(path, { model: other, optimizer: otherOpt });
    await other.norm.syncCounter();
    const [a, b] = [await opt.stateDict(), await otherOpt.stateDict()];
    expect(b.state.get(0)!.step).toBe(4);
    expect(Array.from(b.state.get(2)!.tensors.get('exp_avg')!)).toEqual(Array.from(a.state.get(2)!.tensors.get('exp_avg')!));
    train(net, opt, 2, xs, ys);
    train(other, otherOpt, 2, xs, ys);
    expect(await snapshot(other)).toEqual(await snapshot(net));
    for (const o of [opt, otherOpt]) o.dispose();
    for (const m of [net, other]) m.dispose();
    dispose();
  });

  it('list every mismatch of model and optimizer in one error and load nothing', async () => {
    const net = new TinyNet({ seed: 5 });
    const opt = new optim.Adam(net.parameters());
    const path = join(dir, 'mismatch.safetensors');
    await saveCheckpoint(path, { model: net, optimizer: opt });
    const wider = new TinyNet({ seed: 6, hidden: 8, classes: 3 });
    const sgd = new optim.SGD(wider.parameters(), { lr: 0.1 });
    const before = await snapshot(wider);
    const error = await loadCheckpoint(path, { model: wider, optimizer: sgd }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    for (const line of [
      'fc1.weight: checkpoint has [16, 2], model has [8, 2]',
      'fc1.bias: checkpoint has [16], model has [8]',
      'norm.running_mean: checkpoint has [16], model has [8]',
      'fc2.weight: checkpoint has [2, 16], model has [3, 8]',
      'fc2.bias: checkpoint has [2], model has [3]',
      "optimizer: the state is Adam's, this optimizer is SGD",
      'nothing was loaded',
    ]) {
      expect(message).toContain(line);
    }
    expect(await snapshot(wider)).toEqual(before);
    for (const o of [opt, sgd]) o.dispose();
    for (const m of [net, wider]) m.dispose();
  });

  it('load a backbone without its head only when strict is false', async () => {
    const net = new TinyNet({ seed: 7 });
    const path = join(dir, 'backbone.safetensors');
    await saveCheckpoint(path, { model: net, epoch: 1 });
    class Backbone extends Module {
      readonly net = new TinyNet({ seed: 8 });
      constructor() {
        super();
        this.registerModule('fc1', this.net.fc1);
        this.registerModule('norm', this.net.norm);
      }
    }
    const backbone = new Backbone();
    const strictError = await loadCheckpoint(path, { model: backbone }).catch((e: Error) => e.message);
    expect(strictError).toContain('fc2.weight: in the checkpoint but not in the model');
    expect(strictError).toContain('fc2.bias: in the checkpoint but not in the model');
    const loaded = await loadCheckpoint(path, { model: backbone, strict: false });
    expect([...loaded.unexpected].sort()).toEqual(['fc2.bias', 'fc2.weight']);
    expect(loaded.missing).toEqual([]);
    expect(Array.from(await backbone.net.fc1.weight.toArray())).toEqual(Array.from(await net.fc1.weight.toArray()));
    // A head-less checkpoint into the full model: the head keeps its own initialisation.
    const headless = join(dir, 'headless.safetensors');
    await saveCheckpoint(headless, { model: backbone });
    const full = new TinyNet({ seed: 9 });
    const head = Array.from(await full.fc2.weight.toArray());
    expect((await loadCheckpoint(headless, { model: full, strict: false })).missing).toEqual(['fc2.weight', 'fc2.bias']);
    expect(Array.from(await full.fc2.weight.toArray())).toEqual(head);
    expect(Array.from(await full.fc1.weight.toArray())).toEqual(Array.from(await net.fc1.weight.toArray()));
    for (const m of [net, backbone.net, full]) m.dispose();
  });

  it('are written atomically: a failed write leaves the previous file intact and no temporary file', async () => {
    const net = new TinyNet({ seed: 10 });
    const path = join(dir, 'atomic.safetensors');
    await saveCheckpoint(path, { model: net, step: 1 });
    const previous = readFileSync(path);
    // norm.running_mean comes last in the file: the failure strikes after the other tensors were written.
    net.norm.runningMean.dispose();
    await expect(saveCheckpoint(path, { model: net, step: 2 })).rejects.toThrow(/disposed/);
    expect(readFileSync(path).equals(previous)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect((await readSafetensors(path)).metadata.step).toBe('1');
    // A truncated file (a crash of a non-atomic writer) is refused rather than half-loaded.
    writeFileSync(join(dir, 'truncated.safetensors'), previous.subarray(0, previous.length - 10));
    const fresh = new TinyNet();
    await expect(loadCheckpoint(join(dir, 'truncated.safetensors'), { model: fresh })).rejects.toThrow(/cover/);
    for (const m of [net, fresh]) m.dispose();
  });
});
