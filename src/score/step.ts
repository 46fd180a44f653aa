// The scoring step of teacher → student: the teacher scores every image of the scored set, shard by
// shard, in this process or on a queue of workers (--queue), and the per-class ranking is written
// to the run folder. Each finished shard is saved (shards/<start>.json) as it arrives, so a
// stopped run continued with --resume scores only the shards it lacks; the shards are merged in
// order once all are in, giving the same ranking whichever way, and in whatever order, they ran.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../atomic-file.js';
import { readCheckpointFile, type CheckpointFile } from '../checkpoint/checkpoint.js';
import { checkClassNames } from '../checkpoint/classes.js';
import { UsageError } from '../cli/args.js';
import { checkDataMatches } from '../cli/common.js';
import type { Dataset } from '../data/dataset.js';
import { inferenceBatch } from '../train/inference-batch.js';
import { Run, RunFolderError } from '../train/run.js';
import { classifierSpec, fileHash, loadWeights } from '../train/teacher.js';
import { checkReachable, scoreOnQueue, type ShardResult } from './queue.js';
import { mergeCandidates, readRanking, writeRanking, type Candidates, type ScoredData } from './ranking.js';
import { scoreShard, type ShardJob } from './shard.js';

export interface ScoreSettings {
  teacher: string;
  /** --model, for a bare state dict. */
  model?: string;
  topK: number;
  topP: number;
  batchSize: number;
  shardSize: number;
  queue?: string;
  queueName: string;
  attempts: number;
  outf: string;
  resume?: string;
}

export interface ScoreData {
  /** The labeled training split: class names, and a bare state dict's normalisation. */
  train: Dataset;
  scored: Dataset;
  where: Omit<ScoredData, 'length' | 'imageSize' | 'channels'>;
  /** How the class names' data is named in messages. */
  dataName: string;
}

interface SavedShard extends ShardResult {
  run: string;
  start: number;
  end: number;
}

const clock = (s: number) => (Number.isFinite(s) ? `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(Math.floor(s % 60)).padStart(2, '0')}` : '-');

/** Scores (or, in a folder that holds it, reuses) the ranking; null when a signal stopped it first. */
export async function scoreStep(a: ScoreSettings, d: ScoreData, args: Record<string, unknown>): Promise<NonNullable<ReturnType<typeof readRanking>> | null> {
  if (a.shardSize % a.batchSize !== 0) throw new UsageError(`score: --shardSize ${a.shardSize} must be a multiple of --batchSize ${a.batchSize}, so that a shard runs the batches one process would`);
  if (a.queue) await checkReachable(a.queue);
  // Read once for its description and, when scored here, its weights (queue workers read their own).
  let teacherFile: CheckpointFile | null = await readCheckpointFile(a.teacher);
  const spec = await classifierSpec(teacherFile, d.train, a.model);
  if (a.queue) teacherFile = null;
  checkDataMatches(spec, d.scored, `score: the teacher ${a.teacher}`);
  checkClassNames(a.teacher, spec, d.train.classes, d.dataName);
  const teacherHash = await fileHash(a.teacher);
  const where: ScoredData = { ...d.where, imageSize: d.scored.imageSize, channels: d.scored.channels, length: d.scored.length };
  const key = createHash('sha256').update(JSON.stringify([teacherHash, where, a.topK, a.topP, a.batchSize, a.shardSize])).digest('hex').slice(0, 16);
  const run = new Run(a.outf, 'score', { ...args, outf: a.outf, resume: a.resume });
  try {
    const finished = readRanking(a.outf);
    if (finished) {
      const { teacherHash: h, topK, topP, batchSize, shardSize, data } = finished.meta;
      if (createHash('sha256').update(JSON.stringify([h, data, topK, topP, batchSize, shardSize])).digest('hex').slice(0, 16) !== key) {
        throw new RunFolderError(`${a.outf} holds a ranking by another teacher, data or --topK/--topP/--batchSize/--shardSize; pass a new --outf`);
      }
      run.log(`score: reusing the finished ranking in ${a.outf}`);
      return finished;
    }
    const shardDir = join(a.outf, 'shards');
    mkdirSync(shardDir, { recursive: true });
    const saved = new Map<number, SavedShard>();
    for (const f of readdirSync(shardDir).filter((n) => n.endsWith('.json'))) {
      const s = JSON.parse(readFileSync(join(shardDir, f), 'utf8')) as SavedShard;
      if (s.run !== key) throw new RunFolderError(`${a.outf} holds shards of another scoring (teacher, data or --topK/--topP/--batchSize/--shardSize differ); pass a new --outf`);
      saved.set(s.start, s);
    }
    const shards: ShardJob[] = [];
    for (let start = 0; start < where.length; start += a.shardSize) {
      shards.push({ run: key, teacher: a.teacher, teacherHash, spec, data: where, start, end: Math.min(where.length, start + a.shardSize), batchSize: a.batchSize, topK: a.topK, topP: a.topP });
    }
    const todo = shards.filter((s) => !saved.has(s.start));
    const todoImages = todo.reduce((n, s) => n + s.end - s.start, 0);
    if (saved.size > 0) run.log(`score: ${saved.size} of ${shards.length} shards already scored in ${a.outf}; scoring the other ${todo.length}`);
    const began = Date.now();
    let images = 0;
    const save = (s: ShardJob, r: ShardResult) => {
      const record: SavedShard = { run: key, start: s.start, end: s.end, worker: r.worker, candidates: r.candidates };
      writeFileAtomicSync(join(shardDir, `${s.start}.json`), JSON.stringify(record));
      saved.set(s.start, record);
      images += s.end - s.start;
      const rate = images / ((Date.now() - began) / 1000);
      const eta = (todoImages - images) / rate;
      run.log(`score: ${saved.size}/${shards.length} shards | ${images}/${todoImages} images | ${rate.toFixed(1)} images/s | ETA ${clock(eta)} | shard ${s.start}–${s.end} by ${r.worker}`);
      run.metric({ kind: 'shard', start: s.start, end: s.end, worker: r.worker, shardsDone: saved.size, shards: shards.length, imagesPerSecond: rate, etaSeconds: eta });
    };
    if (a.queue) {
      const failed = await scoreOnQueue({ url: a.queue, name: a.queueName, attempts: a.attempts, shards: todo, onShard: save, log: (l) => run.log(l) });
      if (failed.length > 0) {
        const list = failed.sort((x, y) => x.shard.start - y.shard.start).map((f) => `${f.shard.start}–${f.shard.end} (${f.reason})`).join(', ');
        throw new Error(`score: ${failed.length} shard(s) failed on every attempt: ${list}; the ${saved.size} scored shard(s) are kept in ${shardDir}: fix the cause, then run again with --resume ${a.outf}`);
      }
    } else if (todo.length > 0) {
      const teacher = await loadWeights(teacherFile ?? a.teacher, spec);
      teacherFile = null;
      try {
        const fits = inferenceBatch(teacher, [spec.inChannels, spec.imageSize, spec.imageSize], a.batchSize);
        if (fits < a.batchSize) throw new UsageError(`score: --batchSize ${a.batchSize} does not fit the device memory for this teacher's forward pass; at most ${fits} do (DAWNET_MEMORY)`);
        const worker = `${hostname()}:${process.pid}`;
        run.stepping = true;
        for (const s of todo) {
          if (run.interrupted) {
            run.log(`score: stopped with ${saved.size} of ${shards.length} shards scored; --resume ${a.outf} scores the rest`);
            return null;
          }
          save(s, { worker, candidates: await scoreShard(teacher, spec, d.scored, s) });
        }
      } finally {
        run.stepping = false;
        teacher.dispose();
      }
    }
    let merged: Candidates | null = null;
    for (const s of shards) merged = mergeCandidates(merged, saved.get(s.start)!.candidates, a.topK);
    const meta = writeRanking(
      a.outf,
      { teacher: a.teacher, teacherHash, data: where, classes: [...(spec.classNames?.length ? spec.classNames : d.train.classes)], topK: a.topK, topP: a.topP, batchSize: a.batchSize, shardSize: a.shardSize, shards: shards.map((s) => ({ start: s.start, end: s.end, worker: saved.get(s.start)!.worker })) },
      merged ?? [],
      (i) => d.scored.source(i),
    );
    rmSync(shardDir, { recursive: true, force: true });
    run.metric({ kind: 'ranking', images: where.length, ranked: (merged ?? []).reduce((n, l) => n + l.length, 0), seconds: (Date.now() - began) / 1000 });
    run.log(`score: ranking of ${meta.classes.length} classes (top ${a.topK} per class among each image's top ${a.topP}) written to ${join(a.outf, 'ranking')}`);
    return readRanking(a.outf);
  } finally {
    run.close();
  }
}
