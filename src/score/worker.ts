// `score:worker`: takes shards from the queue one at a time, scores them on this machine's device
// and returns their candidates. It fetches jobs itself (BullMQ's manual mode) so that it holds no
// job while it loads a run's teacher and compiles its kernels: a job of a run it is not ready for
// goes back to the queue, the worker gets ready, then takes jobs again. A job whose teacher hash
// differs from this worker's teacher goes back too, and the worker stops with a message.
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { UsageError } from '../cli/args.js';
import type { Dataset } from '../data/dataset.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { fileHash, loadWeights } from '../train/teacher.js';
import { checkReachable, type ShardResult } from './queue.js';
import { openScored, scoreShard, warmUp, type ShardJob } from './shard.js';

export interface WorkerOptions {
  queue: string;
  queueName: string;
  /** This machine's copy of the teacher; default: the path each job names. */
  teacher?: string;
  /** This machine's path to the scored images; default: the path each job names. */
  dataroot?: string;
  lockMs: number;
  /** Exit after this many seconds without a job (0: wait for ever). */
  idleSeconds: number;
  log(line: string): void;
}

interface Ready {
  run: string;
  teacher: FeatureNet;
  data: Dataset;
  close(): Promise<void>;
}

/** Serves shards until stopped (SIGINT/SIGTERM: after the current shard), idle, or refused; returns the shards scored. */
export async function serveShards(o: WorkerOptions): Promise<number> {
  const connection = await checkReachable(o.queue);
  const name = `${hostname()}:${process.pid}`;
  const worker = new Worker<ShardJob, ShardResult>(o.queueName, null, { connection, lockDuration: o.lockMs, stalledInterval: o.lockMs, name });
  const hashes = new Map<string, string>();
  const hashOf = async (path: string) => hashes.get(path) ?? hashes.set(path, await fileHash(path)).get(path)!;
  let ready: Ready | null = null;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
    stopping = true;
    o.log(`score:worker ${name}: ${signal}: stopping after the current shard (send it again to quit now)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let scored = 0;
  let idleSince = Date.now();
  o.log(`score:worker ${name}: waiting for shards on queue ${o.queueName} at ${o.queue}`);
  try {
    await worker.startStalledCheckTimer();
    while (!stopping && (o.idleSeconds === 0 || Date.now() - idleSince < o.idleSeconds * 1000)) {
      const job: Job<ShardJob, ShardResult> | undefined = await worker.getNextJob(name, { block: true });
      if (!job) continue;
      if (stopping) {
        // Taken while a signal arrived: it goes back for another worker.
        await job.moveToWait(name);
        break;
      }
      const s = job.data;
      const teacher = o.teacher ?? s.teacher;
      const hash = await hashOf(teacher).catch(() => null);
      if (hash !== s.teacherHash) {
        await job.moveToWait(name);
        throw new UsageError(
          `score:worker ${name}: refusing the shards of run ${s.run}: its teacher ${s.teacher} has sha256 ${s.teacherHash.slice(0, 12)}…, ` +
            (hash ? `this worker's ${teacher} has ${hash.slice(0, 12)}…` : `this worker cannot read ${teacher}`) +
            '; start the worker with --teacher naming the same checkpoint',
        );
      }
      if (ready?.run !== s.run) {
        await job.moveToWait(name);
        await ready?.close();
        ready = null;
        ready = await prepare(s, teacher, o.dataroot, name, o.log);
        continue;
      }
      o.log(`score:worker ${name}: shard ${s.start}–${s.end} of run ${s.run} started`);
      const started = Date.now();
      const keep = setInterval(() => void job.extendLock(name, o.lockMs).catch(() => {}), o.lockMs / 2);
      try {
        const candidates = await scoreShard(ready.teacher, s.spec, ready.data, s);
        await job.moveToCompleted({ worker: name, candidates }, name, false);
        scored++;
        const seconds = (Date.now() - started) / 1000;
        o.log(`score:worker ${name}: shard ${s.start}–${s.end} done in ${seconds.toFixed(2)} s (${((s.end - s.start) / seconds).toFixed(1)} images/s)`);
      } catch (err) {
        o.log(`score:worker ${name}: shard ${s.start}–${s.end} failed: ${err instanceof Error ? err.message : String(err)}`);
        await job.moveToFailed(err instanceof Error ? err : new Error(String(err)), name, false);
      } finally {
        clearInterval(keep);
      }
      idleSince = Date.now();
    }
    return scored;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await ready?.close();
    await worker.close();
  }
}

/** Loads a run's teacher and data on this machine and compiles its kernels, holding no job. */
async function prepare(s: ShardJob, teacher: string, dataroot: string | undefined, name: string, log: (line: string) => void): Promise<Ready> {
  log(`score:worker ${name}: preparing run ${s.run} (teacher ${teacher}, ${s.data.length} images)`);
  const opened = await openScored(s.data, dataroot ?? s.data.root);
  let model: FeatureNet | null = null;
  try {
    if (opened.data.length !== s.data.length) {
      throw new UsageError(`score:worker ${name}: ${dataroot ?? s.data.root ?? 'the built-in set'} holds ${opened.data.length} images here, ${s.data.length} where the run was started; point --dataroot at the same images`);
    }
    model = await loadWeights(teacher, s.spec);
    await warmUp(model, s.spec, opened.data, s.batchSize);
    const net = model;
    return { run: s.run, teacher: net, data: opened.data, close: async () => (net.dispose(), await opened.close()) };
  } catch (err) {
    model?.dispose();
    await opened.close();
    throw err;
  }
}
