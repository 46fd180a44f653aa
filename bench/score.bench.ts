// Throughput of the teacher's scoring pass in this process and on a BullMQ queue served by 1, 2 and
// 3 `score:worker` processes on this machine (each its own device), in images/s. A Redis server of
// its own runs on a free 127.0.0.1 port; the teacher is an untrained NIN (the cost of a forward
// pass does not depend on the weights) over the built-in images. Each setting runs once untimed
// (workers load the teacher and compile their kernels), then once timed: from enqueueing to the
// merged ranking, so the queue's overhead is inside the figure.
//   npm run bench:score [-- --images 300 --imageSize 32 --workers 1,2,3]
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
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
    images: { type: 'string', default: '300' },
    imageSize: { type: 'string', default: '32' },
    batchSize: { type: 'string', default: '10' },
    shardSize: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1,2,3' },
  },
});
const [images, imageSize, batchSize, shardSize] = [o.images, o.imageSize, o.batchSize, o.shardSize].map(Number) as [number, number, number, number];
const root = mkdtempSync(join(tmpdir(), 'dawnet-score-bench-'));
const children: ChildProcess[] = [];

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

function worker(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'score:worker', ...args], { env: { ...process.env, DAWNET_QUIET: '1', DAWNET_CACHE: join(root, 'cache') }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('waiting for shards')) resolve(child);
    });
    child.on('exit', () => reject(new Error(`a worker stopped:\n${text}`)));
  });
}

async function main(): Promise<void> {
  await init({ announce: false });
  process.env.DAWNET_CACHE = join(root, 'cache');
  // The built-in training images, the same count from each of the ten classes.
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
  children.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
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
  let run = 0;
  const score = async (extra: string[]) => {
    const started = performance.now();
    const r = (await runCommand('score', ['--teacher', teacher, '--dataroot', join(root, 'data'), '--imageSize', String(imageSize), '--batchSize', String(batchSize), '--shardSize', String(shardSize), '--topK', '10', '--topP', '3', '--outf', join(root, 'runs', String(run++)), ...extra])) as { images: number };
    return r.images / ((performance.now() - started) / 1000);
  };
  const rows: [string, number][] = [];
  await score([]);
  rows.push(['in process', await score([])]);
  for (const n of o.workers.split(',').map(Number)) {
    const queue = ['--queue', url, '--queueName', `bench-${n}`];
    const pool = await Promise.all(Array.from({ length: n }, () => worker([...queue, '--lockDuration', '120000'])));
    await score(queue);
    rows.push([`${n} worker${n > 1 ? 's' : ''}`, await score(queue)]);
    for (const w of pool) w.kill('SIGTERM');
  }
  const adapter = backend().adapterName;
  const lines = [
    `Scoring throughput: NIN-4, ${imageSize} px, ${images} images, batches of ${batchSize}, shards of ${shardSize}; ${adapter}; ${availableParallelism()} cores`,
    '',
    '| scoring | images/s | × in process |',
    '| --- | ---: | ---: |',
    ...rows.map(([name, rate]) => `| ${name} | ${rate.toFixed(1)} | ${(rate / rows[0]![1]).toFixed(2)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGTERM');
  shutdown();
  rmSync(root, { recursive: true, force: true });
}
