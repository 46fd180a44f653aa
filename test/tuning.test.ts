// The tuner's table: stored per adapter, read back, refused with its path when corrupt, and
// followed by the matmul and convolution planners for the shapes it names (and only those).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../src/index.js';
import { convKey, loadTuning, matmulKey, saveTuning, tuningFile, type TunedChoice } from '../src/gpu/tuning.js';
import { conv2dGeometry, convKernelFor } from '../src/ops/conv.js';
import { matmulPlanFor } from '../src/ops/matmul.js';

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
});
