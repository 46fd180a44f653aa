// Throughput of the teacher's scoring pass in this process and on a BullMQ queue served by 1, 2 and
// 3 `score:worker` processes on this machine, in images/s. A worker stands for a machine with a
// device of its own; on a software adapter (lavapipe) a device is CPU threads, so each worker gets
// a fixed share (--threadsPerWorker, lavapipe's LP_NUM_THREADS; default 1) instead of every worker
// spreading over every core, and the figure grows with the workers until their threads fill the
// cores (on a hardware adapter the flag means nothing: the workers share this machine's GPU). 360
// images in shards of 20 make 18 shards, an equal share for 1, 2 or 3 workers. A Redis server of its own runs on a free 127.0.0.1 port; the teacher is an untrained NIN
// (a forward pass costs the same whatever the weights) over the built-in images. Every worker is
// started first, one queue per setting; each setting runs once untimed (workers load the teacher
// and compile their kernels), then the settings take turns --repeats times, so that load from other
// work on a shared machine falls on all of them alike; a setting's figure is its median run, timed
// from enqueueing to the merged ranking, so the queue's overhead is inside it.
//   npm run bench:score [-- --images 360 --imageSize 32 --workers 1,2,3 --threadsPerWorker 1 --repeats 3]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildModel, type ModelSpec } from '../models/registry.js';
import { saveCheckpoint } from '../src/checkpoint/checkpoint.js';
import { runCommand } from '../src/cli/main.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { backend, init, shutdown } from '../src/index.js';
import { checkReachable } from '../src/score/queue.js';

const { values: o } = parseArgs({
  options: {
    images: { type: 'string', default: '360' },
    imageSize: { type: 'string', default: '32' },
    batchSize: { type: 'string', default: '10' },
    shardSize: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1,2,3' },
    // A count of lavapipe threads per worker, or `all` for lavapipe's own choice (one per core, in every worker).
    threadsPerWorker: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '3' },
  },
});
const [images, imageSize, batchSize, shardSize, repeats] = [o.images, o.imageSize, o.batchSize, o.shardSize, o.repeats].map(Number) as [number, number, number, number, number];
const poolSizes = o.workers.split(',').map(Number);
if (o.threadsPerWorker !== 'all' && !/^[1-9]\d*$/.test(o.threadsPerWorker)) throw new Error(`--threadsPerWorker ${o.threadsPerWorker}: give a count of threads (1, 2, …) or all`);
const root = mkdtempSync(join(tmpdir(), 'dawnet-score-bench-'));
const workers: ChildProcess[] = [];
let redis: ChildProcess | null = null;
const cores = availableParallelism();
// A worker or Redis that stops mid-bench would leave a run waiting for ever: it fails the bench instead.
let finishing = false;
let fail: (err: Error) => void = () => {};
const failure = new Promise<never>((_, reject) => (fail = reject));
failure.catch(() => {});
const watch = (child: ChildProcess, what: string, output: () => string) =>
  child.on('exit', (code, signal) => finishing || fail(new Error(`${what} stopped (${signal ?? `exit status ${code}`}) during the bench${output() ? `:\n${output()}` : ''}`)));

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

// CPU seconds a process has used (user + system, all its threads), from Linux's /proc; null elsewhere.
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
function cpuSeconds(pid: number): number | null {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return null;
  // Fields after the command name, which may hold spaces: state is the 3rd field, utime and stime the 14th and 15th.
  const text = readFileSync(stat, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

// The whole machine's busy CPU seconds (every process, all cores), from Linux's /proc/stat; null elsewhere.
function machineBusySeconds(): number | null {
  if (!existsSync('/proc/stat')) return null;
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) / ticksPerSecond;
}

interface Pool {
  size: number;
  queue: string[];
  workers: ChildProcess[];
  /** Seconds the pool's workers have spent inside shards, from their logs. */
  busy: number;
}

function startWorker(pool: Pool, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'score:worker', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  workers.push(child);
  pool.workers.push(child);
  return new Promise((resolve, reject) => {
    let text = '';
    let counted = 0;
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      // Whole lines only: a chunk may end inside one.
      const upTo = text.lastIndexOf('\n') + 1;
      for (const m of text.slice(counted, upTo).matchAll(/ done in ([\d.]+) s/g)) pool.busy += Number(m[1]);
      counted = Math.max(counted, upTo);
      if (text.includes('waiting for shards')) resolve();
    });
    watch(child, 'a worker', () => text);
    void failure.catch(reject);
  });
}

interface Sample {
  rate: number;
  /** Cores' worth of CPU the scoring used: this process for in-process scoring, else the pool's workers. */
  cpu: number | null;
  /** The share of the pool's worker-seconds spent inside shards (null in process). */
  busy: number | null;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  await init({ announce: false });
  process.env.DAWNET_CACHE = join(root, 'cache');
  const software = backend().caps.software;
  // The classes' first images, the same count from each of the ten.
  const classes = readdirSync(join(BUILTIN_ROOT, 'train')).sort();
  for (const cls of classes) {
    mkdirSync(join(root, 'data', 'train', cls), { recursive: true });
    mkdirSync(join(root, 'data', 'test', cls), { recursive: true });
    const files = readdirSync(join(BUILTIN_ROOT, 'train', cls)).sort();
    for (const f of files.slice(0, Math.ceil(images / classes.length))) copyFileSync(join(BUILTIN_ROOT, 'train', cls, f), join(root, 'data', 'train', cls, f));
    copyFileSync(join(BUILTIN_ROOT, 'train', cls, files.at(-1)!), join(root, 'data', 'test', cls, files.at(-1)!));
  }
  const spec: ModelSpec = { model: 'nin', ninStages: 4, numClasses: classes.length, inChannels: 1, imageSize, normalize: { mean: [0.3], std: [0.3] }, classNames: classes };
  const teacher = join(root, 'teacher.safetensors');
  await saveCheckpoint(teacher, { model: buildModel(spec, 0), args: { modelSpec: spec } });
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  watch(redis, `redis-server on port ${port}`, () => '');
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      await checkReachable(url, '--queue', 1000);
      break;
    } catch (err) {
      if (tries > 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  // The worker's device budget: lavapipe reads LP_NUM_THREADS when its device is created.
  const budget = software && o.threadsPerWorker !== 'all' ? o.threadsPerWorker : undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, DAWNET_QUIET: '1', DAWNET_CACHE: join(root, 'cache') };
  if (budget) env.LP_NUM_THREADS = budget;
  else if (software) delete env.LP_NUM_THREADS;
  const pools: Pool[] = poolSizes.map((size) => ({ size, queue: ['--queue', url, '--queueName', `bench-${size}`], workers: [], busy: 0 }));
  await Promise.all(pools.flatMap((p) => Array.from({ length: p.size }, () => startWorker(p, [...p.queue, '--lockDuration', '120000'], env))));

  let run = 0;
  const score = async (extra: string[]) => {
    const started = performance.now();
    const r = (await Promise.race([failure, runCommand('score', ['--teacher', teacher, '--dataroot', join(root, 'data'), '--imageSize', String(imageSize), '--batchSize', String(batchSize), '--shardSize', String(shardSize), '--topK', '10', '--topP', '3', '--outf', join(root, 'runs', String(run++)), ...extra])])) as { images: number };
    return { images: r.images, seconds: (performance.now() - started) / 1000 };
  };
  const inProcess = async (): Promise<Sample> => {
    const before = process.cpuUsage();
    const { images: n, seconds } = await score([]);
    const used = process.cpuUsage(before);
    return { rate: n / seconds, cpu: (used.user + used.system) / 1e6 / seconds, busy: null };
  };
  const onPool = async (p: Pool): Promise<Sample> => {
    const cpuOf = () => p.workers.map((w) => cpuSeconds(w.pid!));
    const before = cpuOf();
    const busyBefore = p.busy;
    const { images: n, seconds } = await score(p.queue);
    const after = cpuOf();
    const cpu = before.includes(null) || after.includes(null) ? null : after.reduce((s: number, a, i) => s + a! - before[i]!, 0) / seconds;
    return { rate: n / seconds, cpu, busy: (p.busy - busyBefore) / (p.size * seconds) };
  };

  await inProcess();
  for (const p of pools) await onPool(p);
  const load = [loadavg()];
  // CPU the bench used over the timed rounds (this process and every worker), to tell apart from the machine's.
  const ours = () => {
    const w = workers.map((c) => cpuSeconds(c.pid!));
    const self = process.cpuUsage();
    return w.includes(null) ? null : w.reduce((a: number, b) => a + b!, 0) + (self.user + self.system) / 1e6;
  };
  const [oursBefore, machineBefore, roundsStarted] = [ours(), machineBusySeconds(), performance.now()];
  const samples: Sample[][] = [[], ...pools.map(() => [])];
  for (let r = 0; r < repeats; r++) {
    samples[0]!.push(await inProcess());
    for (const [i, p] of pools.entries()) samples[i + 1]!.push(await onPool(p));
  }
  load.push(loadavg());
  const [oursAfter, machineAfter, roundsSeconds] = [ours(), machineBusySeconds(), (performance.now() - roundsStarted) / 1000];
  const others = oursBefore === null || oursAfter === null || machineBefore === null || machineAfter === null ? null : Math.max(0, machineAfter - machineBefore - (oursAfter - oursBefore)) / roundsSeconds;

  const rows = samples.map((s) => ({
    rate: median(s.map((x) => x.rate)),
    cpu: s.some((x) => x.cpu === null) ? null : median(s.map((x) => x.cpu!)),
    busy: s.some((x) => x.busy === null) ? null : median(s.map((x) => x.busy!)),
  }));
  const one = pools.findIndex((p) => p.size === 1);
  const base = rows[one + 1]!.rate;
  const baseName = one < 0 ? 'in process' : '1 worker';
  const names = ['in process', ...pools.map((p) => `${p.size} worker${p.size > 1 ? 's' : ''}`)];
  const inProcessThreads = software ? (process.env.LP_NUM_THREADS ? `LP_NUM_THREADS=${process.env.LP_NUM_THREADS}` : 'lavapipe’s default, a thread per core') : 'the whole device';
  const perWorker = !software
    ? `--threadsPerWorker means nothing on a hardware adapter (${backend().adapterName}): the workers here share this machine's GPU, so the figure shows the queue's overhead, not scale-out`
    : budget
      ? `each worker computes on ${budget} lavapipe thread(s) (LP_NUM_THREADS=${budget}), standing in for a device of its own`
      : 'every worker computes on lavapipe’s default thread pool (a thread per core), so the workers compete for the same cores';
  const levels = software && budget ? Math.max(1, Math.floor(cores / Number(budget))) : null;
  const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const lines = [
    `Scoring throughput: NIN-4, ${imageSize} px, ${images} images, batches of ${batchSize}, shards of ${shardSize}; ${backend().adapterName}; ${cores} cores available (os.availableParallelism())`,
    `- in process: ${inProcessThreads}; ${perWorker}`,
    `- the median of ${repeats} timed run(s) per setting, taking turns, each from enqueueing to the merged ranking; load average (1 / 5 / 15 min, the bench's own processes included) ${fmtLoad(load[0]!)} before, ${fmtLoad(load[1]!)} after${others === null ? '' : `; other work on the machine used ${others.toFixed(2)} cores on average meanwhile`}`,
    `- CPU: cores' worth of CPU time the scoring used (the workers', or this process's in process), and images per CPU-second; busy: the share of the workers' time spent inside shards`,
    ...(levels === null
      ? []
      : [`- expected: images/s grows with workers up to ${levels} worker(s) (${cores} cores / ${budget} thread(s) each) and levels off beyond, where workers share cores; each worker's own Node thread also needs some CPU, so the growth is below linear`]),
    '',
    `| scoring | images/s | × ${baseName} | CPU (cores) | images per CPU-second | busy |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r, i) => `| ${names[i]} | ${r.rate.toFixed(1)} | ${(r.rate / base).toFixed(2)} | ${r.cpu === null ? '-' : r.cpu.toFixed(2)} | ${r.cpu === null ? '-' : (r.rate / r.cpu).toFixed(1)} | ${r.busy === null ? '-' : `${Math.round(r.busy * 100)} %`} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  finishing = true;
  const stop = async (c: ChildProcess, signal: NodeJS.Signals) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill(signal);
    await gone;
  };
  // The workers go first and at once (they hold nothing worth a graceful stop): a worker whose
  // Redis is gone would retry its blocking call for ever.
  await Promise.all(workers.map((w) => stop(w, 'SIGKILL')));
  if (redis) await stop(redis, 'SIGTERM');
  shutdown();
  rmSync(root, { recursive: true, force: true });
}
// A run cut short by a failure leaves its queue connections retrying, which would keep the process alive.
if (process.exitCode) process.exit();
