// The teacher's ranking without a device: shards' candidates merged in any order give, for every
// class, the top K by score among the images whose top P includes the class, as a brute-force
// count finds it; the ranking files round-trip and refuse other data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeCandidates, pseudoLabels, readRanking, shardCandidates, writeRanking, type Candidates } from '../src/score/ranking.js';
import { Generator } from '../src/random.js';
import { bruteForceRanking } from './ranking-reference.js';

/** Softmax-like rows whose scores take few values, so that ties within rows and across images are common. */
function tiedRows(n: number, classes: number, g: Generator): Float32Array {
  const p = new Float32Array(n * classes);
  for (let i = 0; i < p.length; i++) p[i] = g.integer(6) / 8;
  return p;
}

/** Shards of `size` images merged in the order given. */
function sharded(probs: Float32Array, classes: number, size: number, topK: number, topP: number, order: (starts: number[]) => number[]): Candidates {
  const n = probs.length / classes;
  const starts = Array.from({ length: Math.ceil(n / size) }, (_, s) => s * size);
  let merged: Candidates | null = null;
  for (const start of order(starts)) {
    const end = Math.min(n, start + size);
    const idx = Array.from({ length: end - start }, (_, i) => start + i);
    merged = mergeCandidates(merged, shardCandidates(probs.subarray(start * classes, end * classes), idx, classes, topK, topP), topK);
  }
  return merged!;
}

describe('the teacher ranking', () => {
  it('per class: the top K by score among images whose top P includes the class, whatever the shards and their order', () => {
    const g = new Generator(17);
    for (const [n, classes, topK, topP, size] of [
      [65, 7, 5, 2, 8],
      [130, 3, 17, 1, 17],
      [33, 5, 1000, 10, 4],
      [17, 10, 3, 10, 1],
      [64, 4, 16, 3, 64],
    ] as const) {
      const probs = tiedRows(n, classes, g);
      const expected = bruteForceRanking(probs, classes, topK, topP);
      expect(sharded(probs, classes, size, topK, topP, (s) => s)).toEqual(expected);
      expect(sharded(probs, classes, size, topK, topP, (s) => [...s].reverse())).toEqual(expected);
      // Every image is ranked for min(P, classes) classes at most, each class for K images at most.
      expect(expected.every((l) => l.length <= topK)).toBe(true);
      expect(expected.flat().length).toBeLessThanOrEqual(n * Math.min(topP, classes));
    }
  });

  it('writes JSON lines per class (rank, image, index, score) that train:student reads back, and refuses other data', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dawnet-ranking-'));
    try {
      const probs = tiedRows(20, 3, new Generator(3));
      const ranked = bruteForceRanking(probs, 3, 4, 2);
      const source = (i: number) => `img/${i}.png`;
      const data = { root: 'img', unlabeled: true, imageSize: 8, channels: 1 as const, length: 20 };
      writeRanking(dir, { teacher: 't', teacherHash: 'h', data, classes: ['cat', 'dog', 'a/b'], topK: 4, topP: 2, batchSize: 4, shardSize: 8, shards: [] }, ranked, source);
      const r = readRanking(dir)!;
      expect(r.meta.files).toEqual(['cat.jsonl', 'dog.jsonl', 'a_b.jsonl']);
      expect(r.ranked[1]![0]).toEqual({ rank: 1, image: source(ranked[1]![0]![0]), index: ranked[1]![0]![0], score: ranked[1]![0]![1] });
      const labels = pseudoLabels(r, { length: 20, classes: ['cat', 'dog', 'a/b'], source }, 2);
      expect([...labels.rows]).toEqual(ranked.flatMap((l) => l.slice(0, 2).map(([i]) => i)));
      expect([...labels.labels]).toEqual(ranked.flatMap((l, c) => l.slice(0, 2).map(() => c)));
      expect(() => pseudoLabels(r, { length: 21, classes: ['cat', 'dog', 'a/b'], source }, 2)).toThrow(/made on 20 images, this data has 21/);
      expect(() => pseudoLabels(r, { length: 20, classes: ['cat', 'dog', 'cow'], source }, 2)).toThrow(/made on the classes \[cat, dog, a\/b\]/);
      expect(() => pseudoLabels(r, { length: 20, classes: ['cat', 'dog', 'a/b'], source: (i) => `other/${i}.png` }, 2)).toThrow(/made on other images \(image \d+ is img\/\d+\.png there, other\/\d+\.png here\)/);
      expect(readRanking(join(dir, 'nothing'))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
