// The training loop on a toy recipe (a linear layer on random batches): metrics act by their
// declared kind, not their name (a NaN loss stops the run, a NaN value does not; rates stay off
// the curves), selection by a metric keeps the best epoch and stops early on patience, and an
// interruption stops after the step it arrived in, saves, and throws RunInterrupted.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { F, Generator, randn, tensor, type Tensor } from '../src/index.js';
import { Linear } from '../src/nn/linear.js';
import { constant } from '../src/optim/schedules.js';
import { SGD } from '../src/optim/sgd.js';
import { trainLoop, type LoopBatch } from '../src/train/loop.js';
import { NonFiniteLossError, Run, RunInterrupted } from '../src/train/run.js';
import { asAccuracy, asLoss, asValue } from '../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-loop-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Toy extends LoopBatch {
  x: Tensor;
  y: Tensor;
}

/** Two batches of 4 per epoch, the same every epoch. */
function toyLoader(): AsyncIterable<Toy> & { length: number } {
  return {
    length: 2,
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < 2; i++) {
        const x = randn([4, 3], { generator: new Generator(i) }).keep();
        const y = tensor(Int32Array.of(0, 1, 1, 0), [4]).keep();
        yield { x, y, size: 4, dispose: () => (x.dispose(), y.dispose()) };
      }
    },
  };
}

async function toyRun(name: string, options: { scores?: number[]; scoreIsLoss?: boolean; patience?: number; lossScale?: number; interruptAtStep?: number; evaluated?: number[] }) {
  const run = new Run(join(root, name), 'test', {});
  const model = new Linear(3, 2, { generator: new Generator(1) });
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const scores = options.scores ?? [];
  let steps = 0;
  try {
    return await trainLoop({
      run,
      epochs: Math.max(scores.length, 1),
      verbIter: 1,
      loader: toyLoader(),
      optimizers: [optimizer],
      schedule: { schedule: constant(), perIteration: false },
      save: [{ model, optimizer, generators: {}, args: {} }],
      ...(options.scores ? { selectBy: 'score' } : {}),
      ...(options.patience ? { patience: options.patience } : {}),
      train: () => model.train(),
      step: ({ x, y }) => {
        // What the SIGINT handler does, during this step.
        if (++steps === options.interruptAtStep) run.interrupted = true;
        const loss = F.mul(F.crossEntropy(model.forward(x), y), options.lossScale ?? 1);
        loss.backward();
        // Names that say the opposite of the kinds: 'objective' is the loss; 'loss_ratio' (0/0, NaN) only a value.
        return { objective: asLoss(loss), loss_ratio: asValue(F.div(F.sub(loss, loss), F.sub(loss, loss))) };
      },
      evaluate: async (epoch) => {
        options.evaluated?.push(epoch);
        return { score: scores[epoch] === undefined ? undefined : (options.scoreIsLoss ? asLoss : asAccuracy)(scores[epoch]!) };
      },
    });
  } finally {
    run.close();
    optimizer.dispose();
    model.dispose();
  }
}

const epochRecords = (name: string) =>
  readFileSync(join(root, name, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.kind === 'epoch');

describe('the training loop', () => {
  it('selects the best epoch by the chosen metric and stops when it has not improved for --patience epochs', async () => {
    const r = await toyRun('select', { scores: [0.5, 0.7, 0.6, 0.65, 0.9], patience: 2 });
    expect(r.bestEpoch).toBe(2);
    expect(r.epochs).toBe(4);
    expect(r.ran.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    expect(r.steps).toBe(8);
    expect(r.bestPath).toBe(join(root, 'select', 'net_best.safetensors'));
    expect(existsSync(r.bestPath)).toBe(true);
    expect(existsSync(join(root, 'select', 'net_epoch_4.safetensors'))).toBe(true);
    // Every epoch records the rate of the schedule beside its metrics; the NaN value is kept as is.
    const records = epochRecords('select');
    expect(records.map((e) => e.lr)).toEqual([0.1, 0.1, 0.1, 0.1]);
    expect(records.every((e) => e.loss_ratio === null && typeof e.objective === 'number')).toBe(true);
  });

  it('selecting by a metric declared a loss keeps its lowest epoch', async () => {
    const r = await toyRun('select-loss', { scores: [0.9, 0.5, 0.7] });
    expect(r.bestEpoch).toBe(1);
    const low = await toyRun('select-loss-low', { scores: [0.9, 0.5, 0.7], scoreIsLoss: true });
    expect(low.bestEpoch).toBe(2);
    expect((await loadCheckpoint(low.bestPath)).epoch).toBe(2);
  });

  it('a metric declared a loss that becomes infinite stops the run, whatever its name', async () => {
    await expect(toyRun('diverged', { lossScale: Infinity })).rejects.toThrow(NonFiniteLossError);
    expect(existsSync(join(root, 'diverged', 'net_epoch_1.safetensors'))).toBe(false);
  });

  it('an interruption stops after its step, saves net_last without the held-out pass, and throws RunInterrupted', async () => {
    const evaluated: number[] = [];
    const stopped = toyRun('interrupted', { scores: [0.5, 0.6, 0.7], interruptAtStep: 3, evaluated });
    await expect(stopped).rejects.toThrow(RunInterrupted);
    await expect(stopped).rejects.toThrow(`stopped by SIGINT after step 3; continue with --resume ${join(root, 'interrupted')}`);
    expect(evaluated).toEqual([0]);
    expect((await loadCheckpoint(join(root, 'interrupted', 'net_last.safetensors'))).step).toBe(3);
    expect(existsSync(join(root, 'interrupted', 'net_epoch_2.safetensors'))).toBe(false);
  });
});
