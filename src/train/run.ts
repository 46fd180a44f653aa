// What every training command shares: its output folder with the arguments saved, metrics as
// JSON lines, a progress bar (a line per report when not on a terminal), a guard against
// non-finite losses, and Ctrl-C or SIGTERM turned into "finish the step, save, exit 130 / 143"
// (a second one, or one while no step is running, quits at once).
//
// A run folder holds one run. A new run into a folder that holds another is refused (the default
// folder, runs/<command>, becomes runs/<command>-2, -3, … instead); only --resume of that folder
// continues it. A lock file (.lock, the owner's pid) stops two live runs sharing a folder, and
// what a killed run left (its temporary files, a torn last metrics line) is cleared on the next start.
import { appendFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, closeSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import cliProgress from 'cli-progress';
import { isProcessAlive, removeStaleTemps, writeFileAtomicSync } from '../atomic-file.js';

/** A loss that became NaN or infinite: the run stops, keeping its last good checkpoint. */
export class NonFiniteLossError extends Error {}

/** An output folder that cannot take this run (it holds another one, or a live run locks it). */
export class RunFolderError extends Error {}

/** The flags of a training command that choose its folder. */
export interface RunFolderArgs {
  outf?: string;
  resume?: string;
}

/** What a folder holds: the command of the run in it (from args.json, when readable) and its files. */
export interface HeldRun {
  command: string | null;
  files: string[];
}

/** What `dir` holds, or null when it holds nothing (hidden files aside: a lock, a temporary pack). */
export function heldRun(dir: string): HeldRun | null {
  let files: string[];
  try {
    files = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return null;
  }
  if (files.length === 0) return null;
  try {
    const { command } = JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8')) as { command?: unknown };
    return { command: typeof command === 'string' ? command : null, files };
  } catch {
    return { command: null, files };
  }
}

/** "a train:rotnet run", or the files when no run says what it is. */
const describeHeld = ({ command, files }: HeldRun): string =>
  command ? `a ${command} run` : `${files.length} file(s) (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''})`;

/**
 * Whether --resume `resume` continues the run in `outf`: it is the folder, a file or folder in
 * it, or a folder above it (train:student keeps a run folder per stage inside its own).
 */
function continues(outf: string, resume: string | undefined): boolean {
  if (resume === undefined) return false;
  const [r, o] = [resolve(resume), resolve(outf)];
  return r === o || r.startsWith(o + sep) || o.startsWith(r + sep);
}

function refuseHeld(outf: string, held: HeldRun): never {
  throw new RunFolderError(`${outf} already holds ${describeHeld(held)}; continue it with --resume ${outf}, or pass a new --outf (nothing in ${outf} was changed)`);
}

/**
 * The folder a command writes to: --outf when given (refused when it holds another run that
 * --resume does not continue); else the folder --resume continues; else the first of
 * runs/<command>, runs/<command>-2, … that holds nothing.
 */
export function chooseRunFolder(command: string, a: RunFolderArgs): string {
  // Checked before any folder is made, so a mistyped --resume leaves nothing behind.
  if (a.resume !== undefined && !existsSync(a.resume)) throw new RunFolderError(`--resume: ${a.resume} does not exist`);
  if (a.outf !== undefined) {
    if (a.outf.trim() === '') throw new RunFolderError('--outf is empty; give a folder');
    const held = heldRun(a.outf);
    if (held && !continues(a.outf, a.resume)) refuseHeld(a.outf, held);
    return a.outf;
  }
  if (a.resume !== undefined) return statSync(a.resume).isDirectory() ? a.resume : dirname(a.resume);
  const base = `runs/${command.replace(/^train:/, '')}`;
  for (let k = 1; ; k++) {
    const dir = k === 1 ? base : `${base}-${k}`;
    if (!heldRun(dir)) return dir;
  }
}

/** Folders locked by runs of this process (a lock with this pid may be another Run's). */
const lockedHere = new Set<string>();

/** Takes `dir`/.lock for this process; a lock whose process is gone is taken over. */
function lockFolder(dir: string): string {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      lockedHere.add(path);
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    const live = owner === process.pid ? lockedHere.has(path) : Number.isInteger(owner) && owner > 0 && isProcessAlive(owner);
    if (live) throw new RunFolderError(`${dir} is in use by another run (process ${owner}); wait for it to finish or pass another --outf`);
    unlinkSync(path);
  }
  throw new RunFolderError(`${dir}: could not take its lock file ${path}`);
}

/**
 * Checks metrics.jsonl of a run being continued: a torn last line (the process died mid-append)
 * is dropped with a warning; a damaged line before it stops the run, naming the line.
 */
function repairMetrics(path: string, warn: (message: string) => void): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, 'utf8').split('\n');
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop();
  const bad = lines.findIndex((line) => {
    if (line.trim() === '') return false;
    try {
      JSON.parse(line);
      return false;
    } catch {
      return true;
    }
  });
  if (bad < 0) return;
  if (bad < lines.length - 1) throw new RunFolderError(`${path}: line ${bad + 1} is not JSON; delete that line (or the file) and resume again`);
  warn(`warning: dropped the torn last line of ${path} (the run stopped while writing it)`);
  writeFileAtomicSync(path, lines.slice(0, -1).map((l) => `${l}\n`).join(''));
}

/** The signal that interrupted the latest run of this process, if any. */
let lastSignal: NodeJS.Signals | null = null;

/** The exit status of a process a signal stopped: 128 + its number (SIGINT 130, SIGTERM 143). */
const statusOf = (signal: NodeJS.Signals): number => (signal === 'SIGINT' ? 130 : 143);

/** The exit status an interrupted run ends with (130, 143), or 0 when none was; clears it. */
export function takeInterruptionStatus(): number {
  const signal = lastSignal;
  lastSignal = null;
  return signal ? statusOf(signal) : 0;
}

/**
 * A training loop stopped by SIGINT or SIGTERM after saving: thrown rather than returned, so
 * that a command does none of the work that follows its loop (a final evaluation, its next
 * stage). The CLI prints the message and exits with `status` (130, 143).
 */
export class RunInterrupted extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/**
 * For the CLI: SIGINT or SIGTERM that nothing else handles (no run is open: the data is being
 * opened and packed, the step measured) quits at once with 130 / 143. Nothing of a run is there
 * to save, and what the process writes (packs, checkpoints) goes to a temporary name, then renamed.
 */
export function quitOnSignalOutsideRuns(): void {
  const quit = (signal: NodeJS.Signals) => {
    // An open Run, or the score worker, has its own listener and its own way to stop.
    if (process.listenerCount(signal) > 1) return;
    process.stderr.write(`interrupted (${signal}): no training step is running, so quitting now\n`);
    process.exit(statusOf(signal));
  };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
}

export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss?: number;
  imagesPerSecond?: number;
  /** The peak GPU memory since the last report (memory().peakBytesInUse). */
  peakMemoryMiB?: number;
  extra?: Record<string, number>;
}

export class Run {
  readonly metricsPath: string;
  private bar: cliProgress.SingleBar | null = null;
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = Date.now();
  /**
   * Set by SIGINT (Ctrl-C) or SIGTERM: the loop finishes its step, saves, and throws
   * RunInterrupted. A run that starts after a signal (a command's next stage) starts interrupted.
   */
  interrupted = lastSignal !== null;
  /**
   * Whether a loop that checks `interrupted` after each step is running (trainLoop, the scorer's
   * shards). A signal outside one (loading a checkpoint, building the model, a final
   * evaluation) has no step to finish, so it quits at once.
   */
  stepping = false;
  private readonly lock: string;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    const again = signal === 'SIGINT' ? 'Ctrl-C' : signal;
    if (this.interrupted || !this.stepping) {
      this.log(this.interrupted ? `interrupted again (${signal}): quitting now; checkpoints already written are kept` : `interrupted (${signal}): no training step is running, so quitting now`);
      this.releaseLock();
      process.exit(statusOf(signal));
    }
    this.interrupted = true;
    lastSignal = signal;
    this.log(`interrupted (${signal}): stopping after this step; ${again} again to quit now`);
  };
  private readonly releaseLock = () => {
    if (!lockedHere.delete(this.lock)) return;
    try {
      unlinkSync(this.lock);
    } catch {
      // Already gone: nothing holds the folder.
    }
  };

  /** Claims `outf` for this run (see chooseRunFolder); args.resume says which run it continues. */
  constructor(readonly outf: string, readonly command: string, args: RunFolderArgs) {
    mkdirSync(outf, { recursive: true });
    this.lock = lockFolder(outf);
    this.metricsPath = join(outf, 'metrics.jsonl');
    try {
      const held = heldRun(outf);
      if (held && !continues(outf, args.resume)) refuseHeld(outf, held);
      if (held?.command && held.command !== command) throw new RunFolderError(`${outf} holds ${describeHeld(held)}, not a ${command} run; --resume continues a run of the same command`);
      const removed = removeStaleTemps(outf);
      if (removed.length > 0) this.log(`removed ${removed.length} temporary file(s) a stopped run left in ${outf}: ${removed.join(', ')}`);
      if (held) repairMetrics(this.metricsPath, (m) => this.log(m));
      writeFileAtomicSync(join(outf, 'args.json'), `${JSON.stringify({ command, ...args }, null, 2)}\n`);
    } catch (err) {
      this.releaseLock();
      throw err;
    }
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('exit', this.releaseLock);
  }

  /** The error a loop stopped by a signal ends with: "stopped by SIGINT <what>"; takes the signal's status. */
  interruption(what: string): RunInterrupted {
    const status = takeInterruptionStatus() || 130;
    return new RunInterrupted(`stopped by ${status === 143 ? 'SIGTERM' : 'SIGINT'} ${what}`, status);
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
      // A recipe without a single loss (a GAN's loss_D, loss_G) shows only its own metrics.
      loss: s.loss === undefined ? '' : ` | loss ${s.loss.toFixed(4)}`,
      speed: s.imagesPerSecond === undefined ? '-' : s.imagesPerSecond.toFixed(1),
      peak: s.peakMemoryMiB === undefined ? '-' : s.peakMemoryMiB.toFixed(1),
      extra: s.extra ? Object.entries(s.extra).map(([k, v]) => ` | ${k} ${v.toFixed(4)}`).join('') : '',
    };
    if (!this.tty) {
      process.stderr.write(`epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.steps} | ${fields.speed} img/s | peak ${fields.peak} MiB${fields.loss}${fields.extra}\n`);
      return;
    }
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: 'epoch {ep}/{epochs} |{bar}| {value}/{total} | {speed} img/s | peak {peak} MiB{loss}{extra} | ETA {eta_formatted}',
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
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.releaseLock);
    this.releaseLock();
  }
}
