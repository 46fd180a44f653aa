// The teacher's ranking computed the slow, obvious way, as the reference of test/score.test.ts and
// test/score-queue.test.ts: a count of the classes ahead of each one, no sorting of rows.
import type { Candidates } from '../src/score/ranking.js';

/** For each class: every image with fewer than P classes ahead of it (higher score, or equal and lower index), by score then index, the first K. */
export function bruteForceRanking(probs: Float32Array, classes: number, topK: number, topP: number): Candidates {
  const n = probs.length / classes;
  return Array.from({ length: classes }, (_, c) => {
    const picked: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const row = probs.subarray(i * classes, (i + 1) * classes);
      let ahead = 0;
      for (let d = 0; d < classes; d++) if (row[d]! > row[c]! || (row[d] === row[c] && d < c)) ahead++;
      if (ahead < topP) picked.push([i, row[c]!]);
    }
    picked.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    return picked.slice(0, topK);
  });
}

