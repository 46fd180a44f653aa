// train:student — teacher → student pseudo-labelling (Yalniz et al., 2019): a trained teacher
// ranks the unlabeled images per class (the `score` step: the K images it is surest of for each
// class, among the top P classes of each image; run here, on a queue of workers with --queue, or
// reused with --ranking), a student trains on those pseudo-labels and is then fine-tuned on the
// real labels. Output: score/ (the ranking), then pretrain/ and finetune/ runs.
import { join } from 'node:path';
import { buildModel, classifierPrefix } from '../../../models/registry.js';
import { defaultGenerator } from '../../random.js';
import { resolveResume } from '../../train/run-checkpoints.js';
import { channelStats, labeledSplit, openSplits, Relabeled } from '../../train/splits.js';
import type { Accuracy } from '../../train/evaluate.js';
import { fitClassifier } from '../../train/fit.js';
import { freezeThrough } from '../../train/freeze.js';
import { Run } from '../../train/run.js';
import { requireClassifierStepFits } from '../../train/step-memory.js';
import { UsageError } from '../args.js';
import { augmentOf, checkDataMatches, defineCommand, modelSpecOf, optimizerOf, outfOf, scheduleOf, selectKey } from '../common.js';
import { augmentFlags, requestedChannels, scheduleFlags, scoreFlags, selectFlags, trainingFlags, unlabeledFlags } from '../flags.js';
import { pseudoLabels, readRanking } from '../../score/ranking.js';
import { checkReachable } from '../../score/queue.js';
import { scoreStep } from '../../score/step.js';

export interface StudentResult {
  outf: string;
  pseudoLabeled: number;
  /** Pseudo-labels that agree with the true labels, where the unlabeled images have them. */
  pseudoLabelAccuracy?: number;
  pretrained: Accuracy;
  finetuned: Accuracy;
}

export const student = defineCommand(
  {
    name: 'train:student',
    summary: 'Teacher → student: pseudo-label the top K images per class, train a student on them, fine-tune it on the labels.',
    flags: {
      ...trainingFlags,
      ...unlabeledFlags,
      ...scoreFlags,
      ranking: { type: 'string', help: 'reuse the ranking of a score run folder instead of scoring (its first --topK per class are taken)' },
      schedule: { ...scheduleFlags.schedule, default: 'cosine' },
      lr: { type: 'number', default: 0.05, help: 'learning rate' },
      batchSize: { type: 'int', default: 64, help: 'images per step' },
      epochs: { type: 'int', default: 30, aliases: ['niter'], help: 'epochs on the pseudo-labels' },
      finetuneEpochs: { type: 'int', default: 30, help: 'epochs of fine-tuning on the labels' },
      epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition' },
      ...augmentFlags,
      augment: { ...augmentFlags.augment, help: `${augmentFlags.augment.help} (as the classifiers; the billion-scale recipe's ImageNet crops are --augment imagenet)` },
      selectBy: { ...selectFlags.selectBy, help: 'the test metric that picks each stage’s best epoch (no validation split here)' },
    },
    epilog: 'Example: npm run train:student -- --teacher runs/finetune/net_best.safetensors --topK 200 --trainSamples 100\n         npm run train:student -- --ranking runs/score --trainSamples 100   (a ranking `npm run score` made)',
  },
  async (a): Promise<StudentResult> => {
    if (!a.teacher && !a.ranking) throw new UsageError('train:student: --teacher (a classifier checkpoint) or --ranking (a score run folder) is required');
    const outf = outfOf('train:student', a);
    // An unreachable queue is said before any data is opened or packed.
    if (a.queue) await checkReachable(a.queue);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
    const extra = a.unlabeledRoot ? await openSplits(a.unlabeledRoot, { imageSize: splits.train.imageSize, channels: splits.train.channels, unlabeled: true }) : null;
    try {
      const unlabeled = extra ? extra.train : splits.train;
      const classes = splits.train.classes;
      const normalize = await channelStats(unlabeled);
      const spec = modelSpecOf(a, splits.train, classes.length, normalize);
      const selectBy = selectKey(a.selectBy, 'test', classes.length);
      const augment = augmentOf(a, spec.imageSize);
      // Before the teacher's pass writes its ranking: both stages step at --batchSize.
      requireClassifierStepFits(spec, [splits.train.channels, splits.train.imageSize, splits.train.imageSize], a.batchSize);
      let ranking: ReturnType<typeof readRanking>;
      if (a.ranking) {
        ranking = readRanking(a.ranking);
        if (!ranking) throw new UsageError(`train:student: --ranking ${a.ranking} holds no finished ranking (ranking.json); finish it with npm run score -- --resume ${a.ranking}`);
      } else {
        const folder = join(outf, 'score');
        ranking = await scoreStep(
          { ...a, teacher: a.teacher!, outf: folder, ...(a.resume ? { resume: folder } : {}) },
          { train: splits.train, scored: unlabeled, where: extra ? { root: a.unlabeledRoot, unlabeled: true } : { ...(a.dataroot === undefined ? {} : { root: a.dataroot }), unlabeled: false }, dataName: `--dataroot ${a.dataroot ?? '(the built-in set)'}` },
          { ...a, stage: 'score' },
        );
        if (!ranking) throw new UsageError(`train:student: scoring was stopped; continue with --resume ${outf}`);
      }
      const chosen = pseudoLabels(ranking, { length: unlabeled.length, classes, source: (i) => unlabeled.source(i) }, a.topK);
      const pseudo = new Relabeled(unlabeled, chosen.rows, chosen.labels, classes);
      const known = [...chosen.rows].filter((r) => unlabeled.labels[r]! >= 0);
      const pseudoLabelAccuracy = known.length > 0 ? [...chosen.rows].filter((r, i) => unlabeled.labels[r] === chosen.labels[i]).length / known.length : undefined;
      defaultGenerator.manualSeed(a.manualSeed);
      const model = buildModel(spec, a.manualSeed);
      const stage = async (name: 'pretrain' | 'finetune', train: Relabeled | ReturnType<typeof labeledSplit>['labeled'], epochs: number) => {
        const run = new Run(join(outf, name), `train:student ${name}`, a);
        // --resume continues each stage from its own latest checkpoint; a finished stage only re-scores.
        const resume = a.resume ? latestIn(join(outf, name)) : undefined;
        try {
          return await fitClassifier({
            run,
            model,
            frozen: freezeThrough(model, null),
            headPrefix: classifierPrefix(spec),
            data: { train, val: null, test: splits.test, normalize },
            settings: { ...a, epochs, patience: 0, resume },
            optimizer: (groups) => optimizerOf(a, groups),
            schedule: (steps) => scheduleOf({ ...a, epochs }, steps),
            augment,
            selectBy,
            args: { ...a, modelSpec: spec, stage: name },
          });
        } finally {
          run.close();
        }
      };
      try {
        const pretrained = await stage('pretrain', pseudo, a.epochs);
        const finetuned = await stage('finetune', labeledSplit(splits.train, a.trainSamples).labeled, a.finetuneEpochs);
        const result: StudentResult = { outf, pseudoLabeled: pseudo.length, pretrained: pretrained.test, finetuned: finetuned.test, ...(pseudoLabelAccuracy !== undefined ? { pseudoLabelAccuracy } : {}) };
        process.stderr.write(
          `train:student: ${pseudo.length} pseudo-labels${pseudoLabelAccuracy === undefined ? '' : ` (${(100 * pseudoLabelAccuracy).toFixed(1)} % right)`}; ` +
            `test top-1 ${(100 * pretrained.test.top1).toFixed(2)} % after pseudo-labels, ${(100 * finetuned.test.top1).toFixed(2)} % after fine-tuning\n`,
        );
        return result;
      } finally {
        model.dispose();
      }
    } finally {
      await splits.close();
      await extra?.close();
    }
  },
);

function latestIn(dir: string): string | undefined {
  try {
    return resolveResume(dir);
  } catch {
    return undefined;
  }
}
