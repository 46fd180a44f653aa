// The scoring step in one process and spread over worker processes through BullMQ on a Redis
// server of its own (127.0.0.1, a free port, no persistence): the ranking is the brute-force
// one; three workers, one killed with SIGKILL in the middle of a shard, give the same ranking
// bit for bit with every shard scored once; a shard that fails on every attempt is reported; an
// unreachable --queue is one clear error; a worker with another teacher refuses the shards. A tiny random NIN-3 teacher on 36 images of 48 px
// (a shard of 8 takes about a second on lavapipe, so the kill lands inside one).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../models/registry.js';
import { UsageError } from '../src/cli/args.js';
import type { ScoreResult } from '../src/cli/commands/score.js';
import { runCommand } from '../src/cli/main.js';
import { saveCheckpoint } from '../src/checkpoint/checkpoint.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { DataLoader } from '../src/data/loader.js';
import { Generator } from '../src/random.js';
import { checkReachable, redisOptions } from '../src/score/queue.js';
import { readRanking } from '../src/score/ranking.js';
import { predict } from '../src/train/evaluate.js';
import { openSplits } from '../src/train/splits.js';
import { classifierSpec, loadWeights } from '../src/train/teacher.js';
import { bruteForceRanking } from './ranking-reference.js';
import { once } from './fixtures/sandbox.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-score-test-'));
const data = join(root, 'data');
const cache = join(root, 'cache');
const out = (name: string) => join(root, 'runs', name);
const classes = ['0-tshirt-top', '1-trouser', '7-sneaker'];
const teacher = (seed: number) => join(root, `teacher${seed}.safetensors`);
const [topK, topP, imageSize] = [5, 2, 48];
const scoreArgs = (outf: string) => ['--teacher', teacher(1), '--dataroot', data, '--imageSize', String(imageSize), '--batchSize', '4', '--shardSize', '8', '--topK', String(topK), '--topP', String(topP), '--outf', outf];
const previousCache = process.env.DAWNET_CACHE;
const children: ChildProcess[] = [];
let redisServer: ChildProcess | null = null;

/** redis-server is installed by scripts/setup.sh; where it is missing the queue tests say so and skip (under CI=true they fail). */
const hasRedis = (() => {
  const found = !spawnSync('redis-server', ['--version']).error;
  if (!found) {
    const why = 'redis-server is not installed (sudo apt-get install redis-server, or bash scripts/setup.sh)';
    if (process.env.CI === 'true') throw new Error(`${why}; CI=true requires it for the queue tests`);
    process.stderr.write(`score-queue.test.ts: ${why}: skipping the queue tests\n`);
  }
  return found;
})();

beforeAll(async () => {
  process.env.DAWNET_CACHE = cache;
  for (const [split, count] of [['train', 12], ['test', 2]] as const) {
    for (const cls of classes) {
      const to = join(data, split, cls);
      mkdirSync(to, { recursive: true });
      for (const f of readdirSync(join(BUILTIN_ROOT, split, cls)).sort().slice(0, count)) copyFileSync(join(BUILTIN_ROOT, split, cls, f), join(to, f));
    }
  }
  // Two untrained teachers (different seeds): scores differ from image to image all the same.
  for (const seed of [1, 2]) {
    const spec: ModelSpec = { model: 'nin', ninStages: 3, numClasses: 3, inChannels: 1, imageSize, normalize: { mean: [0.3], std: [0.3] }, classNames: classes };
    const model = buildModel(spec, seed);
    await saveCheckpoint(teacher(seed), { model, args: { modelSpec: spec } });
    model.dispose();
  }
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  redisServer?.kill('SIGTERM');
  if (previousCache === undefined) delete process.env.DAWNET_CACHE;
  else process.env.DAWNET_CACHE = previousCache;
  rmSync(root, { recursive: true, force: true });
});

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

/** A Redis server for this file: loopback only, nothing saved to disk. */
const redis = once(async () => {
  const port = await freePort();
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      await checkReachable(url, '--queue', 1000);
      return url;
    } catch (err) {
      if (tries > 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});

interface Cli {
  child: ChildProcess;
  /** Its stderr so far. */
  text(): string;
  /** Resolves with the first match of `re` in its stderr. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** A dawnet command in its own process (a coordinator or a worker on "another machine"). */
function cli(args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, DAWNET_QUIET: '1', DAWNET_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let text = '';
  const waiting: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const w of [...waiting]) {
      const m = text.match(w.re);
      if (m) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    text: () => text,
    waitFor: (re) => new Promise((resolve, reject) => {
      const m = text.match(re);
      if (m) return resolve(m);
      waiting.push({ re, resolve });
      void exited.then(() => reject(new Error(`exited before printing ${re}:\n${text}`)));
    }),
    exited,
  };
}

/** The ranking scored in this process: the reference of the queue runs. */
const single = once(async () => (await runCommand('score', scoreArgs(out('single')))) as ScoreResult);
const rankingFiles = (outf: string) => Object.fromEntries(readdirSync(join(outf, 'ranking')).map((f) => [f, readFileSync(join(outf, 'ranking', f), 'utf8')]));

describe('score', () => {
  it('ranks per class the top K by score among the images whose top P includes the class (against a brute-force ranking of the teacher’s softmax)', async () => {
    const r = await single();
    expect(r.images).toBe(36);
    const { meta, ranked } = readRanking(out('single'))!;
    expect(meta.files).toEqual(classes.map((c) => `${c}.jsonl`));
    expect(meta.shards.map((s) => [s.start, s.end])).toEqual([[0, 8], [8, 16], [16, 24], [24, 32], [32, 36]]);
    // The teacher's softmax over the whole set, in the same batches of 4, ranked the obvious way.
    const splits = await openSplits(data, { imageSize });
    try {
      const spec = await classifierSpec(teacher(1), splits.train);
      const net = await loadWeights(teacher(1), spec);
      const { probs, indices } = await predict(new DataLoader(splits.train, { batchSize: 4, generator: new Generator(0), transform: { normalize: spec.normalize } }), (x) => net.forward(x));
      net.dispose();
      expect([...indices]).toEqual(Array.from({ length: 36 }, (_, i) => i));
      const expected = bruteForceRanking(probs, 3, topK, topP);
      expect(ranked.map((l) => l.map((e) => [e.index, e.score]))).toEqual(expected);
      expect(ranked.flat().every((e) => e.image === splits.train.source(e.index))).toBe(true);
      expect(ranked.map((l) => l.map((e) => e.rank))).toEqual(expected.map((l) => l.map((_, k) => k + 1)));
    } finally {
      await splits.close();
    }
  });

  it.skipIf(!hasRedis)('three workers, one killed with SIGKILL mid-shard: the merged ranking is the single-process one, every shard scored once', async () => {
    await single();
    const url = await redis();
    const queue = ['--queue', url, '--queueName', `kill-${process.pid}`];
    const coordinator = cli(['score', ...scoreArgs(out('queue')), ...queue]);
    const workers = [0, 1, 2].map(() => cli(['score:worker', ...queue, '--lockDuration', '6000']));
    // The first shard any worker starts: its worker dies at once, holding the shard's lock.
    const started = /score:worker \S+: shard (\d+)–(\d+) of run \w+ started/;
    const victim = await Promise.race(workers.map((w) => w.waitFor(started).then((m) => ({ w, range: `${m[1]}–${m[2]}` }))));
    victim.w.child.kill('SIGKILL');
    expect(await coordinator.exited).toBe(0);
    for (const w of workers) if (w !== victim.w) w.child.kill('SIGTERM');
    const survivors = workers.filter((w) => w !== victim.w);
    expect(await Promise.all(survivors.map((w) => w.exited))).toEqual([0, 0]);
    // It was killed inside the shard: it never finished it.
    expect(victim.w.text()).not.toContain(`shard ${victim.range} done`);
    expect(rankingFiles(out('queue'))).toEqual(rankingFiles(out('single')));
    const [queued, alone] = [readRanking(out('queue'))!.meta, readRanking(out('single'))!.meta];
    expect({ ...queued, shards: [] }).toEqual({ ...alone, shards: [] });
    // Every shard once in the result, each scored by a live worker; the killed one's shard by another.
    expect(queued.shards.map((s) => [s.start, s.end])).toEqual(alone.shards.map((s) => [s.start, s.end]));
    const names = new Map(survivors.map((w) => [w.child.pid, w]));
    for (const s of queued.shards) expect(names.has(Number(s.worker.split(':').at(-1)))).toBe(true);
    const done = survivors.flatMap((w) => [...w.text().matchAll(/shard (\d+–\d+) done/g)].map((m) => m[1]));
    expect(done.sort()).toEqual(alone.shards.map((s) => `${s.start}–${s.end}`).sort());
    expect(coordinator.text()).toContain(`shard ${victim.range}: its worker stopped answering (its lock expired); the shard is back in the queue`);
    expect(coordinator.text()).toMatch(/5\/5 shards \| \d+\/36 images \| [\d.]+ images\/s \| ETA/);
  }, 600_000);

  it('an unreachable or malformed --queue is one clear error, before any data is read', async () => {
    const closed = await freePort();
    for (const command of ['score', 'score:worker']) {
      const args = command === 'score' ? scoreArgs(out('unreachable')) : [];
      await expect(runCommand(command, [...args, '--queue', `redis://127.0.0.1:${closed}`])).rejects.toThrow(new RegExp(`--queue redis://127\\.0\\.0\\.1:${closed}: cannot reach Redis \\(connect ECONNREFUSED`));
      await expect(runCommand(command, [...args, '--queue', 'http://127.0.0.1:6379'])).rejects.toThrow(UsageError);
    }
    expect(() => redisOptions('redis://h:7/x')).toThrow(/the path must be a database number/);
    expect(redisOptions('rediss://u:p%40ss@h:7/2')).toMatchObject({ host: 'h', port: 7, username: 'u', password: 'p@ss', db: 2, tls: {} });
    expect(existsSync(out('unreachable'))).toBe(false);
  }, 30_000);

  it.skipIf(!hasRedis)('a worker with another teacher refuses the shards with a message, and they stay queued for the right workers', async () => {
    const url = await redis();
    const name = `wrong-${process.pid}`;
    const coordinator = cli(['score', ...scoreArgs(out('wrong-teacher')), '--queue', url, '--queueName', name]);
    await coordinator.waitFor(/5 shard\(s\) on queue/);
    const worker = cli(['score:worker', '--queue', url, '--queueName', name, '--teacher', teacher(2)]);
    expect(await worker.exited).toBe(2);
    expect(worker.text()).toMatch(/refusing the shards of run \w+: its teacher \S+teacher1\.safetensors has sha256 [0-9a-f]{12}…, this worker's \S+teacher2\.safetensors has [0-9a-f]{12}…; start the worker with --teacher naming the same checkpoint/);
    const q = new Queue(name, { connection: redisOptions(url) });
    try {
      expect(await q.getJobCounts('wait', 'active', 'failed', 'completed')).toEqual({ wait: 5, active: 0, failed: 0, completed: 0 });
    } finally {
      coordinator.child.kill('SIGKILL');
      await q.obliterate({ force: true });
      await q.close();
    }
  }, 300_000);

  it.skipIf(!hasRedis)('a shard that fails on every attempt is reported by the coordinator, not dropped', async () => {
    const url = await redis();
    const name = `fail-${process.pid}`;
    const coordinator = cli(['score', ...scoreArgs(out('failing')), '--queue', url, '--queueName', name, '--attempts', '2']);
    await coordinator.waitFor(/5 shard\(s\) on queue/);
    // A queue client that fails every job it takes: 5 shards, 2 attempts each.
    const failing = new Worker(name, null, { connection: redisOptions(url) });
    try {
      for (let failed = 0; failed < 10; ) {
        const job = await failing.getNextJob('failing', { block: true });
        if (!job) continue;
        await job.moveToFailed(new Error('the disk is on fire'), 'failing', false);
        failed++;
      }
    } finally {
      await failing.close();
    }
    expect(await coordinator.exited).toBe(1);
    expect(coordinator.text()).toContain('score: shard 0–8 failed 2 time(s): the disk is on fire');
    expect(coordinator.text()).toMatch(/score: 5 shard\(s\) failed on every attempt: 0–8 \(the disk is on fire\), 8–16 .*; the 0 scored shard\(s\) are kept in \S+: fix the cause, then run again with --resume/);
  }, 300_000);
});
