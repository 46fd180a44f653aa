// The one training loop every command configures with its recipe (the step, the evaluation, what
// to save): epochs of steps under the learning-rate schedule, typed metrics reported every
// --verbIter steps and per epoch (metrics.jsonl, curves.png, the progress line), evaluation after
// each epoch, checkpoints with the best by a chosen metric, early stopping, a stop on --maxIters
// or Ctrl-C that saves where it stopped, the NaN guard, and --resume, which continues the epochs,
// metrics and generators exactly where the checkpoint left them.
import { tensor } from '../creation.js';
import { LRScheduler, type HasParamGroups, type Schedule } from '../optim/schedules.js';
import { sync } from '../runtime.js';
import { scope } from '../scope.js';
import { DataParallel } from './data-parallel.js';
import { isBetter, RunCheckpoints, type CheckpointSet, type Watched } from './run-checkpoints.js';
import type { Module } from '../nn/module.js';
import type { Run } from './run.js';
import { asRate, Trainer, type EpochMetrics, type EpochRecord, type StepMetrics } from './trainer.js';

/** What the loop needs of a batch: how many images it holds, and how to free it. */
export interface LoopBatch {
  size: number;
  dispose(): void;
}

/** What the loop steps after each recipe step (SGD, Adam, AdamW). */
export interface LoopOptimizer extends HasParamGroups {
  step(): void;
  zeroGrad(): void;
}

export interface LoopOptions<B extends LoopBatch> {
  run: Run;
  epochs: number;
  /** One epoch of batches per iteration; length is the steps per epoch. */
  loader: AsyncIterable<B> & { readonly length: number };
  /**
   * The recipe's step on a batch (forward and backward), inside a scope that frees its
   * temporaries; returns the step's scalars for the reports. The optimizers step after it.
   */
  step(batch: B): StepMetrics;
  /** Stepped and zeroed, in order, after each step; a recipe that interleaves them (a GAN) leaves this out. */
  optimizers?: readonly LoopOptimizer[];
  /**
   * The optimizers a recipe steps inside its step (a GAN's, between its forwards): the loop never
   * steps them, but under --devices replicates them and sums the devices' gradients at each step().
   */
  inStepOptimizers?: readonly LoopOptimizer[];
  /** Once, on the run's very first batch (sample grids), before its step. */
  firstBatch?(batch: B): Promise<void>;
  /** Before each epoch's first step: training mode (and what stays frozen). */
  train(): void;
  /** After each epoch: the held-out results that join its record. */
  evaluate?(epoch: number): Promise<EpochMetrics>;
  /** The rates of every optimizer, by epoch or by iteration; each epoch records the first rate as lr. */
  schedule?: { schedule: Schedule; perIteration: boolean };
  /** What each epoch saves (RunCheckpoints), one file set per entry; the first one's metrics continue on --resume. */
  save: readonly CheckpointSet[];
  /** The epoch-record metric whose best value selects <prefix>_best: the highest, or the lowest of a loss. */
  selectBy?: string;
  /** Stop when selectBy has not improved for this many epochs (0 or undefined: never). */
  patience?: number;
  verbIter: number;
  maxIters?: number;
  resume?: string;
  /** --devices: N, all, or adapter names; above one device, data-parallel training (data-parallel.ts). */
  devices?: string;
  /** Modules the step uses besides the saved models (a frozen trunk): replicated on every device too. */
  replicate?: readonly Module[];
  /** --syncBN: batch-norm statistics over the global batch rather than each device's share. */
  syncBN?: boolean;
}

type LoopSettings = Pick<LoopOptions<LoopBatch>, 'epochs' | 'verbIter' | 'maxIters' | 'resume' | 'devices' | 'syncBN'>;

/** The loop's settings among a command's flags (--epochs, --verbIter, --maxIters, --resume, --devices, --syncBN). */
export function loopSettings({ epochs, verbIter, maxIters, resume, devices, syncBN }: LoopSettings): LoopSettings {
  return { epochs, verbIter, maxIters, resume, devices, syncBN };
}

/** The replicas --devices asks for, made from the model and optimizers as they are after --resume. */
async function openParallel<B extends LoopBatch>(o: LoopOptions<B>, run: Run): Promise<DataParallel | null> {
  if (o.devices === undefined || o.devices === '1') return null;
  const inStep = !o.optimizers?.length;
  const optimizers = inStep ? (o.inStepOptimizers ?? []) : o.optimizers!;
  if (!optimizers.length) throw new Error(`--devices ${o.devices}: this recipe names no optimizers for the loop to replicate; it trains on one device`);
  const parallel = await DataParallel.open(o.devices, [...o.save.map((s) => s.model), ...(o.replicate ?? [])], optimizers, { syncBN: o.syncBN ?? false, inStep });
  if (parallel) run.log(`data-parallel over ${parallel.size} devices (${parallel.adapters.join(', ')}): each takes its share of every batch; gradients are summed on the host${parallel.syncBN ? '; batch norms use the global batch’s statistics (--syncBN)' : ''}`);
  return parallel;
}

export interface LoopResult {
  /** Every epoch's record, the resumed ones included. */
  history: readonly EpochRecord[];
  /** The records of the epochs this call ran. */
  ran: EpochRecord[];
  steps: number;
  /** Why the run stopped before its last epoch ('maxIters', 'interrupted'), or null. */
  stopped: string | null;
  /** Epochs completed (an early stop ends before --epochs; a stop part-way counts its epoch as not done). */
  epochs: number;
  /** The best epoch by selectBy, 0 when none, and its file (the first save's <prefix>_best). */
  bestEpoch: number;
  bestPath: string;
}

/** The GPU work of the latest step, awaited once the next one is queued. */
interface Queued {
  done: Promise<void>;
}

/**
 * Called after each step is queued: submits it, waits for the GPU to finish the step before it,
 * and lets the event loop turn. The host so stays one step ahead of the GPU (which never waits
 * for it) instead of queueing --verbIter steps before the next readback, and a SIGINT handler
 * runs before the next step starts: Ctrl-C stops after the step in flight.
 */
async function paceStep(before: Queued | null): Promise<Queued> {
  const done = sync();
  // Awaited a step later; a failure meanwhile is not unhandled.
  done.catch(() => undefined);
  await before?.done;
  // Two turns: a signal that arrived during this turn is read in the poll phase between them.
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  return { done };
}

export async function trainLoop<B extends LoopBatch>(o: LoopOptions<B>): Promise<LoopResult> {
  const { run, loader, optimizers = [] } = o;
  const checkpoints = o.save.map((set) => new RunCheckpoints(run, set));
  const schedulers = o.schedule ? optimizers.map((opt) => new LRScheduler(opt, o.schedule!.schedule)) : [];
  const perIteration = o.schedule?.perIteration ?? false;
  const trainer = new Trainer(run, { epochs: o.epochs, stepsPerEpoch: loader.length, verbIter: o.verbIter, maxIters: o.maxIters });
  const [main, ...others] = checkpoints;
  const start = main ? await main.continueRun(o.resume, trainer) : 0;
  for (const c of others) if (o.resume) await c.resume(o.resume);
  const watch = o.selectBy;
  const watched = (record: EpochRecord): Watched | undefined =>
    watch === undefined ? undefined : { name: watch, value: record[watch] ?? Number.NaN, ...(trainer.kindOf(watch) === 'loss' ? { lowerIsBetter: true } : {}) };
  /** The best of the epochs up to `last` by selectBy (the first of equals); 0 when there is none. */
  const bestEpochUpTo = (last: number): number => {
    let best: { epoch: number; value: number } | undefined;
    for (const r of trainer.history) {
      const w = watched(r);
      if (r.epoch <= last && w && Number.isFinite(w.value) && (!best || isBetter(w, best.value))) best = { epoch: r.epoch, value: w.value };
    }
    return best?.epoch ?? 0;
  };
  const ran: EpochRecord[] = [];
  let epoch = start;
  const parallel = await openParallel(o, run);
  run.stepping = true;
  let queued: Queued | null = null;
  try {
    if (run.interrupted) throw run.interruption(`before the first step${start > 0 ? `; ${o.resume} is as it was` : ', nothing was saved'}`);
    for (; epoch < o.epochs && !trainer.stopped; epoch++) {
      trainer.beginEpoch(epoch);
      if (!perIteration) for (const s of schedulers) s.at(epoch);
      o.train();
      for await (const batch of loader) {
        if (perIteration) for (const s of schedulers) s.at(trainer.step);
        if (trainer.step === 0) await o.firstBatch?.(batch);
        if (parallel) {
          const values = await parallel.step(batch, o.step);
          scope(() => trainer.record(Object.fromEntries(Object.entries(values).map(([name, { kind, value }]) => [name, { kind, value: tensor(Float32Array.of(value), []) }]))));
        } else {
          scope(() => {
            trainer.record(o.step(batch));
            for (const opt of optimizers) {
              opt.step();
              opt.zeroGrad();
            }
          });
        }
        batch.dispose();
        queued = await paceStep(queued);
        if (await trainer.endStep(batch.size)) break;
      }
      await queued?.done;
      queued = null;
      // A signal part-way through an epoch saves at once; the held-out pass waits for a full epoch.
      const interruptedPartWay = run.interrupted && trainer.stepInEpoch < loader.length;
      const results = (interruptedPartWay ? undefined : await o.evaluate?.(epoch)) ?? {};
      const lr = schedulers[0]?.optimizer.paramGroups[0]?.lr;
      const record = await trainer.endEpoch(lr === undefined ? results : { lr: asRate(lr), ...results });
      ran.push(record);
      for (const c of checkpoints) await c.afterEpoch(trainer, epoch, watched(record));
      if (trainer.stopped || run.interrupted) break;
      const bestEpoch = bestEpochUpTo(epoch + 1);
      if (watch && o.patience && epoch + 1 - bestEpoch >= o.patience) {
        const best = trainer.history.find((r) => r.epoch === bestEpoch)?.[watch];
        run.log(`early stop: ${watch} has not improved for ${o.patience} epochs (best ${best?.toFixed(4)} at epoch ${bestEpoch})`);
        epoch++;
        break;
      }
    }
  } finally {
    run.stepping = false;
    parallel?.close();
  }
  if (run.interrupted) throw run.interruption(`after step ${trainer.step}; continue with --resume ${run.outf}`);
  const epochs = Math.min(epoch, o.epochs);
  const bestPath = checkpoints[0]?.path('best') ?? '';
  return { history: trainer.history, ran, steps: trainer.step, stopped: trainer.stopped, epochs, bestEpoch: bestEpochUpTo(epochs), bestPath };
}
