// npm run experiment --protocol flowers end to end on a tiny image folder, in its own process:
// the labelled share reaches the runs (--trainSamples), RotNet trains the 3-way pretext, the
// fine-tune uses Adam, and the table holds the four arms with the linear evaluations.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_ROOT } from '../src/data/builtin.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-experiment-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('npm run experiment -- --protocol flowers', () => {
  it('a share labelled: scratch, RotNet (3 rotations) fine-tuned with Adam, and the linear evaluations', () => {
    for (const [split, count] of [['train', 8], ['test', 3]] as const) {
      for (const cls of ['0-tshirt-top', '1-trouser', '7-sneaker']) {
        const to = join(root, 'data', split, cls);
        mkdirSync(to, { recursive: true });
        for (const f of readdirSync(join(BUILTIN_ROOT, split, cls)).sort().slice(0, count)) copyFileSync(join(BUILTIN_ROOT, split, cls, f), join(to, f));
      }
    }
    const outf = join(root, 'run');
    const r = spawnSync(
      'npx',
      ['tsx', 'scripts/experiment.ts', '--protocol', 'flowers', '--labelledFraction', '0.25', '--dataroot', join(root, 'data'), '--imageSize', '16', '--ninStages', '3', '--rotnetEpochs', '1', '--epochs', '1', '--epochSize', '4', '--batchSize', '4', '--components', '8', '--outf', outf],
      { encoding: 'utf8', env: { ...process.env, DAWNET_QUIET: '1', DAWNET_CACHE: join(root, 'cache') } },
    );
    expect(r.status, r.stderr).toBe(0);
    const args = (run: string) => JSON.parse(readFileSync(join(outf, run, 'args.json'), 'utf8')) as Record<string, unknown>;
    // A quarter of 8 images per class.
    expect(args('supervised-2')).toMatchObject({ trainSamples: 2 });
    expect(args('rotnet')).toMatchObject({ rotations: 3 });
    expect(args('finetune-2')).toMatchObject({ trainSamples: 2, optimizer: 'adam', lr: 1e-3, schedule: 'constant' });
    const results = JSON.parse(readFileSync(join(outf, 'results.json'), 'utf8')) as { labelledPerClass: number; rotnetLinear: { components: number; testTop1: number }; scratchLinear: { testTop1: number } };
    expect(results.labelledPerClass).toBe(2);
    expect(results.rotnetLinear.components).toBe(8);
    for (const v of [results.rotnetLinear.testTop1, results.scratchLinear.testTop1]) expect(v * 9).toBeCloseTo(Math.round(v * 9), 6);
    const table = readFileSync(join(outf, 'results.md'), 'utf8');
    expect(table).toMatch(/\| from scratch on the labelled images \(1 epochs\) \| \d+\.\d % \|/);
    expect(table).toMatch(/\| linear evaluation of RotNet conv2 \(PCA 8, \d+\.\d % of the variance\) \| \d+\.\d % \|/);
    // Four trainings in a child process, each compiling its pipelines on lavapipe.
  }, 900_000);
});
