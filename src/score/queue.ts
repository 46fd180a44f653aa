// Scoring spread over machines through a BullMQ queue on Redis: the coordinator enqueues one job
// per shard (a range of the scored set) and collects each shard's candidates as workers
// (`score:worker`, worker.ts) return them. BullMQ keeps the bookkeeping: a job's lock expires
// when its worker dies and the stalled-job check gives the shard to another worker; a shard
// that fails `attempts` times ends in the failed set, which the coordinator reports.
import { Queue, QueueEvents, type Job, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { UsageError } from '../cli/args.js';
import type { Candidates } from './ranking.js';
import type { ShardJob } from './shard.js';

/** What a worker returns for a shard. */
export interface ShardResult {
  worker: string;
  candidates: Candidates;
}

/** Connection options of a `redis://[user:password@]host:port[/db]` (or `rediss://`, TLS) address. */
export function redisOptions(url: string, flag = '--queue'): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`${flag} ${url}: not an address; give redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UsageError(`${flag} ${url}: give redis://HOST:PORT (or rediss:// for TLS)`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new UsageError(`${flag} ${url}: the path must be a database number`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking calls must wait as long as they need.
    maxRetriesPerRequest: null,
  };
}

/**
 * Checks that Redis answers at `url` within `timeoutMs`, before anything is enqueued or loaded:
 * BullMQ's own connections retry forever, so an unreachable address would otherwise hang.
 */
export async function checkReachable(url: string, flag = '--queue', timeoutMs = 5000): Promise<RedisOptions> {
  const options = redisOptions(url, flag);
  const probe = new Redis({ ...options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let cause: Error | undefined;
  probe.on('error', (err: Error) => (cause ??= err));
  try {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs)));
    await Promise.race([probe.connect().then(() => probe.ping()), late]).finally(() => clearTimeout(timer));
  } catch (err) {
    throw new UsageError(`${flag} ${url}: cannot reach Redis (${(cause ?? (err as Error)).message}); start redis-server there, or check the host, port and firewall`);
  } finally {
    probe.disconnect();
  }
  return options;
}

export interface QueueRun {
  url: string;
  name: string;
  /** Runs of a failing shard before it is reported. */
  attempts: number;
  shards: ShardJob[];
  /** Called once per shard, as its result arrives. */
  onShard(shard: ShardJob, result: ShardResult): void;
  log(line: string): void;
}

const jobIdOf = (s: ShardJob) => `${s.run}-${s.start}`;

/**
 * Enqueues the shards (a shard already in the queue, from a coordinator that stopped, is not added
 * twice: its job id is the run's key and its start) and waits until every one has completed or
 * failed for good. Returns the failed shards with their reasons; completed jobs are removed.
 */
export async function scoreOnQueue(q: QueueRun): Promise<{ shard: ShardJob; reason: string }[]> {
  const connection = await checkReachable(q.url);
  const queue = new Queue<ShardJob, ShardResult, 'shard'>(q.name, { connection });
  const events = new QueueEvents(q.name, { connection });
  const pending = new Map(q.shards.map((s) => [jobIdOf(s), s]));
  const failed: { shard: ShardJob; reason: string }[] = [];
  let settle = () => {};
  const allSettled = new Promise<void>((resolve) => (settle = resolve));
  // Events only say that something happened; the job's state in Redis says what.
  const look = async (id: string) => {
    const shard = pending.get(id);
    if (!shard) return;
    const job = (await queue.getJob(id)) as Job<ShardJob, ShardResult> | undefined;
    const state = job ? await job.getState() : 'unknown';
    if (!pending.has(id)) return;
    if (state === 'completed') {
      pending.delete(id);
      q.onShard(shard, job!.returnvalue);
      await job!.remove();
    } else if (state === 'failed') {
      pending.delete(id);
      failed.push({ shard, reason: job!.failedReason });
      q.log(`score: shard ${shard.start}–${shard.end} failed ${job!.attemptsMade} time(s): ${job!.failedReason}`);
    }
    if (pending.size === 0) settle();
  };
  let chain = Promise.resolve();
  const enqueue = (id: string) => (chain = chain.then(() => look(id)).catch((err: unknown) => q.log(`score: reading shard ${id}: ${String(err)}`)));
  events.on('completed', ({ jobId }) => enqueue(jobId));
  events.on('failed', ({ jobId }) => enqueue(jobId));
  events.on('stalled', ({ jobId }) => {
    const s = pending.get(jobId);
    if (s) q.log(`score: shard ${s.start}–${s.end}: its worker stopped answering (its lock expired); the shard is back in the queue`);
  });
  try {
    await events.waitUntilReady();
    for (const shard of q.shards) {
      const id = jobIdOf(shard);
      const job = await queue.getJob(id);
      const state = job ? await job.getState() : null;
      if (state === 'failed') await job!.retry('failed');
      else if (state === null || state === 'unknown') await queue.add('shard', shard, { jobId: id, attempts: q.attempts, backoff: { type: 'fixed', delay: 1000 }, removeOnFail: false });
      enqueue(id);
    }
    q.log(`score: ${q.shards.length} shard(s) on queue ${q.name} at ${q.url}; start workers with: npm run score:worker -- --queue ${q.url}${q.name === 'dawnet-score' ? '' : ` --queueName ${q.name}`}`);
    if (q.shards.length === 0) settle();
    await allSettled;
    await chain;
    return failed;
  } finally {
    await events.close();
    await queue.close();
  }
}
