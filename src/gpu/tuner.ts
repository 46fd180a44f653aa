// Timing candidate kernels for one shape on the open adapter, shared by `npm run tune`
// (scripts/tune.ts) and DAWNET_TUNE=1, where a planner that meets an untuned shape queues it
// here and the backend times it at its next read or sync, after submitting what was encoded,
// so that no step's commands are held up or mixed with the timing runs. The untuned choice is
// always a candidate, and another replaces it only when 5 % faster, twice.
import { backend } from '../runtime.js';
import type { GemmTile, TunedChoice } from './tuning.js';

/** The GEMM tiles every tuning run tries (each fits the kernels: gemmTileProblem). */
export const TUNER_TILES: GemmTile[] = [
  { WG_X: 16, WG_Y: 16, TM: 4, TN4: 1, BK: 16 },
  { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 },
  { WG_X: 16, WG_Y: 16, TM: 8, TN4: 1, BK: 16 },
  { WG_X: 8, WG_Y: 16, TM: 4, TN4: 2, BK: 16 },
];
/** A challenger must beat the untuned choice by this much to replace it (timing noise). */
const MARGIN = 0.95;

export interface Candidate {
  label: string;
  choice: { path?: string; gemmTile?: GemmTile };
}

/** What the op runs for one candidate: a disposable result (a tensor). */
export type TimedRun = (choice: Candidate['choice']) => { dispose(): void };

/** The other paths of an op family beside the GEMM tiles: the SIMD ones only where they apply. */
export function candidates(paths: string[], tiles: GemmTile[], label: (t: GemmTile) => string): Candidate[] {
  const simd = backend().simd;
  return [
    ...paths.filter((p) => p !== 'simd' || simd).map((path) => ({ label: path, choice: { path } })),
    ...tiles.map((t) => ({ label: `gemm ${label(t)}`, choice: { path: 'gemm', gemmTile: t } })),
  ];
}

async function median(run: () => { dispose(): void }, iterations: number): Promise<number> {
  run().dispose();
  await backend().sync();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    run().dispose();
    await backend().sync();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

/**
 * Times the untuned choice (whose path `untuned` names) and each other candidate; returns the
 * winner, or the untuned path itself when none beats it by the margin twice.
 */
export async function tuneShape(key: string, untuned: string, all: Candidate[], run: TimedRun, iterations: number, log: (line: string) => void): Promise<TunedChoice> {
  const others = all.filter((c) => c.label !== untuned);
  const baselineMs = await median(() => run({}), iterations);
  let best: (Candidate & { ms: number }) | null = null;
  for (const c of others) {
    const ms = await median(() => run(c.choice), iterations);
    if (!best || ms < best.ms) best = { ...c, ms };
  }
  // A challenger is timed again against the untuned choice, so one noisy run cannot install it.
  let won = best !== null && best.ms < MARGIN * baselineMs;
  if (won) won = (await median(() => run(best!.choice), iterations)) < MARGIN * (await median(() => run({}), iterations));
  log(`${key}: untuned (${untuned}) ${baselineMs.toFixed(2)} ms; best ${best?.label} ${best?.ms.toFixed(2)} ms → ${won ? best!.label : 'untuned'}`);
  if (won) return { path: best!.choice.path!, gemmTile: best!.choice.gemmTile, ms: best!.ms, baselineMs };
  return { path: untuned, ms: baselineMs, baselineMs };
}

/** DAWNET_TUNE: '1' times untuned shapes as they are met, '0' or unset does not. */
export function autotuneFromEnv(value = process.env.DAWNET_TUNE): boolean {
  if (value === undefined || value === '' || value === '0') return false;
  if (value === '1') return true;
  throw new Error(`DAWNET_TUNE must be '0' or '1', got '${value}'`);
}

/** Timed runs per candidate when a shape is tuned on first use: few, as a training run waits for them. */
export const FIRST_USE_ITERATIONS = 3;

/** One line per shape tuned on first use, on stderr (DAWNET_QUIET=1 silences it). */
export const tuneLog = (line: string): void => {
  if (!process.env.DAWNET_QUIET) process.stderr.write(`dawnet tune ${line}\n`);
};
