// The supervised classifier recipe of the training loop, shared by fine-tuning, the supervised
// baseline, the classifier on a GAN's discriminator and the student: cross-entropy with the
// command's optimizer (separate rates for the pretrained backbone and the new head), an optional
// frozen trunk, the command's augmentation, dropout before the head if asked, held-out loss,
// top-1 and top-5 after each epoch, and selection and early stopping by one of them (the best
// epoch's weights are restored at the end).
import { noGrad } from '../autograd/tape.js';
import { loadCheckpoint, type CheckpointOptimizer } from '../checkpoint/checkpoint.js';
import type { AugmentOptions } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import * as F from '../functional.js';
import type { FeatureNet } from '../nn/feature-net.js';
import type { Schedule } from '../optim/schedules.js';
import { defaultGenerator, Generator } from '../random.js';
import type { Tensor } from '../tensor.js';
import { evaluate, type Accuracy } from './evaluate.js';
import { forwardFrozen, trainExceptFrozen, type Frozen } from './freeze.js';
import type { Run } from './run.js';
import { loopSettings, trainLoop, type LoopOptimizer } from './loop.js';
import { asAccuracy, asLoss } from './trainer.js';

export interface FitSettings {
  batchSize: number;
  epochs: number;
  lr: number;
  /** Rate of the pretrained (non-head) parameters; lr when undefined. */
  backboneLr?: number;
  manualSeed: number;
  verbIter: number;
  maxIters: number;
  epochSize?: number;
  /** Stop when the selected metric has not improved for this many epochs (0: never). */
  patience: number;
  resume?: string;
}

/** What fit needs of an optimizer: the loop's steps, a checkpoint's state, and freeing it. */
export type FitOptimizer = LoopOptimizer & CheckpointOptimizer & { dispose(): void };

export interface FitData {
  train: Dataset;
  val: Dataset | null;
  test: Dataset;
  normalize: { mean: number[]; std: number[] };
}

export interface FitResult {
  test: Accuracy;
  val: Accuracy | null;
  /** The epoch whose weights the model holds at the end (the best on validation, else the last). */
  epoch: number;
  steps: number;
}

export interface FitOptions {
  run: Run;
  model: FeatureNet;
  frozen: Frozen;
  /** State-dict prefix of the head: its parameters take lr, the others backboneLr. */
  headPrefix: string;
  data: FitData;
  settings: FitSettings;
  /** The optimizer over parameter groups (the head at lr, the backbone at backboneLr). */
  optimizer: (groups: { params: readonly Tensor[]; lr: number }[]) => FitOptimizer;
  schedule: (stepsPerEpoch: number) => { schedule: Schedule; perIteration: boolean };
  /** The training images' augmentation (normalisation is added). */
  augment: AugmentOptions;
  /**
   * The epoch-record key that selects the best epoch and drives early stopping: valTop1,
   * valTop5, valLoss with a validation split, else testTop1, testTop5, testLoss.
   */
  selectBy: string;
  /** Dropout probability on the head's input in training (0: none). */
  headDropout?: number;
  /** Saved in checkpoints (the model's description among them). */
  args: Record<string, unknown>;
  prefix?: string;
}

export async function fitClassifier({ run, model, frozen, headPrefix, data, settings: s, optimizer: makeOptimizer, schedule: makeSchedule, augment, selectBy, headDropout = 0, args, prefix }: FitOptions): Promise<FitResult> {
  const head = frozen.trainable.filter(([n]) => n.startsWith(headPrefix)).map(([, t]) => t);
  const body = frozen.trainable.filter(([n]) => !n.startsWith(headPrefix)).map(([, t]) => t);
  const groups = [{ params: head, lr: s.lr }, ...(body.length > 0 ? [{ params: body, lr: s.backboneLr ?? s.lr }] : [])];
  const optimizer = makeOptimizer(groups);
  const order = new Generator(s.manualSeed + 1);
  const loader = new DataLoader(data.train, {
    batchSize: s.batchSize,
    shuffle: true,
    generator: order,
    ...(s.epochSize ? { epochSize: s.epochSize } : {}),
    transform: { ...augment, normalize: data.normalize },
  });
  // Dropout on the output of the stage before the head (the head's input), in training only.
  const stages = model.stageNames;
  const beforeHead = stages[stages.length - 2];
  const logitsOf = (x: Tensor): Tensor => {
    if (!(headDropout > 0 && beforeHead)) return forwardFrozen(model, frozen, x);
    const f = frozen.through && stages.indexOf(frozen.through) >= stages.indexOf(beforeHead) ? noGrad(() => model.features(x, [beforeHead])[beforeHead]!) : model.features(x, [beforeHead])[beforeHead]!;
    return model.forwardFrom(beforeHead, F.dropout(f, headDropout, true));
  };
  // Evaluation at --batchSize too, never a chunk from free memory: an eval pass needs less than the
  // training step that fits, and held-out losses must not change with what else the device holds.
  const evalLoader = (d: Dataset, seed: number) => new DataLoader(d, { batchSize: s.batchSize, generator: new Generator(seed), transform: { normalize: data.normalize } });
  const testLoader = evalLoader(data.test, s.manualSeed + 2);
  const valLoader = data.val ? evalLoader(data.val, s.manualSeed + 3) : null;
  let test: Accuracy | null = null;
  let val: Accuracy | null = null;
  try {
    const result = await trainLoop({
      ...loopSettings(s),
      run,
      loader,
      optimizers: [optimizer],
      schedule: makeSchedule(loader.length),
      save: [{ model, optimizer, generators: { data: order, augment: loader.augmentGenerator, global: defaultGenerator }, args, classNames: data.train.classes, ...(prefix ? { prefix } : {}) }],
      selectBy,
      patience: s.patience,
      train: () => trainExceptFrozen(model, frozen),
      step: (batch) => {
        const logits = logitsOf(batch.images);
        const loss = F.crossEntropy(logits, batch.labels);
        loss.backward();
        return { loss: asLoss(loss), top1: asAccuracy(F.topkAccuracy(logits, batch.labels, 1)) };
      },
      evaluate: async () => {
        model.eval();
        test = await evaluate(testLoader, (x) => model.forward(x));
        val = valLoader ? await evaluate(valLoader, (x) => model.forward(x)) : null;
        return {
          testLoss: asLoss(test.loss),
          testTop1: asAccuracy(test.top1),
          testTop5: test.top5 === undefined ? undefined : asAccuracy(test.top5),
          valLoss: val ? asLoss(val.loss) : undefined,
          valTop1: val ? asAccuracy(val.top1) : undefined,
          valTop5: val?.top5 === undefined ? undefined : asAccuracy(val.top5),
        };
      },
    });
    let epoch = result.epochs;
    // Selection on validation keeps the best epoch: its weights are restored and re-scored.
    if (valLoader && result.bestEpoch > 0 && result.bestEpoch !== epoch && !result.stopped) {
      await loadCheckpoint(result.bestPath, { model });
      model.eval();
      test = await evaluate(testLoader, (x) => model.forward(x));
      val = await evaluate(valLoader, (x) => model.forward(x));
      run.log(`restored the best epoch by ${selectBy} (${result.bestEpoch}): test top-1 ${test.top1.toFixed(4)}`);
      epoch = result.bestEpoch;
    }
    if (!test) {
      model.eval();
      test = await evaluate(testLoader, (x) => model.forward(x));
    }
    return { test, val, epoch, steps: result.steps };
  } finally {
    optimizer.dispose();
  }
}
