// The bookkeeping of the training loop (loop.ts): scalars accumulated on the GPU and read back
// only at report points (every --verbIter steps and at each epoch's end; an epoch's means are
// built on the host from its reports, so each scalar is summed once on the GPU), a stop after
// --maxIters steps or on Ctrl-C, epoch metrics as JSON lines and their curves as a PNG. Each
// metric declares its kind: losses are checked for NaN and plotted with losses, accuracies on
// their own axis, rates (the learning rate) not at all.
import { writeFileAtomicSync } from '../atomic-file.js';
import type { Tensor } from '../tensor.js';
import { takePeakMiB } from '../runtime.js';
import { Meter } from './meter.js';
import { plotPng, type Panel } from './png.js';
import type { Run } from './run.js';

export interface TrainerOptions {
  epochs: number;
  /** Steps in one epoch (the loader's length), for the progress bar. */
  stepsPerEpoch: number;
  /** Report (one readback) every verbIter steps. */
  verbIter: number;
  /** Stop after this many steps in all (smoke runs); 0 or undefined for no limit. */
  maxIters?: number;
}

export type EpochRecord = { epoch: number } & Record<string, number>;

export type MetricKind = 'loss' | 'accuracy' | 'rate' | 'value';

/** A named scalar and what it measures: a one-element tensor in a step, a number at an epoch's end. */
export interface Metric<T> {
  kind: MetricKind;
  value: T;
}

export const asLoss = <T>(value: T): Metric<T> => ({ kind: 'loss', value });
export const asAccuracy = <T>(value: T): Metric<T> => ({ kind: 'accuracy', value });
export const asRate = <T>(value: T): Metric<T> => ({ kind: 'rate', value });
export const asValue = <T>(value: T): Metric<T> => ({ kind: 'value', value });

/** A step's scalars, each the mean over the step's items. */
export type StepMetrics = Record<string, Metric<Tensor>>;
/** An epoch's results beside its training means (evaluation, the rate); undefined ones are left out. */
export type EpochMetrics = Record<string, Metric<number> | undefined>;

export class Trainer {
  /** Global step: optimizer updates so far, across epochs and resumes. */
  step = 0;
  /** The epoch running now, from 0. */
  epoch = 0;
  /** Steps finished in the current epoch. */
  stepInEpoch = 0;
  readonly history: EpochRecord[] = [];
  private readonly sinceReport = new Map<string, Meter>();
  private readonly kinds = new Map<string, MetricKind>();
  /** Per scalar, the epoch's weighted sum and weight so far, from the reports read back. */
  private readonly sinceEpoch = new Map<string, { sum: number; weight: number }>();
  private images = 0;
  private reportedAt = performance.now();
  private lastReport: Record<string, number> = {};
  /** The peak memory of the latest report, shown again between reports on a terminal. */
  private lastPeakMiB: number | undefined;
  private stopReason: string | null = null;

  constructor(readonly run: Run, readonly options: TrainerOptions) {}

  /** The kind a metric declared (undefined before it is first recorded in this process). */
  kindOf(name: string): MetricKind | undefined {
    return this.kinds.get(name);
  }

  /** Why the loop should stop ('maxIters', 'interrupted'), or null to go on. */
  get stopped(): string | null {
    return this.stopReason;
  }

  /** Starts an epoch (call before its first step). */
  beginEpoch(epoch: number): void {
    this.epoch = epoch;
    this.stepInEpoch = 0;
    this.sinceEpoch.clear();
    // Images per second count training alone, not the evaluation between epochs.
    this.images = 0;
    this.reportedAt = performance.now();
  }

  /** Adds this step's scalars: one-element tensors, each the mean over `weight` items. */
  record(values: StepMetrics, weight = 1): void {
    for (const [name, { kind, value }] of Object.entries(values)) {
      if (!this.sinceReport.has(name)) this.sinceReport.set(name, new Meter());
      this.kinds.set(name, kind);
      this.sinceReport.get(name)!.add(value, weight);
    }
  }

  /** Ends a step that saw `images` images; reports when due. Returns true when the loop must stop. */
  async endStep(images: number): Promise<boolean> {
    this.step += 1;
    this.stepInEpoch += 1;
    this.images += images;
    const { verbIter, maxIters } = this.options;
    if (maxIters && this.step >= maxIters) this.stopReason = 'maxIters';
    if (this.run.interrupted) this.stopReason = 'interrupted';
    if (this.step % verbIter === 0 || this.stopReason || this.stepInEpoch === this.options.stepsPerEpoch) await this.report();
    else if (process.stderr.isTTY) this.showProgress();
    return this.stopReason !== null;
  }

  private showProgress(imagesPerSecond?: number, peakMemoryMiB = this.lastPeakMiB): void {
    const { loss, ...extra } = this.lastReport;
    this.run.progress({
      peakMemoryMiB,
      epoch: this.epoch + 1,
      epochs: this.options.epochs,
      step: this.stepInEpoch,
      steps: this.options.stepsPerEpoch,
      loss,
      imagesPerSecond,
      extra,
    });
  }

  private async report(): Promise<void> {
    const values: Record<string, number> = {};
    for (const [name, meter] of this.sinceReport) {
      if (meter.items === 0) continue;
      const value = await meter.mean();
      if (this.kinds.get(name) === 'loss') this.run.checkFinite(value, `step ${this.step}, ${name}`);
      const epoch = this.sinceEpoch.get(name) ?? { sum: 0, weight: 0 };
      this.sinceEpoch.set(name, { sum: epoch.sum + value * meter.items, weight: epoch.weight + meter.items });
      values[name] = Number(value.toPrecision(6));
      meter.reset();
    }
    if (Object.keys(values).length === 0) return;
    const seconds = (performance.now() - this.reportedAt) / 1000;
    const imagesPerSecond = this.images / Math.max(seconds, 1e-9);
    this.lastReport = values;
    const peakMemoryMiB = takePeakMiB();
    this.lastPeakMiB = peakMemoryMiB;
    this.showProgress(imagesPerSecond, peakMemoryMiB);
    this.run.metric({ kind: 'step', epoch: this.epoch + 1, step: this.step, ...values, imagesPerSecond: Number(imagesPerSecond.toFixed(2)), peakMemoryMiB });
    this.images = 0;
    this.reportedAt = performance.now();
  }

  /**
   * Ends the epoch: its means of every recorded scalar plus `extra` (evaluation results) go to
   * metrics.jsonl and curves.png. Throws NonFiniteLossError for a NaN or infinite mean.
   */
  async endEpoch(extra: EpochMetrics = {}): Promise<EpochRecord> {
    // Steps since the last report (an epoch that ended early) are reported first.
    await this.report();
    const values = Object.fromEntries([...this.sinceEpoch].map(([name, { sum, weight }]) => [name, Number((sum / weight).toPrecision(6))]));
    const results: Record<string, number> = {};
    for (const [name, m] of Object.entries(extra)) {
      if (!m) continue;
      this.kinds.set(name, m.kind);
      results[name] = m.value;
    }
    const record: EpochRecord = { epoch: this.epoch + 1, ...values, ...results };
    this.history.push(record);
    this.run.metric({ kind: 'epoch', step: this.step, ...record });
    const shown = Object.entries(record).filter(([k]) => k !== 'epoch').map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`);
    this.run.log(`epoch ${record.epoch}/${this.options.epochs}: ${shown.join(', ')}`);
    this.writeCurves();
    return record;
  }

  /** Rebuilds history from an earlier run's metrics (after --resume), so the curves continue. */
  restoreHistory(records: readonly EpochRecord[]): void {
    this.history.push(...records);
  }

  private writeCurves(): void {
    writeFileAtomicSync(this.run.path('curves.png'), curvesPng(this.history, (name) => this.kinds.get(name) ?? 'value'));
  }
}

/** Losses (and other values) on the left, accuracies on the right, against the epoch; rates are left out. */
export function curvesPng(history: readonly EpochRecord[], kindOf: (name: string) => MetricKind): Buffer {
  const keys = [...new Set(history.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'epoch' && kindOf(k) !== 'rate');
  const series = (names: string[]) => names.map((name) => ({ name, points: history.filter((r) => name in r).map((r) => [r.epoch, r[name]!] as const) }));
  const isAccuracy = (k: string) => kindOf(k) === 'accuracy';
  const panels: Panel[] = [{ title: 'loss', series: series(keys.filter((k) => !isAccuracy(k))), xLabel: 'epoch' }];
  const accuracies = keys.filter(isAccuracy);
  if (accuracies.length > 0) panels.push({ title: 'accuracy', series: series(accuracies), yRange: [0, 1], xLabel: 'epoch' });
  return plotPng(panels);
}
