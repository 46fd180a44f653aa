// Files that readers never see half-written: the bytes go to `<path>.tmp-<pid>`, are flushed,
// and the temporary file is renamed over `path` (atomic on POSIX file systems); on failure it is
// removed and whatever was at `path` stays as it was. Checkpoints, packs' indexes, metrics and
// run results are all written this way. A process killed mid-write leaves its temporary behind;
// removeStaleTemps clears those of dead processes on the next start.
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

type Write = (bytes: Uint8Array) => void;

function begin(path: string): { temp: string; fd: number; write: Write } {
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w');
  const write: Write = (bytes) => {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
  };
  return { temp, fd, write };
}

function commit(temp: string, fd: number, path: string): void {
  fsyncSync(fd);
  closeSync(fd);
  renameSync(temp, path);
  // Make the rename itself durable (best effort: some file systems refuse to sync a directory).
  let dirFd = -1;
  try {
    dirFd = openSync(dirname(path), 'r');
    fsyncSync(dirFd);
  } catch {
    // Nothing to do: the file is complete either way.
  } finally {
    if (dirFd >= 0) closeSync(dirFd);
  }
}

function abandon(temp: string, fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed by commit().
  }
  try {
    unlinkSync(temp);
  } catch {
    // Already renamed or never created: nothing to clean.
  }
}

/** Runs `produce` against a temporary file, then renames it to `path`. */
export async function writeFileAtomic(path: string, produce: (write: Write) => Promise<void>): Promise<void> {
  const { temp, fd, write } = begin(path);
  try {
    await produce(write);
    commit(temp, fd, path);
  } catch (err) {
    abandon(temp, fd);
    throw err;
  }
}

/** Writes `data` (text as UTF-8) to `path` through a temporary file. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const { temp, fd, write } = begin(path);
  try {
    write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    commit(temp, fd, path);
  } catch (err) {
    abandon(temp, fd);
    throw err;
  }
}

/** Whether a process with this id is running (EPERM: it runs, as another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A temporary name's writer: `….tmp-<pid>` or `….tmp-<pid>-<time>` (packs). */
const TEMP_NAME = /\.tmp-(\d+)(?:-\d+)?$/;

/**
 * Removes the temporary files and folders in `dir` left by processes that are no longer running
 * (a kill -9 during a checkpoint or pack write); returns their names. Those of live processes,
 * this one included, are kept: they may still be in use.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(TEMP_NAME.exec(name)?.[1]);
    if (!pid || isProcessAlive(pid)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
