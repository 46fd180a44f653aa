// What every benchmark family shares: the session a family records its workloads into (tinybench
// timing with the warm-up excluded and the GPU awaited inside the timed region), the device's FMA
// peak and copy bandwidth, and the runner behind `npm run bench` and each `bench:<family>`.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { backend, F, init, shutdown } from '../src/index.js';
import { launch } from '../src/gpu/launch.js';
import { Tensor } from '../src/tensor.js';
import { ENGINES, type Engine } from './peers/index.js';
import { comparePeers, measurePytorchCpu, readPytorch } from './compare.js';
import { printProgress, writeReport, type Ceilings, type Report } from './report.js';

/** What a workload is, before it is timed: FLOPs, bytes moved and images are per run. */
export interface WorkloadSpec {
  /** Names contain the op first (`matmul 1024`, `conv2d forward …`), and pair up with the peers'. */
  name: string;
  shape: string;
  flops?: number;
  /** Bytes read plus bytes written: GB/s, and the fraction of the copy bandwidth. */
  bytes?: number;
  images?: number;
  note?: string;
}

export interface Measurement extends WorkloadSpec {
  family: string;
  /** Median of the timed runs. */
  ms: number;
  /** Every timed run, in ms (tinybench sorts them). */
  samples: number[];
}

export interface Family {
  name: string;
  run(session: Session): Promise<void>;
}

const HELP = `dawnet's benchmarks: every family in one process (npm run bench), or one (npm run bench:<family>).

  --quick             one timed run per workload (a smoke test, not a measurement)
  --only <text>       only the workloads whose name contains <text>
  --full              the data family's long tail (raw-folder decoding, 96 px loaders) in the suite too
  --sweep             matmul 1024 with every kernel and tile the planner can choose
  --peers [tfjs|jax]  compare with the peer engines (default: both, when bench/peers/node_modules exists)
  --no-peers          do not run the peers
  --pytorch <file>    add the JSON lines of bench/pytorch_bench.py as a peer (run on the same machine)
  --pytorch cpu       run bench/pytorch_bench.py --device cpu (Debian's python3-torch) after dawnet's
                      workloads, in the same run, as the "PyTorch 1.13 CPU (Debian)" column
  --save <name>       write bench/results/<name>.json and .md (a whole, not --quick, suite run writes latest.*)

DAWNET_ADAPTER / DAWNET_BACKEND choose the adapter.`;

export interface SessionOptions {
  quick: boolean;
  full: boolean;
  sweep: boolean;
  only: string | null;
}

/** Where a family records what it measures; the runner turns the records into the report. */
export class Session {
  readonly measurements: Measurement[] = [];
  family = '';

  constructor(
    readonly isSoftware: boolean,
    readonly options: SessionOptions,
    private readonly ceilings: Ceilings,
  ) {}

  /** Whether a workload of this name is to be measured (--only). */
  wants(name: string): boolean {
    return this.options.only === null || name.includes(this.options.only);
  }

  /** Times GPU work: `work()` queues it, and the timed region ends when the GPU has finished. */
  async gpu(spec: WorkloadSpec, work: () => unknown, iterations: number): Promise<void> {
    await this.host(spec, async () => {
      await work();
      await backend().sync();
    }, iterations);
  }

  /** Times host work (which may await the GPU itself) with tinybench: one warm-up, then the median. */
  async host(spec: WorkloadSpec, fn: () => Promise<unknown>, iterations: number): Promise<void> {
    if (!this.wants(spec.name)) return;
    const samples = await timeRuns(spec.name, fn, this.options.quick ? 1 : iterations);
    this.record(spec, samples);
  }

  /** Times something that runs once whether wanted or not (packing a folder others read): one sample, no warm-up. */
  async once(spec: WorkloadSpec, fn: () => Promise<unknown>): Promise<void> {
    const started = performance.now();
    await fn();
    if (this.wants(spec.name)) this.record(spec, [performance.now() - started]);
  }

  private record(spec: WorkloadSpec, samples: number[]): void {
    const m: Measurement = { ...spec, family: this.family, ms: median(samples), samples };
    this.measurements.push(m);
    printProgress(m, this.ceilings);
  }
}

/** The timed runs of one workload, in ms; tinybench's warm-up run (pipeline compiles) is left out. */
async function timeRuns(name: string, fn: () => Promise<unknown>, iterations: number): Promise<number[]> {
  const bench = new Bench({ iterations, time: 0, warmupIterations: 1, warmupTime: 0, retainSamples: true, throws: true });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`);
  return [...(result.latency.samples ?? [])];
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** GFLOP/s of kernels/peak.wgsl (every invocation chains 64·iters flops through registers), fastest run. */
async function fmaPeak(): Promise<number> {
  const invocations = 256 * 128;
  const iters = 2048;
  const out = Tensor.empty([invocations]);
  const samples = await timeRuns('fma peak', async () => {
    launch('peak', 'fma_peak', { out }, { iters, seed: 1 }, [invocations / 256]);
    await backend().sync();
  }, 10);
  out.dispose();
  return (64 * iters * invocations) / Math.min(...samples) / 1e6;
}

/**
 * GB/s (bytes read + written) of copying one large buffer, fastest run, two ways: buffer-to-buffer
 * and with an elementwise copy kernel (F.copy). The faster is the device's copy bandwidth (on a GPU
 * they agree; on lavapipe the first is a host memcpy, many times the second). 64 MiB on a software
 * adapter; on a GPU 256 MiB, past any L2 cache, where the storage binding allows.
 */
async function copyBandwidth(isSoftware: boolean): Promise<{ kernel: number; buffer: number }> {
  const bytes = Math.min(isSoftware ? 64 << 20 : 256 << 20, backend().limits.maxStorageBufferBindingSize);
  const elements = Math.floor(bytes / 16) * 4;
  const moved = 2 * 4 * elements;
  const from = Tensor.empty([elements]).keep();
  const to = Tensor.empty([elements]).keep();
  const kernel = await timeRuns('copy kernel', async () => {
    F.copy(from).dispose();
    await backend().sync();
  }, 10);
  const buffer = await timeRuns('copy buffer', async () => {
    backend().copy(from.view, to.view, 4 * elements);
    await backend().sync();
  }, 10);
  from.dispose();
  to.dispose();
  return { kernel: moved / Math.min(...kernel) / 1e6, buffer: moved / Math.min(...buffer) / 1e6 };
}

interface RunnerArgs extends SessionOptions {
  peers: Engine[];
  pytorch: string | null;
  save: string | null;
}

function parseRunnerArgs(argv: string[]): RunnerArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      full: { type: 'boolean' },
      sweep: { type: 'boolean' },
      only: { type: 'string' },
      peers: { type: 'boolean' },
      'no-peers': { type: 'boolean' },
      pytorch: { type: 'string' },
      save: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  // `--peers tfjs` arrives as the flag and a positional.
  const named = positionals.filter((p): p is Engine => (ENGINES as readonly string[]).includes(p));
  const unknown = positionals.filter((p) => !named.includes(p as Engine));
  if (unknown.length > 0) throw new Error(`unexpected argument ${unknown.join(' ')}\n\n${HELP}`);
  const installed = existsSync(join(dirname(fileURLToPath(import.meta.url)), 'peers', 'node_modules'));
  const wanted = values['no-peers'] ? false : values.peers || named.length > 0 || installed;
  return {
    quick: values.quick ?? false,
    full: values.full ?? false,
    sweep: values.sweep ?? false,
    only: values.only ?? null,
    peers: wanted ? (named.length > 0 ? named : [...ENGINES]) : [],
    pytorch: values.pytorch ?? null,
    save: values.save ?? null,
  };
}

/**
 * Runs the families in this process: the FMA peak and copy bandwidth once, then each family, then
 * the peers on the workloads they share. The whole suite writes bench/results/latest.{json,md};
 * a single family writes only with --save.
 */
export async function runBenchmarks(families: Family[], { suite }: { suite: boolean }): Promise<void> {
  const args = parseRunnerArgs(process.argv.slice(2));
  const gpu = await init({ announce: false });
  process.stderr.write(`dawnet bench on ${gpu.adapterName}: ${families.map((f) => f.name).join(', ')}${args.quick ? ' (quick)' : ''}\n`);
  const peak = await fmaPeak();
  const copy = await copyBandwidth(gpu.isSoftware);
  const ceilings: Ceilings = { fmaPeakGflops: peak, copyGBs: Math.max(copy.buffer, copy.kernel), copyBufferGBs: copy.buffer, copyKernelGBs: copy.kernel };
  process.stderr.write(`  FMA peak ${peak.toFixed(1)} GFLOP/s; copy ${copy.buffer.toFixed(2)} GB/s buffer to buffer, ${copy.kernel.toFixed(2)} GB/s as a kernel\n`);
  const session = new Session(gpu.isSoftware, { ...args, full: args.full || !suite }, ceilings);
  for (const family of families) {
    session.family = family.name;
    await family.run(session);
  }
  const peers = await comparePeers(session.measurements, args.peers, gpu.adapterName, args.quick);
  if (args.pytorch === 'cpu') peers.push(measurePytorchCpu(session.measurements, args));
  else if (args.pytorch) peers.push(readPytorch(args.pytorch, session.measurements));
  const report: Report = {
    adapter: gpu.adapterName,
    software: gpu.isSoftware,
    date: new Date().toISOString(),
    host: `Node ${process.versions.node}, ${process.platform}/${process.arch}`,
    quick: args.quick,
    ceilings,
    peers,
    measurements: session.measurements,
  };
  // A partial or --quick run does not replace the suite's results.
  const save = args.save ?? (suite && args.only === null && !args.quick ? 'latest' : null);
  writeReport(report, save);
  shutdown();
  // Dawn's devices (the peers' too) keep Node's event loop alive; everything is written.
  process.exit(0);
}

/** Runs one family when its file is the program (`tsx bench/conv.bench.ts`), not when the suite imports it. */
export async function runIfMain(moduleUrl: string, family: Family): Promise<void> {
  const main = process.argv[1];
  if (main && resolve(main) === fileURLToPath(moduleUrl)) await runBenchmarks([family], { suite: false });
}
