// The entry point of dawnet's commands: `tsx src/cli/main.ts <command> [flags]`, which the npm
// scripts (`npm run train:rotnet -- --help`) call. It opens the GPU, runs the command with the
// CLI's error policy (src/cli/errors.ts: every error is one line and a non-zero exit, never a
// stack trace), exits 130 / 143 after a run stopped by SIGINT / SIGTERM (at once when no
// training step is running), and releases the device so the process exits.
import { pathToFileURL } from 'node:url';
import { GpuError } from '../gpu/backend.js';
import { init, shutdown } from '../runtime.js';
import { quitOnSignalOutsideRuns, takeInterruptionStatus } from '../train/run.js';
import { parseCommand, UsageError } from './args.js';
import { reportError, runMain } from './errors.js';
import { invoke, type CliCommand } from './common.js';
import { applyMachineFlags } from './machine.js';
import { dcgan } from './commands/dcgan.js';
import { evaluateCommand } from './commands/evaluate.js';
import { finetune, ganClassifier, supervised } from './commands/classify.js';
import { probe } from './commands/probe.js';
import { rotnet } from './commands/rotnet.js';
import { score, scoreWorker } from './commands/score.js';
import { sesemi } from './commands/sesemi.js';
import { student } from './commands/student.js';
import { siameseVae, vae } from './commands/vae.js';

// Each command keeps its own flag types; the table only needs to parse and run them.
export const COMMANDS: Record<string, CliCommand<never, unknown>> = Object.fromEntries(
  [rotnet, probe, finetune, supervised, sesemi, dcgan, ganClassifier, student, score, scoreWorker, vae, siameseVae, evaluateCommand].map((c) => [c.spec.name, c as unknown as CliCommand<never, unknown>]),
);

function usage(): string {
  const rows = Object.values(COMMANDS).map((c) => `  ${c.spec.name.padEnd(22)}${c.spec.summary}`);
  return ['Usage: npm run <command> -- [options]   (each command takes --help)', '', 'Commands:', ...rows].join('\n');
}

/** Runs one command in this process (the device must be initialised); returns its summary. */
export async function runCommand(name: string, argv: readonly string[]): Promise<unknown> {
  const cmd = COMMANDS[name];
  if (!cmd) throw new UsageError(`unknown command '${name}'\n${usage()}`);
  return invoke(cmd, argv);
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const cmd = COMMANDS[name];
  if (!cmd) throw new UsageError(`unknown command '${name}'\n${usage()}`);
  // Flags are checked before the device opens: a typo costs no GPU start-up.
  const args = parseCommand(cmd.spec, rest);
  if (args === null) return;
  await init().catch((err: unknown) => {
    throw new GpuError(`cannot open a GPU device: ${err instanceof Error ? err.message : String(err)}`);
  });
  try {
    applyMachineFlags(name, args);
    await cmd.run(args);
  } finally {
    shutdown();
  }
  // A run that SIGINT or SIGTERM stopped saved its state and returned: schedulers must still see it stopped.
  const status = takeInterruptionStatus();
  if (status !== 0) process.exitCode = status;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Errors raised outside the command's own promise (a worker thread, a stray callback) get the same one line.
  const fatal = (err: unknown) => process.exit(reportError(err));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  quitOnSignalOutsideRuns();
  void runMain(() => main(process.argv.slice(2)));
}
