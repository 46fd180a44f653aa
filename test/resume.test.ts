// Determinism and exact resume across processes: the same seed gives the same losses, and N
// steps + checkpoint + a fresh process loading it + N more steps give bit-identical losses to
// 2N uninterrupted steps (test/fixtures/resume.ts: dropout, shuffled mini-batches, two
// optimizers with parameter groups, schedules and clipping, a running-mean buffer).
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const TSX = join('node_modules', '.bin', 'tsx');
const N = 5;

async function losses(...args: string[]): Promise<string[]> {
  const { stdout } = await run(TSX, ['test/fixtures/resume.ts', ...args], { env: { ...process.env, DAWNET_QUIET: '1' } });
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { losses: string[] }).losses;
}

describe('resume', () => {
  it(`${N} steps, save, load in a new process, ${N} more: the same bits as ${2 * N} steps at once`, async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dawnet-resume-')), 'step5.safetensors');
    const [whole, firstHalf, otherSeed] = await Promise.all([
      losses('--seed', '3', '--until', String(2 * N)),
      losses('--seed', '3', '--until', String(N), '--save', path),
      losses('--seed', '4', '--until', String(N)),
    ]);
    const secondHalf = await losses('--seed', '3', '--until', String(2 * N), '--load', path);
    expect(whole).toHaveLength(2 * N);
    // Same seed, separate processes: the same losses, bit for bit.
    expect(firstHalf).toEqual(whole.slice(0, N));
    expect(otherSeed).not.toEqual(firstHalf);
    expect(secondHalf).toEqual(whole.slice(N));
    // Training did something: the losses are not all equal.
    expect(new Set(whole).size).toBeGreaterThan(N);
  });
});
