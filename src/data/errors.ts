// How the data pipeline reports bad input: DataError for problems that stop a run before any work
// (the CLI prints its message alone, no stack), and SkipLog for single unreadable images, which
// are skipped with a warning naming the first few paths and a running count.

/** A data set that cannot be used: missing or empty folder, no images, unreadable index. */
export class DataError extends Error {
  override name = 'DataError';
}

/** Receives the data pipeline's warnings; the default writes them to stderr. */
export type WarningHandler = (message: string) => void;

export const stderrWarning: WarningHandler = (message) => {
  process.stderr.write(`warning: ${message}\n`);
};

/** How many skipped paths a warning lists before "… and N more". */
const LISTED = 5;

/** The images of one data set that could not be read, and the warnings not yet emitted. */
export class SkipLog {
  private readonly reasons = new Map<string, string>();
  private pending: string[] = [];

  constructor(private readonly where: string, private readonly warn: WarningHandler = stderrWarning) {}

  /** Records an unreadable image; returns false when it was already known. */
  add(path: string, reason: string): boolean {
    if (this.reasons.has(path)) return false;
    this.reasons.set(path, reason);
    this.pending.push(path);
    return true;
  }

  has(path: string): boolean {
    return this.reasons.has(path);
  }

  /** Every unreadable image so far, with its reason. */
  get skipped(): { path: string; reason: string }[] {
    return [...this.reasons].map(([path, reason]) => ({ path, reason }));
  }

  get count(): number {
    return this.reasons.size;
  }

  /** Emits one warning for the images recorded since the last flush, if any. */
  flush(): void {
    if (this.pending.length === 0) return;
    const fresh = this.pending;
    this.pending = [];
    const listed = fresh.slice(0, LISTED).map((p) => `  ${p}: ${this.reasons.get(p)}`);
    const more = fresh.length > LISTED ? [`  … and ${fresh.length - LISTED} more`] : [];
    const total = fresh.length === this.count ? '' : ` (${this.count} in all)`;
    this.warn([`skipped ${fresh.length} unreadable image(s) in ${this.where}${total}:`, ...listed, ...more].join('\n'));
  }
}

/** The message of anything thrown (jpeg-js throws plain strings). */
export function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.trim() || 'unreadable';
}
