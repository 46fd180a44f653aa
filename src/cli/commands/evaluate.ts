// evaluate — top-1 and top-5 of a classifier checkpoint on labeled images (the test split of
// --dataroot by default), or of an ensemble: several --net checkpoints whose softmax outputs are
// averaged. Prints a table and one JSON line on stdout.
import { readCheckpointFile, type CheckpointFile } from '../../checkpoint/checkpoint.js';
import { checkClassNames } from '../../checkpoint/classes.js';
import type { Dataset } from '../../data/dataset.js';
import { DataLoader } from '../../data/loader.js';
import { Generator } from '../../random.js';
import { openSplits } from '../../train/splits.js';
import { inferenceBatch } from '../../train/inference-batch.js';
import { predict } from '../../train/evaluate.js';
import { loadClassifier } from '../../train/teacher.js';
import { checkpointSpec } from '../../../models/registry.js';
import { netModelFlag } from '../flags.js';
import { UsageError } from '../args.js';
import { checkDataMatches, defineCommand } from '../common.js';

export interface EvaluateResult {
  top1: number;
  top5?: number;
  count: number;
  perNet: { net: string; top1: number; top5?: number }[];
}

/** Top-k hit rates of probability rows against labels. */
export function topk(probs: Float32Array, classes: number, labels: Int32Array, k: number): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = probs.subarray(i * classes, (i + 1) * classes);
    const score = row[labels[i]!]!;
    let above = 0;
    for (let c = 0; c < classes; c++) if (row[c]! > score) above++;
    if (above < k) hits++;
  }
  return hits / labels.length;
}

export const evaluateCommand = defineCommand(
  {
    name: 'evaluate',
    summary: 'Top-1 and top-5 of a checkpoint (or an ensemble: several --net, softmax averaged) on labeled images.',
    flags: {
      net: { type: 'string', multiple: true, help: 'a classifier checkpoint; give it several times for an ensemble' },
      dataroot: { type: 'string', help: 'labeled images (as the training commands take them); the built-in set when left out' },
      ...netModelFlag,
      imageSize: { type: 'int', help: "images are resized to imageSize × imageSize (default: the checkpoint's; a bare state dict needs it)" },
      split: { type: 'string', default: 'test', choices: ['test', 'train'], help: 'which split to score' },
      batchSize: { type: 'int', default: 0, help: 'images per batch (0: as many as the memory budget holds, DAWNET_MEMORY)' },
    },
    epilog: 'Example: npm run evaluate -- --net runs/finetune/net_best.safetensors --net runs/supervised/net_best.safetensors',
  },
  async (a): Promise<EvaluateResult> => {
    if (a.net.length === 0) throw new UsageError('evaluate: give at least one --net');
    let splits: Awaited<ReturnType<typeof openSplits>> | null = null;
    let sum: Float32Array | null = null;
    let classes = 0;
    let labels = new Int32Array(0);
    let data: Dataset | null = null;
    const perNet: EvaluateResult['perNet'] = [];
    try {
      for (const net of a.net) {
        // Read once for its description, then its weights; dropped once they are on the device.
        let file: CheckpointFile | null = await readCheckpointFile(net);
        const described = await checkpointSpec(file, a.model);
        splits ??= await openSplits(a.dataroot, { imageSize: a.imageSize ?? described.imageSize, channels: described.inChannels === 3 ? 3 : 1 });
        data ??= a.split === 'test' ? splits.test : splits.train;
        const { model, spec } = await loadClassifier(file, splits.train, a.model);
        file = null;
        try {
          checkDataMatches(spec, data, net);
          checkClassNames(net, spec, data.classes, `the ${a.split} split of ${a.dataroot ?? 'the built-in set'}`);
          const batchSize = a.batchSize || inferenceBatch(model, [spec.inChannels, spec.imageSize, spec.imageSize]);
          const loader = new DataLoader(data, { batchSize, generator: new Generator(0), transform: { normalize: spec.normalize } });
          const out = await predict(loader, (x) => model.forward(x));
          classes = out.classes;
          labels = Int32Array.from(out.indices, (i) => data!.labels[i]!);
          sum ??= new Float32Array(out.probs.length);
          for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + out.probs[i]!;
          perNet.push({ net, top1: topk(out.probs, classes, labels, 1), ...(classes > 5 ? { top5: topk(out.probs, classes, labels, 5) } : {}) });
        } finally {
          model.dispose();
        }
      }
    } finally {
      await splits?.close();
    }
    const result: EvaluateResult = { top1: topk(sum!, classes, labels, 1), count: labels.length, perNet };
    if (classes > 5) result.top5 = topk(sum!, classes, labels, 5);
    const pct = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(2)} %`);
    for (const r of perNet) process.stderr.write(`${r.net}: top-1 ${pct(r.top1)}, top-5 ${pct(r.top5)}\n`);
    if (perNet.length > 1) process.stderr.write(`ensemble of ${perNet.length}: top-1 ${pct(result.top1)}, top-5 ${pct(result.top5)}\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  },
);
