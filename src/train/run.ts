// What every training command shares: its output folder with the arguments saved, metrics as
// JSON lines, a progress bar (a line per report when not on a terminal), a guard against
// non-finite losses, and Ctrl-C turned into "finish the step, save, exit".
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { writeFileAtomicSync } from '../atomic-file.js';

/** A loss that became NaN or infinite: the run stops, keeping its last good checkpoint. */
export class NonFiniteLossError extends Error {}

export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss?: number;
  imagesPerSecond?: number;
  extra?: Record<string, number>;
}

export class Run {
  readonly metricsPath: string;
  private bar: cliProgress.SingleBar | null = null;
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = Date.now();
  /** Set by Ctrl-C: the loop finishes its step, saves, and returns. */
  interrupted = false;
  private readonly onSigint = () => {
    if (this.interrupted) process.exit(130);
    this.interrupted = true;
    this.log('interrupted: finishing this step and saving (Ctrl-C again to quit now)');
  };

  constructor(readonly outf: string, readonly command: string, args: object) {
    mkdirSync(outf, { recursive: true });
    writeFileAtomicSync(join(outf, 'args.json'), `${JSON.stringify({ command, ...args }, null, 2)}\n`);
    this.metricsPath = join(outf, 'metrics.jsonl');
    process.on('SIGINT', this.onSigint);
  }

  path(name: string): string {
    return join(this.outf, name);
  }

  /** Appends one JSON line: { time, ...record }. */
  metric(record: Record<string, unknown>): void {
    appendFileSync(this.metricsPath, `${JSON.stringify({ time: Number(((Date.now() - this.started) / 1000).toFixed(3)), ...record })}\n`);
  }

  /** A message above the progress bar. */
  log(message: string): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
    process.stderr.write(`${message}\n`);
  }

  /** Updates the bar; off a terminal, prints one line (call it at report points only). */
  progress(s: ProgressState): void {
    const fields = {
      epochs: s.epochs,
      ep: s.epoch,
      loss: s.loss === undefined ? '-' : s.loss.toFixed(4),
      speed: s.imagesPerSecond === undefined ? '-' : s.imagesPerSecond.toFixed(1),
      extra: s.extra ? Object.entries(s.extra).map(([k, v]) => ` | ${k} ${v.toFixed(4)}`).join('') : '',
    };
    if (!this.tty) {
      process.stderr.write(`epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.steps} | ${fields.speed} img/s | loss ${fields.loss}${fields.extra}\n`);
      return;
    }
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: 'epoch {ep}/{epochs} |{bar}| {value}/{total} | {speed} img/s | loss {loss}{extra} | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(s.steps, s.step, fields);
    }
    this.bar.setTotal(s.steps);
    this.bar.update(s.step, fields);
  }

  /** Throws NonFiniteLossError naming the value and where it appeared. */
  checkFinite(value: number, where: string): void {
    if (!Number.isFinite(value)) {
      throw new NonFiniteLossError(`${where}: the loss became ${value}; stopping (the last good checkpoint in ${this.outf} is kept). Try a lower --lr.`);
    }
  }

  close(): void {
    this.bar?.stop();
    this.bar = null;
    process.off('SIGINT', this.onSigint);
  }
}
