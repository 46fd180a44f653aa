// The teacher's ranking (Yalniz et al., 2019, "Billion-scale semi-supervised learning"): image i
// is a candidate for the top P classes of its softmax, and each class keeps its K highest-scoring
// candidates. A shard ranks its own images; merging the shards' lists gives the ranking of the
// whole set, since a class's top K over the set lies within the union of every shard's top K.
// Candidates are ordered by score descending, then image index: a total order, so the merge gives
// the same bits whatever order shards finish in. The ranking is written as JSON lines per class.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../atomic-file.js';

/** [data-set index, softmax score]. */
export type Candidate = [index: number, score: number];
/** One ordered list per class. */
export type Candidates = Candidate[][];

const ahead = (a: Candidate, b: Candidate) => b[1] - a[1] || a[0] - b[0];

/**
 * The candidates of one shard: `probs` holds a softmax row of `classes` scores per image, image r
 * being data-set index `indices[r]`. A row's top P breaks ties by the lower class, as torch.topk
 * on CPU does.
 */
export function shardCandidates(probs: Float32Array, indices: ArrayLike<number>, classes: number, topK: number, topP: number): Candidates {
  const lists: Candidates = Array.from({ length: classes }, () => []);
  const order = Array.from({ length: classes }, (_, c) => c);
  for (let r = 0; r < indices.length; r++) {
    const row = probs.subarray(r * classes, (r + 1) * classes);
    order.sort((x, y) => row[y]! - row[x]! || x - y);
    for (const c of order.slice(0, topP)) lists[c]!.push([indices[r]!, row[c]!]);
  }
  return lists.map((l) => l.sort(ahead).slice(0, topK));
}

/** Each class's top K over several shards' candidates. */
export function mergeCandidates(merged: Candidates | null, shard: Candidates, topK: number): Candidates {
  return shard.map((l, c) => (merged ? merged[c]!.concat(l) : [...l]).sort(ahead).slice(0, topK));
}

/** What was scored and how: enough to check that a ranking fits the data a command opens. */
export interface RankingMeta {
  teacher: string;
  teacherHash: string;
  /** The scored set: its root (undefined: the built-in set), whether it is unlabeled, its size. */
  data: ScoredData;
  classes: string[];
  topK: number;
  topP: number;
  batchSize: number;
  shardSize: number;
  /** Every shard once, in order, with the worker that scored it. */
  shards: { start: number; end: number; worker: string }[];
  /** The JSON-lines file of each class, in class order, under ranking/. */
  files: string[];
}

export interface ScoredData {
  root?: string;
  unlabeled: boolean;
  imageSize: number;
  channels: 1 | 3;
  length: number;
}

/** One line of a class's file. */
export interface RankedImage {
  rank: number;
  image: string;
  index: number;
  score: number;
}

/** A file name for each class: its name made safe, unique, and never empty. */
function classFiles(classes: readonly string[]): string[] {
  const used = new Set<string>();
  return classes.map((name, c) => {
    let file = `${name.replace(/[^\w.-]/g, '_').replace(/^\.+/, '_') || c}.jsonl`;
    if (used.has(file)) file = `${c}-${file}`;
    used.add(file);
    return file;
  });
}

/** Writes ranking/<class>.jsonl, then ranking.json (whose presence marks a finished ranking). */
export function writeRanking(dir: string, meta: Omit<RankingMeta, 'files'>, ranked: Candidates, source: (index: number) => string): RankingMeta {
  const files = classFiles(meta.classes.length === ranked.length ? meta.classes : ranked.map((_, c) => String(c)));
  mkdirSync(join(dir, 'ranking'), { recursive: true });
  ranked.forEach((list, c) => {
    const lines = list.map(([index, score], r) => `${JSON.stringify({ rank: r + 1, image: source(index), index, score } satisfies RankedImage)}\n`);
    writeFileAtomicSync(join(dir, 'ranking', files[c]!), lines.join(''));
  });
  const whole: RankingMeta = { ...meta, files };
  writeFileAtomicSync(join(dir, 'ranking.json'), `${JSON.stringify(whole, null, 2)}\n`);
  return whole;
}

/** The ranking in `dir` (a score run folder, or its ranking.json), or null where none is finished. */
export function readRanking(path: string): { dir: string; meta: RankingMeta; ranked: RankedImage[][] } | null {
  const dir = path.endsWith('.json') ? join(path, '..') : path;
  if (!existsSync(join(dir, 'ranking.json'))) return null;
  const meta = JSON.parse(readFileSync(join(dir, 'ranking.json'), 'utf8')) as RankingMeta;
  const ranked = meta.files.map((f) =>
    readFileSync(join(dir, 'ranking', f), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as RankedImage),
  );
  return { dir, meta, ranked };
}

/**
 * The pseudo-labels of a ranking for the images a command opened: the first `topK` of each class
 * (data-set indices, by class then rank). Refuses a ranking made on other images or classes.
 */
export function pseudoLabels(r: NonNullable<ReturnType<typeof readRanking>>, data: { length: number; classes: readonly string[]; source(i: number): string }, topK: number): { rows: Int32Array; labels: Int32Array } {
  const { meta, ranked, dir } = r;
  const other = (what: string) => new Error(`the ranking in ${dir} was made on ${what}; score these images again (npm run score) or pass the ranking of this data`);
  if (meta.data.length !== data.length) throw other(`${meta.data.length} images, this data has ${data.length}`);
  if (data.classes.length > 0 && meta.classes.join('\n') !== data.classes.join('\n')) throw other(`the classes [${meta.classes.join(', ')}], this data has [${data.classes.join(', ')}]`);
  const rows: number[] = [];
  const labels: number[] = [];
  ranked.forEach((list, c) => {
    for (const { index, image } of list.slice(0, topK)) {
      if (data.source(index) !== image) throw other(`other images (image ${index} is ${image} there, ${data.source(index)} here)`);
      rows.push(index);
      labels.push(c);
    }
  });
  return { rows: Int32Array.from(rows), labels: Int32Array.from(labels) };
}
