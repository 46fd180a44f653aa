// The seeds' machine flags (--workers, --cuda, --ngpu), so that their command lines run as
// written: --workers sizes the image-decoding threads; --cuda and --ngpu cannot choose among
// CUDA devices, so dawnet says which adapter it runs on instead.
import { setDecodeThreads } from '../data/workers.js';
import { backend } from '../runtime.js';

interface MachineArgs {
  workers?: number;
  cuda?: boolean;
  ngpu?: number;
}

/** What --cuda / --ngpu did, given the adapter that opened; null when neither was given. */
export function machineReport(a: MachineArgs, adapter: { adapterName: string; isSoftware: boolean }): string | null {
  const lines: string[] = [];
  if (a.cuda) {
    lines.push(
      adapter.isSoftware
        ? `--cuda: no hardware GPU adapter was found; running on ${adapter.adapterName} (software, slow). DAWNET_ADAPTER chooses among adapters`
        : `--cuda: running on ${adapter.adapterName} (hardware)`,
    );
  }
  if (a.ngpu !== undefined) {
    lines.push(
      a.ngpu <= 1
        ? `--ngpu ${a.ngpu}: one adapter, ${adapter.adapterName}`
        : `--ngpu ${a.ngpu}: dawnet trains on one adapter (${adapter.adapterName}); the other GPUs are not used`,
    );
  }
  return lines.length > 0 ? lines.join('\n') : null;
}

/** Applies --workers and reports --cuda / --ngpu on stderr, before a command runs. */
export function applyMachineFlags(command: string, args: Readonly<Record<string, unknown>>): void {
  const a = args as MachineArgs;
  if (a.workers !== undefined) setDecodeThreads(a.workers);
  const report = machineReport(a, backend());
  if (report) process.stderr.write(report.split('\n').map((l) => `${command}: ${l}\n`).join(''));
}
