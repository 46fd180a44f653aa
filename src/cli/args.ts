// Command-line parsing for dawnet's commands: each command declares its flags once (name, type,
// default, help), and gets parsing, validation, aliases and a --help text from that declaration.
// Flag names follow the PyTorch scripts users come from (--dataroot, --batchSize, --niter).
import { parseArgs } from 'node:util';
import { FLAG_RANGES, FLAG_RULES } from './flags.js';

export type FlagType = 'string' | 'number' | 'int' | 'boolean';

export interface Flag {
  type: FlagType;
  help: string;
  default?: string | number | boolean;
  /** Allowed values (string flags). */
  choices?: readonly string[];
  /** Other long names accepted for the same flag (e.g. --niter for --epochs). */
  aliases?: readonly string[];
  /** Accept the flag several times (string flags), giving an array. */
  multiple?: boolean;
}

export type Flags = Record<string, Flag>;

type ValueOf<F extends Flag> = F['multiple'] extends true
  ? string[]
  : F['type'] extends 'boolean'
    ? boolean
    : F['type'] extends 'string'
      ? F['default'] extends string
        ? string
        : string | undefined
      : F['default'] extends number
        ? number
        : number | undefined;

export type Parsed<F extends Flags> = { [K in keyof F]: ValueOf<F[K]> };

/** A usage error: the CLI prints its message (no stack trace) and exits with status 2. */
export class UsageError extends Error {}

/** The values a numeric flag accepts: min ≤ v ≤ max, and v < below. */
export interface Range {
  min?: number;
  max?: number;
  below?: number;
}

/** Checks on a command's parsed values together (e.g. --nesterov with --momentum 0): a message, or null. */
export type FlagRule = (values: Readonly<Record<string, unknown>>) => string | null;

export interface Command<F extends Flags> {
  name: string;
  summary: string;
  flags: F;
  /** Extra lines after the flag list (examples). */
  epilog?: string;
}

export function helpText<F extends Flags>(cmd: Command<F>): string {
  const rows = Object.entries(cmd.flags).map(([name, f]) => {
    const names = [name, ...(f.aliases ?? []), ...(f.type === 'boolean' && f.default === true ? [`no-${name}`] : [])].map((n) => `--${n}`).join(', ');
    const value = f.type === 'boolean' ? '' : f.choices ? ` ${f.choices.join('|')}` : ` <${f.type === 'string' ? 'value' : f.type}>`;
    const def = f.default !== undefined && f.default !== false ? ` (default: ${f.default})` : '';
    return [`  ${names}${value}`, `${f.help}${def}`];
  });
  rows.push(['  --help', 'show this help']);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l!.length)) + 2);
  const lines = rows.map(([l, r]) => (l!.length >= width ? `${l}\n${' '.repeat(width)}${r}` : `${l!.padEnd(width)}${r}`));
  return [`Usage: npm run ${cmd.name} -- [options]`, '', cmd.summary, '', 'Options (each also in kebab-case: --batch-size for --batchSize):', ...lines, ...(cmd.epilog ? ['', cmd.epilog] : [])].join('\n');
}

/** Parses argv against the declaration; returns null when --help was asked (after printing it). */
export function parseCommand<F extends Flags>(cmd: Command<F>, argv: readonly string[] = process.argv.slice(2)): Parsed<F> | null {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  const canonical = new Map<string, string>();
  for (const [name, f] of Object.entries(cmd.flags)) {
    // Every name is also accepted in kebab-case (--batch-size for --batchSize), as argparse scripts spell them.
    const names = [name, ...(f.aliases ?? [])];
    for (const n of new Set([...names, ...names.map(kebabCase)])) {
      options[n] = { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.multiple ? { multiple: true } : {}) };
      canonical.set(n, name);
      // Node 20's parseArgs has no negation: --no-<flag> is declared beside each boolean flag.
      if (f.type === 'boolean') {
        options[`no-${n}`] = { type: 'boolean' };
        canonical.set(`no-${n}`, name);
      }
    }
  }
  // A negative number after a numeric flag is its value (parseArgs would call it ambiguous), so
  // that `--lr -1` gets the range check's message.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [arg, next] = [argv[i]!, argv[i + 1]];
    const f = arg.startsWith('--') ? cmd.flags[canonical.get(arg.slice(2)) ?? ''] : undefined;
    const numeric = f?.type === 'int' || f?.type === 'number';
    if (numeric && next !== undefined && /^-[\d.]/.test(next)) args.push(`${arg}=${argv[++i]}`);
    else args.push(arg);
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${cmd.name}: ${err instanceof Error ? err.message.replace(/\s*\n\s*/g, ' ') : String(err)} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(`${helpText(cmd)}\n`);
    return null;
  }
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(cmd.flags)) out[name] = f.multiple ? [] : f.default;
  for (const [given, raw] of Object.entries(values)) {
    if (given === 'help' || raw === undefined) continue;
    const name = canonical.get(given)!;
    const f = cmd.flags[name]!;
    out[name] = f.multiple ? (raw as string[]) : given.startsWith('no-') && f.type === 'boolean' && !cmd.flags[given] ? !raw : convert(cmd.name, given, f, raw as string | boolean);
    if (typeof out[name] === 'number') checkRange(cmd.name, given, out[name] as number, FLAG_RANGES[name]);
  }
  for (const rule of FLAG_RULES) {
    const problem = rule(out);
    if (problem) throw new UsageError(`${cmd.name}: ${problem}`);
  }
  return out as Parsed<F>;
}

/** batchSize → batch-size, manualSeed → manual-seed; names without capitals are unchanged. */
export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function checkRange(command: string, given: string, n: number, range: Range | undefined): void {
  if (!range) return;
  const { min, max, below } = range;
  const bounds = [min !== undefined ? `at least ${min}` : '', max !== undefined ? `at most ${max}` : '', below !== undefined ? `below ${below}` : ''].filter(Boolean);
  const inside = (min === undefined || n >= min) && (max === undefined || n <= max) && (below === undefined || n < below);
  if (!inside) throw new UsageError(`${command}: --${given} must be ${bounds.join(' and ')}, got ${n}`);
}

function convert(command: string, given: string, f: Flag, raw: string | boolean): string | number | boolean {
  if (f.type === 'boolean') return raw as boolean;
  const text = raw as string;
  if (f.type === 'string') {
    if (f.choices && !f.choices.includes(text)) throw new UsageError(`${command}: --${given} must be one of ${f.choices.join(', ')}, got '${text}'`);
    return text;
  }
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${command}: --${given} expects a number, got '${text}'`);
  if (f.type === 'int' && !Number.isInteger(n)) throw new UsageError(`${command}: --${given} expects an integer, got '${text}'`);
  return n;
}
