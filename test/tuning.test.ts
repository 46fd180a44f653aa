// The tuner's table: stored per adapter, read back, refused with its path when corrupt, and
// followed by the matmul and convolution planners for the shapes it names (and only those).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backend, scope, tensor } from '../src/index.js';
import { convKey, loadTuning, matmulKey, saveTuning, tuningFile, type TunedChoice } from '../src/gpu/tuning.js';
import { autotuneFromEnv } from '../src/gpu/tuner.js';
import { conv2dForward, conv2dGeometry, convKernelFor } from '../src/ops/conv.js';
import { matmulPlanFor, runMatmul } from '../src/ops/matmul.js';

const tile = { WG_X: 8, WG_Y: 16, TM: 4, TN4: 2, BK: 16 };
const winner: TunedChoice = { path: 'gemm', gemmTile: tile, ms: 1, baselineMs: 2 };
const plain = { transposeA: false, transposeB: false };

describe('tuning table', () => {
  const saved = process.env.DAWNET_TUNING_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.DAWNET_TUNING_DIR;
    else process.env.DAWNET_TUNING_DIR = saved;
  });

  it('is stored per adapter and read back; a corrupt file is an error naming it', () => {
    process.env.DAWNET_TUNING_DIR = mkdtempSync(join(tmpdir(), 'dawnet-tuning-'));
    const adapter = 'NVIDIA H200 (test)';
    expect(loadTuning(adapter)).toEqual({ adapter, entries: {} });
    const file = saveTuning({ adapter, entries: { [matmulKey(4, 5, 6, 1, false, true)]: winner } });
    expect(file).toBe(join(process.env.DAWNET_TUNING_DIR, 'nvidia-h200-test.json'));
    expect(loadTuning(adapter).entries['matmul 1x4x5x6 tB']).toEqual(winner);
    writeFileSync(tuningFile(adapter), '{ not json');
    expect(() => loadTuning(adapter)).toThrow(/nvidia-h200-test\.json is unreadable/);
  });

  it('steers the planners for the shapes it names, unless a path is pinned', () => {
    const entries = backend().tuning.entries;
    const key = matmulKey(40, 24, 33, 1, false, false);
    entries[key] = winner;
    const g = conv2dGeometry([2, 3, 9, 9], [5, 3, 3, 3], null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
    const ckey = convKey('backward_input', g);
    entries[ckey] = winner;
    try {
      expect(matmulPlanFor([40, 33], [33, 24], plain)).toMatchObject({ path: 'gemm', overrides: tile });
      expect(matmulPlanFor([40, 33], [33, 24], plain, { path: 'tiled' }).path).toBe('tiled');
      expect(matmulPlanFor([41, 33], [33, 24], plain).overrides).not.toEqual(tile);
      expect(convKernelFor('backward_input', g)).toBe('gemm 64x64/4x8/16');
      expect(convKernelFor('backward_input', g, { path: 'direct' })).toBe('direct');
    } finally {
      delete entries[key];
      delete entries[ckey];
    }
  });

  it('times an untuned shape on its first use under DAWNET_TUNE=1, records the winner once and saves it', async () => {
    process.env.DAWNET_TUNING_DIR = mkdtempSync(join(tmpdir(), 'dawnet-tuning-'));
    const gpu = backend();
    const key = matmulKey(5, 7, 3, 1, false, false);
    const g = conv2dGeometry([1, 2, 5, 5], [3, 2, 3, 3], null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
    const ckey = convKey('forward', g);
    const a = Float32Array.from({ length: 15 }, (_, i) => i - 7);
    const b = Float32Array.from({ length: 21 }, (_, i) => (i % 5) - 2);
    gpu.autotune = true;
    try {
      // The first call runs the untuned choice and queues the shape; the read submits it, then times the candidates.
      const out = await scope(() => runMatmul(tensor(a, [5, 3]), tensor(b, [3, 7]), plain).toArray());
      expect(out[0]).toBe(a[0]! * b[0]! + a[1]! * b[7]! + a[2]! * b[14]!);
      const entry = gpu.tuning.entries[key]!;
      expect(['tiled', 'simd', 'gemm']).toContain(entry.path);
      expect(entry.ms).toBeGreaterThan(0);
      expect(entry.ms).toBeLessThanOrEqual(entry.baselineMs);
      expect(loadTuning(gpu.adapterName).entries[key]).toEqual(entry);
      expect(matmulPlanFor([5, 3], [3, 7], plain).path).toBe(entry.path);
      // Once per shape: a second use times nothing and keeps the entry.
      await scope(() => runMatmul(tensor(a, [5, 3]), tensor(b, [3, 7]), plain).toArray());
      expect(gpu.tuning.entries[key]).toBe(entry);
      // A convolution pass likewise, at the next sync.
      await scope(async () => {
        conv2dForward(tensor(new Float32Array(50), [1, 2, 5, 5]), tensor(new Float32Array(54), [3, 2, 3, 3]), null, g);
        await gpu.sync();
      });
      expect(['direct', 'simd', 'gemm']).toContain(gpu.tuning.entries[ckey]?.path);
      expect(loadTuning(gpu.adapterName).entries[ckey]).toEqual(gpu.tuning.entries[ckey]);
    } finally {
      gpu.autotune = false;
      delete gpu.tuning.entries[key];
      delete gpu.tuning.entries[ckey];
    }
  });

  it('reads DAWNET_TUNE as 0 or 1 and refuses anything else', () => {
    expect(autotuneFromEnv(undefined)).toBe(false);
    expect(autotuneFromEnv('0')).toBe(false);
    expect(autotuneFromEnv('1')).toBe(true);
    expect(() => autotuneFromEnv('yes')).toThrow(/DAWNET_TUNE must be '0' or '1', got 'yes'/);
  });
});
