// One shard of the scoring pass: a range of the scored set's images, run through the teacher in
// fixed batches (eval mode, in data-set order) and reduced to its per-class candidates. The
// coordinator's own process and every queue worker score a shard through this one function, with
// the batch size the job names, so a shard gives the same bits wherever it runs on one kind of device.
import type { ModelSpec } from '../../models/registry.js';
import { Subset, type Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { Generator } from '../random.js';
import { predict } from '../train/evaluate.js';
import { openSplits } from '../train/splits.js';
import { shardCandidates, type Candidates, type ScoredData } from './ranking.js';

/** What a queue job carries: everything a worker needs to score one shard of one run. */
export interface ShardJob {
  /** The run's key: a hash of the teacher, the data and the settings below. */
  run: string;
  teacher: string;
  teacherHash: string;
  spec: ModelSpec;
  data: ScoredData;
  start: number;
  end: number;
  batchSize: number;
  topK: number;
  topP: number;
}

/** The images a run scores, opened as the coordinator opened them; `root` replaces its folder (another machine's path). */
export async function openScored(d: ScoredData, root = d.root): Promise<{ data: Dataset; close(): Promise<void> }> {
  const splits = await openSplits(root, { imageSize: d.imageSize, channels: d.channels, unlabeled: d.unlabeled });
  return { data: splits.train, close: () => splits.close() };
}

/** The candidates of images [start, end) of `data`. */
export async function scoreShard(teacher: FeatureNet, spec: ModelSpec, data: Dataset, job: Pick<ShardJob, 'start' | 'end' | 'batchSize' | 'topK' | 'topP'>): Promise<Candidates> {
  const range = Array.from({ length: job.end - job.start }, (_, i) => job.start + i);
  const loader = new DataLoader(new Subset(data, range), { batchSize: job.batchSize, generator: new Generator(0), transform: { normalize: spec.normalize } });
  const { probs, classes, indices } = await predict(loader, (x) => teacher.forward(x));
  return shardCandidates(probs, Array.from(indices, (i) => job.start + i), classes, job.topK, job.topP);
}

/**
 * Runs every batch size a run's shards produce once, on its first images, so that every kernel is
 * compiled before a worker takes a shard: compiling blocks the process (seconds each on a CPU
 * adapter), and a worker that blocks past the queue's lock loses its shard to another.
 */
export async function warmUp(teacher: FeatureNet, spec: ModelSpec, data: Dataset, batchSize: number): Promise<void> {
  const sizes = new Set([Math.min(batchSize, data.length), data.length % batchSize].filter((n) => n > 0));
  for (const n of sizes) await scoreShard(teacher, spec, data, { start: 0, end: n, batchSize: n, topK: 1, topP: 1 });
}
