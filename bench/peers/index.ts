// What dawnet's benchmarks import to compare with the peer engines in the same process:
// `loadPeers()` (null until `npm --prefix bench/peers ci` has run) and `measurePeer()`.
// This file imports no peer package, so dawnet type-checks and runs without them installed.
import { readFileSync } from 'node:fs';
import { Bench } from 'tinybench';

export const ENGINES = ['tfjs', 'jax'] as const;
export type Engine = (typeof ENGINES)[number];

const PACKAGES: Record<Engine, [label: string, pkg: string]> = {
  tfjs: ['TensorFlow.js', '@tensorflow/tfjs'],
  jax: ['jax-js', '@jax-js/jax'],
};

/** The engine's name and version as this package pins them: "TensorFlow.js 4.22.0 (WebGPU)". */
export function engineLabel(engine: Engine): string {
  const manifest = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  const [label, pkg] = PACKAGES[engine];
  return [label, manifest.dependencies[pkg], '(WebGPU)'].filter(Boolean).join(' ');
}

/** One timed unit of work, ready to run; `dispose` frees its inputs after the measurement. */
export interface Prepared {
  run(): Promise<void>;
  dispose(): void;
}
/** What a builder returns when its engine cannot express the workload, with the reason. */
export interface Unsupported {
  unsupported: string;
}
export type Built = Prepared | Unsupported;

export interface Workload {
  /** Shared with dawnet's benchmarks, so that results pair up by name. */
  name: string;
  /** Floating-point operations per run (multiply-add = 2), when the workload has a standard count. */
  flops?: number;
  /** Images per run, for the training step (reported as images/s). */
  images?: number;
  /** Timed iterations on a slow adapter such as lavapipe; one untimed warm-up precedes them. */
  iterations: number;
  /** Too slow for a software adapter: run.ts skips it there, and dawnet times it only on a GPU. */
  gpuOnly?: boolean;
  build: Record<Engine, () => Built | Promise<Built>>;
}

/** The peer side, loaded on demand: bench/peers/workloads.ts. */
export interface Peers {
  workloads: Workload[];
  /** Opens the engine's WebGPU device (once) and returns the adapter it actually runs on. */
  startEngine(engine: Engine): Promise<string>;
  /** The adapter the peers run on: dawnet's choice (DAWNET_ADAPTER, DAWNET_BACKEND). */
  peerAdapterName(): Promise<string>;
}

/** One measurement; `ms` is the median of the timed runs, null when the workload did not run. */
export interface PeerResult {
  engine: Engine;
  name: string;
  ms: number | null;
  adapter: string;
  samples?: number[];
  gflops?: number;
  imagesPerSecond?: number;
  unsupported?: string;
  error?: string;
}

/**
 * Loads the peer engines, or returns null when their packages are not installed. The specifier is
 * a variable so that TypeScript does not follow it: bench/peers/workloads.ts is type-checked with
 * its own tsconfig, where the packages are.
 */
export async function loadPeers(): Promise<Peers | null> {
  const specifier = './workloads.js';
  try {
    return (await import(specifier)) as Peers;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && /@tensorflow|@jax-js/.test(String(err))) return null;
    throw err;
  }
}

/** Times one workload on one started engine with tinybench: one untimed warm-up, then the median. */
export async function measurePeer(engine: Engine, workload: Workload, adapter: string, iterations?: number): Promise<PeerResult> {
  const base = { engine, name: workload.name, adapter };
  const built = await workload.build[engine]();
  if ('unsupported' in built) return { ...base, ms: null, unsupported: built.unsupported };
  const bench = new Bench({
    iterations: iterations ?? workload.iterations,
    time: 0,
    warmupIterations: 1,
    warmupTime: 0,
    retainSamples: true,
    throws: true,
  });
  bench.add(workload.name, () => built.run(), { async: true });
  try {
    await bench.run();
  } catch (err) {
    return { ...base, ms: null, error: err instanceof Error ? err.message : String(err) };
  } finally {
    built.dispose();
  }
  const result = bench.tasks[0]?.result;
  if (!result || !('latency' in result)) throw new Error(`${workload.name}: tinybench returned no timings`);
  const ms = result.latency.p50;
  return {
    ...base,
    ms,
    samples: [...(result.latency.samples ?? [])],
    ...(workload.flops ? { gflops: workload.flops / ms / 1e6 } : {}),
    ...(workload.images ? { imagesPerSecond: (workload.images * 1000) / ms } : {}),
  };
}
