// A run's checkpoints, as the RotNet reference keeps them: `<prefix>_epoch_N.safetensors` after
// each epoch N (the one before it deleted), `<prefix>_best.safetensors` when the watched metric
// improves, and `<prefix>_last.safetensors` when a run stops part-way (--maxIters, Ctrl-C). Each
// holds the model, the optimizers, the step and every generator's state, so --resume continues
// from the end of epoch N exactly as if the run had never stopped.
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CheckpointError, loadCheckpoint, saveCheckpoint, type CheckpointOptimizer, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Generator } from '../random.js';
import { writeFileAtomicSync } from '../atomic-file.js';
import type { Run } from './run.js';
import type { EpochRecord, Trainer } from './trainer.js';

export interface CheckpointSet {
  model: Module;
  optimizer: CheckpointOptimizer | Record<string, CheckpointOptimizer>;
  /** Every generator whose draws the run depends on (data order, augmentation, dropout). */
  generators: Record<string, Generator>;
  args: Record<string, unknown>;
  classNames?: readonly string[];
  /** File names start with it: 'net' (RotNet's), or 'netG' / 'netD'. Default 'net'. */
  prefix?: string;
}

/** The metric that selects the best epoch, and its value now. */
export interface Watched {
  name: string;
  value: number;
  /** A loss: the lowest value is the best (otherwise the highest). */
  lowerIsBetter?: boolean;
}

/** Whether the watched value beats `than` (NaN never does). */
export function isBetter(w: Watched, than: number): boolean {
  return w.lowerIsBetter ? w.value < than : w.value > than;
}

export class RunCheckpoints {
  private best: Watched | null = null;
  private readonly prefix: string;

  constructor(readonly run: Run, readonly set: CheckpointSet) {
    this.prefix = set.prefix ?? 'net';
  }

  path(tag: string): string {
    return this.run.path(`${this.prefix}_${tag}.safetensors`);
  }

  private async save(path: string, epoch: number, step: number, partial: boolean): Promise<void> {
    const { model, optimizer, generators, args, classNames } = this.set;
    const rng = Object.fromEntries(Object.entries(generators).map(([k, g]) => [k, g.getState()]));
    await saveCheckpoint(path, {
      model,
      optimizer,
      epoch,
      step,
      args,
      classNames,
      rng,
      extra: { partial: String(partial), ...(this.best ? { best: JSON.stringify(this.best) } : {}) },
    });
  }

  /** After epoch `epoch` (1-based): saves it, deletes the previous one, and updates the best. */
  async saveEpoch(epoch: number, step: number, watched?: Watched): Promise<void> {
    const improved = watched !== undefined && Number.isFinite(watched.value) && (this.best === null || isBetter(watched, this.best.value));
    if (improved) this.best = watched;
    const path = this.path(`epoch_${epoch}`);
    await this.save(path, epoch, step, false);
    const previous = this.path(`epoch_${epoch - 1}`);
    if (epoch > 1 && existsSync(previous)) rmSync(previous);
    if (improved) {
      const best = this.path('best');
      copyFileSync(path, `${best}.tmp-${process.pid}`);
      renameSync(`${best}.tmp-${process.pid}`, best);
    }
  }

  /**
   * At the end of epoch `epoch` (from 0): its checkpoint, or, when the run stopped before the
   * epoch's last step (--maxIters, Ctrl-C), `<prefix>_last`. A stop on an epoch's last step
   * still saves the epoch, so --resume continues exactly.
   */
  async afterEpoch(trainer: Trainer, epoch: number, watched?: Watched): Promise<void> {
    if (trainer.stopped && trainer.stepInEpoch < trainer.options.stepsPerEpoch) {
      const path = await this.saveLast(epoch, trainer.step);
      this.run.log(`stopped (${trainer.stopped}) after step ${trainer.step}; saved ${path}`);
      return;
    }
    await this.saveEpoch(epoch + 1, trainer.step, watched);
    if (trainer.stopped) this.run.log(`stopped (${trainer.stopped}) after step ${trainer.step}; saved ${this.path(`epoch_${epoch + 1}`)}`);
  }

  /** A run stopped part-way through epoch `completed` + 1. */
  async saveLast(completed: number, step: number): Promise<string> {
    const path = this.path('last');
    await this.save(path, completed, step, true);
    return path;
  }

  /**
   * --resume: when `from` is given, loads it (see resume), puts the trainer at its step and
   * continues the earlier epochs' metrics and curves. Returns the epoch to start from.
   */
  async continueRun(from: string | undefined, trainer: Trainer): Promise<number> {
    if (!from) return 0;
    const { epoch, step } = await this.resume(from);
    trainer.step = step;
    trainer.restoreHistory(restoreMetrics(this.run.metricsPath, epoch));
    this.run.log(`resumed from epoch ${epoch}, step ${step}`);
    return epoch;
  }

  /**
   * Loads a checkpoint written by this command (a file, or a run folder: its latest epoch) into
   * the model, optimizers and generators. Returns the epochs completed and the global step.
   */
  async resume(from: string): Promise<{ epoch: number; step: number; loaded: LoadedCheckpoint }> {
    const path = resolveResume(from, this.prefix);
    const loaded = await loadCheckpoint(path, { model: this.set.model, optimizer: this.set.optimizer });
    for (const [name, g] of Object.entries(this.set.generators)) {
      const state = loaded.rng?.[name];
      if (!state) throw new CheckpointError(`${path} has no state for the '${name}' generator; it was not written by this command`);
      g.setState(state);
    }
    // The best so far is this folder's: a run continued into a new folder starts its own.
    if (loaded.metadata.best && dirname(resolve(path)) === resolve(this.run.outf)) this.best = JSON.parse(loaded.metadata.best) as Watched;
    if (loaded.metadata.partial === 'true') {
      this.run.log(`warning: ${path} was saved part-way through epoch ${(loaded.epoch ?? 0) + 1}; that epoch restarts from its first batch, so this run will not match an uninterrupted one exactly`);
    }
    return { epoch: loaded.epoch ?? 0, step: loaded.step ?? 0, loaded };
  }
}

/** A --resume argument as a file: itself, or the newest `<prefix>_epoch_N` (else `_last`) in a folder. */
export function resolveResume(from: string, prefix = 'net'): string {
  if (!existsSync(from)) throw new CheckpointError(`--resume: ${from} does not exist`);
  if (!statSync(from).isDirectory()) return from;
  const epochs = readdirSync(from)
    .map((f) => new RegExp(`^${prefix}_epoch_(\\d+)\\.safetensors$`).exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  if (epochs[0]) return join(from, epochs[0][0]);
  const last = join(from, `${prefix}_last.safetensors`);
  if (existsSync(last)) return last;
  throw new CheckpointError(`--resume: ${from} holds no ${prefix}_epoch_N.safetensors or ${prefix}_last.safetensors`);
}

/**
 * After a resume into the same folder: keeps only the metrics of the first `epochs` epochs in
 * metrics.jsonl (dropping those of the part of the run that is being redone) and returns the
 * epoch records, so the curves continue.
 */
export function restoreMetrics(metricsPath: string, epochs: number): EpochRecord[] {
  if (!existsSync(metricsPath)) return [];
  const kept: string[] = [];
  const records: EpochRecord[] = [];
  for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const { kind, time: _time, step: _step, ...rest } = JSON.parse(line) as { kind?: string; time?: number; step?: number } & EpochRecord;
    if (!(rest.epoch <= epochs)) continue;
    kept.push(line);
    if (kind === 'epoch') records.push(rest);
  }
  writeFileAtomicSync(metricsPath, kept.length > 0 ? `${kept.join('\n')}\n` : '');
  return records;
}
