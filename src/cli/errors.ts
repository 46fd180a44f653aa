// The one place that turns whatever reaches a command's top level into what the user reads: a
// line naming the file, flag or device and what to do, and an exit status (2: usage, 1: the
// rest). The stack trace is printed only with DAWNET_DEBUG=1, since a user cannot act on it.
import { defaultCacheRoot } from '../data/open.js';
import { RunInterrupted } from '../train/run.js';
import { UsageError } from './args.js';

export interface Explained {
  message: string;
  /** The process's exit status. */
  status: number;
}

/** What a file-system error code means for the user, and what to do about it. */
const FS_CODES: Record<string, (path: string) => string> = {
  ENOENT: (p) => `no such file or folder: ${p}`,
  ENOTDIR: (p) => `${p}: part of this path is a file, not a folder`,
  EISDIR: (p) => `${p} is a folder; a file was expected`,
  EACCES: (p) => `permission denied: ${p}; choose a folder you can write to (e.g. another --outf)`,
  EPERM: (p) => `operation not permitted on ${p}; choose a folder you can write to (e.g. another --outf)`,
  EROFS: (p) => `${p} is on a read-only file system; choose a writable --outf`,
  ENOSPC: (p) => `the disk is full (writing ${p}); free some space, then continue with --resume (finished checkpoints are intact)`,
  EDQUOT: (p) => `the disk quota is exceeded (writing ${p}); free some space, then continue with --resume`,
  ENAMETOOLONG: (p) => `the path is too long: ${p}`,
  EMFILE: (p) => `too many open files (opening ${p}); raise the limit (ulimit -n) or use fewer --workers`,
  EEXIST: (p) => `${p} already exists`,
  ELOOP: (p) => `${p}: too many levels of symbolic links`,
  EIO: (p) => `input/output error on ${p}; the disk may be failing`,
};

function fileSystemMessage(err: NodeJS.ErrnoException): string | null {
  const describe = err.code ? FS_CODES[err.code] : undefined;
  if (!describe) return null;
  const path = err.path ?? (err as { dest?: string }).dest ?? '(unknown path)';
  const cache = defaultCacheRoot();
  const hint = path.startsWith(cache) ? ` (the packed-image cache: set DAWNET_CACHE to a writable folder)` : '';
  return `${describe(path)}${hint}`;
}

/** Explains an error that reached a command's top level. */
export function explainError(err: unknown): Explained {
  if (err instanceof UsageError) return { message: err.message, status: 2 };
  if (err instanceof RunInterrupted) return { message: err.message, status: err.status };
  if (!(err instanceof Error)) return { message: `error: ${String(err)}`, status: 1 };
  const fs = fileSystemMessage(err as NodeJS.ErrnoException);
  if (fs) return { message: `error: ${fs}`, status: 1 };
  if (err instanceof SyntaxError) return { message: `error: a JSON file is damaged (${err.message}); DAWNET_DEBUG=1 shows where it was read`, status: 1 };
  // dawnet's own errors (DataError, CheckpointError, a RangeError from a size check…) speak for
  // themselves; a TypeError or ReferenceError is a bug, said as such.
  const bug = (err instanceof TypeError || err instanceof ReferenceError) && !process.env.DAWNET_DEBUG;
  const suffix = bug ? ' (this looks like a bug in dawnet; DAWNET_DEBUG=1 prints the stack trace)' : '';
  return { message: `error: ${err.message}${suffix}`, status: 1 };
}

/** Prints the explanation of `err` on stderr (with the stack under DAWNET_DEBUG=1); returns the exit status. */
export function reportError(err: unknown): number {
  const { message, status } = explainError(err);
  process.stderr.write(`${message}\n`);
  if (process.env.DAWNET_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return status;
}

/** Runs a command's main function under this policy: any error is one line and an exit status. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    process.exitCode = reportError(err);
  }
}
