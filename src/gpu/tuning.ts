// The tuner's table: for one adapter, the kernel and tile that measured fastest for each shape
// (`npm run tune`, scripts/tune.ts). Kept per adapter in ~/.cache/dawnet/tuning/<adapter>.json
// (XDG_CACHE_HOME, or DAWNET_TUNING_DIR, moves the folder); planners take its entries as pinned
// choices and fall back to their heuristics for shapes it does not name.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../atomic-file.js';

/** A tile of the register-blocked GEMM kernels (matmul_gemm, conv2d_gemm): BM = TM·WG_Y, BN = 4·TN4·WG_X. */
export interface GemmTile {
  WG_X: number;
  WG_Y: number;
  TM: number;
  TN4: number;
  BK: number;
}

/** One shape's winner: the path its op family names (matmul: tiled, simd, gemm; conv: direct, simd, gemm) and the GEMM tile. */
export interface TunedChoice {
  path: string;
  gemmTile?: GemmTile;
  /** Median milliseconds of the winner and of the untuned choice, as measured. */
  ms: number;
  baselineMs: number;
}

export interface TuningTable {
  adapter: string;
  entries: Record<string, TunedChoice>;
}

export function tuningFolder(): string {
  return process.env.DAWNET_TUNING_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dawnet', 'tuning');
}

/** The adapter's name as a file name: "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" → "llvmpipe-mesa-25-0-7-llvm-15-0-6". */
export const adapterSlug = (adapter: string): string => adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'adapter';

export function tuningFile(adapter: string): string {
  return join(tuningFolder(), `${adapterSlug(adapter)}.json`);
}

/** The adapter's table, empty when it was never tuned. A file that does not parse is an error naming it. */
export function loadTuning(adapter: string): TuningTable {
  const file = tuningFile(adapter);
  if (!existsSync(file)) return { adapter, entries: {} };
  try {
    const table = JSON.parse(readFileSync(file, 'utf8')) as TuningTable;
    if (typeof table.entries !== 'object' || table.entries === null) throw new Error('no "entries" object');
    return table;
  } catch (err) {
    throw new Error(`tuning table ${file} is unreadable (${err instanceof Error ? err.message : String(err)}); delete it or run npm run tune`);
  }
}

export function saveTuning(table: TuningTable): string {
  const file = tuningFile(table.adapter);
  mkdirSync(tuningFolder(), { recursive: true });
  writeFileAtomicSync(file, `${JSON.stringify(table, null, 2)}\n`);
  return file;
}

/** The table's key of a matmul: out (batch, M, N) from K, with the operands' transposes. */
export const matmulKey = (M: number, N: number, K: number, batch: number, transA: boolean, transB: boolean): string =>
  `matmul ${batch}x${M}x${N}x${K}${transA ? ' tA' : ''}${transB ? ' tB' : ''}`;

/** The table's key of one pass of a convolution, in conv2d's terms. */
export const convKey = (pass: string, g: { N: number; Ci: number; H: number; W: number; Co: number; KH: number; KW: number; stride: number[]; padding: number[]; dilation: number[]; groups: number }): string =>
  `conv2d ${pass} x ${g.N}x${g.Ci}x${g.H}x${g.W} w ${g.Co}x${g.Ci / g.groups}x${g.KH}x${g.KW} s ${g.stride.join(',')} p ${g.padding.join(',')} d ${g.dilation.join(',')} g ${g.groups}`;
