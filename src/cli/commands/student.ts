// train:student — teacher → student pseudo-labelling (Yalniz et al., 2019): a trained teacher
// scores the unlabeled images, each class takes the K images it is surest of (among the top P
// classes of each image), a student trains on those pseudo-labels and is then fine-tuned on the
// real labels. Output: pseudo_labels.json, then pretrain/ and finetune/ runs.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, classifierPrefix } from '../../../models/registry.js';
import { checkClassNames } from '../../checkpoint/classes.js';
import { defaultGenerator } from '../../random.js';
import { resolveResume } from '../../train/run-checkpoints.js';
import { channelStats, labeledSplit, openSplits, Relabeled } from '../../train/splits.js';
import type { Accuracy } from '../../train/evaluate.js';
import { fitClassifier } from '../../train/fit.js';
import { freezeThrough } from '../../train/freeze.js';
import { writeFileAtomicSync } from '../../atomic-file.js';
import { Run } from '../../train/run.js';
import { requireClassifierStepFits } from '../../train/step-memory.js';
import { UsageError } from '../args.js';
import { augmentOf, checkDataMatches, defineCommand, modelSpecOf, optimizerOf, outfOf, scheduleOf, selectKey } from '../common.js';
import { augmentFlags, requestedChannels, scheduleFlags, selectFlags, trainingFlags, unlabeledFlags } from '../flags.js';
import { loadClassifier, pseudoLabel } from '../../train/teacher.js';

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
      teacher: { type: 'string', help: 'the teacher: a classifier checkpoint (train:finetune, train:supervised, train:sesemi)' },
      topK: { type: 'int', default: 100, help: 'pseudo-labeled images kept per class' },
      topP: { type: 'int', default: 1, help: 'classes each image may be a candidate for' },
      schedule: { ...scheduleFlags.schedule, default: 'cosine' },
      lr: { type: 'number', default: 0.05, help: 'learning rate' },
      batchSize: { type: 'int', default: 64, help: 'images per step' },
      epochs: { type: 'int', default: 30, aliases: ['niter'], help: 'epochs on the pseudo-labels' },
      finetuneEpochs: { type: 'int', default: 30, help: 'epochs of fine-tuning on the labels' },
      epochSize: { type: 'int', help: 'images per epoch, drawn in order with repetition' },
      ...augmentFlags,
      selectBy: { ...selectFlags.selectBy, help: 'the test metric that picks each stage’s best epoch (no validation split here)' },
    },
    epilog: 'Example: npm run train:student -- --teacher runs/finetune/net_best.safetensors --topK 200 --trainSamples 100',
  },
  async (a): Promise<StudentResult> => {
    if (!a.teacher) throw new UsageError('train:student: --teacher is required (a classifier checkpoint)');
    if (!(a.topK >= 1 && a.topP >= 1)) throw new UsageError('train:student: --topK and --topP must be at least 1');
    const outf = outfOf('train:student', a);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
    const extra = a.unlabeledRoot ? await openSplits(a.unlabeledRoot, { imageSize: splits.train.imageSize, channels: splits.train.channels, unlabeled: true }) : null;
    try {
      const unlabeled = extra ? extra.train : splits.train;
      const classes = splits.train.classes;
      const normalize = await channelStats(unlabeled);
      const spec = modelSpecOf(a, splits.train, classes.length, normalize);
      const selectBy = selectKey(a.selectBy, 'test', classes.length);
      const augment = augmentOf(a, spec.imageSize);
      // Before the teacher's pass writes pseudo_labels.json: both stages step at --batchSize.
      requireClassifierStepFits(spec, [splits.train.channels, splits.train.imageSize, splits.train.imageSize], a.batchSize);
      const pseudoPath = join(outf, 'pseudo_labels.json');
      let chosen: { rows: Int32Array; labels: Int32Array };
      if (a.resume && existsSync(pseudoPath)) {
        const saved = JSON.parse(readFileSync(pseudoPath, 'utf8')) as { rows: number[]; labels: number[] };
        chosen = { rows: Int32Array.from(saved.rows), labels: Int32Array.from(saved.labels) };
      } else {
        const { model: teacher, spec } = await loadClassifier(a.teacher, splits.train);
        try {
          checkDataMatches(spec, unlabeled, `train:student: the teacher ${a.teacher}`);
          checkClassNames(a.teacher, spec, classes, `--dataroot ${a.dataroot ?? '(the built-in set)'}`);
          chosen = await pseudoLabel(teacher, spec, unlabeled, { perClass: a.topK, perImage: a.topP });
        } finally {
          teacher.dispose();
        }
        mkdirSync(outf, { recursive: true });
        writeFileAtomicSync(pseudoPath, `${JSON.stringify({ teacher: a.teacher, rows: [...chosen.rows], labels: [...chosen.labels], sources: [...chosen.rows].map((r) => unlabeled.source(r)) })}\n`);
      }
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
