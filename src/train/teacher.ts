// A trained classifier loaded from any dawnet classification checkpoint (fine-tune, supervised,
// SESEMI, the student), and the pseudo-labels it gives unlabeled images as a teacher: its top P
// classes per image, then the K images it is surest of for each class (Yalniz et al., 2019).
import { buildModel, checkpointSpec, completeSpec, type ModelSpec } from '../../models/registry.js';
import { CheckpointError, loadCheckpoint } from '../checkpoint/checkpoint.js';
import type { Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { Generator } from '../random.js';
import { inferenceBatch } from './inference-batch.js';
import { channelStats } from './splits.js';
import { predict } from './evaluate.js';

/**
 * The classifier a checkpoint holds, rebuilt from its description and loaded; a bare state dict's
 * description is completed from `data`, the training split (its image size, class names, channel statistics);
 * `modelName` (--model) names its model where its names and shapes do not.
 */
export async function loadClassifier(path: string, data: Dataset, modelName?: string): Promise<{ model: FeatureNet; spec: ModelSpec }> {
  const described = await checkpointSpec(path, modelName);
  const spec = described.normalize ? completeSpec(described, data, described.normalize, path) : completeSpec(described, data, await channelStats(data), path);
  const model = buildModel(spec, 0);
  try {
    // Extra tensors (SESEMI's rotation head) are allowed; missing ones are not.
    const loaded = await loadCheckpoint(path, { model, strict: false });
    if (loaded.missing.length > 0) throw new CheckpointError(`${path} lacks ${loaded.missing.length} tensor(s) of its ${spec.model}: ${loaded.missing.slice(0, 5).join(', ')}`);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.eval();
  return { model, spec };
}

/**
 * Pseudo-labels from class probabilities (rows of `classes`): image i is a candidate for the
 * top `perImage` classes of its row; each class keeps its `perClass` most probable candidates
 * (fewer when it has fewer). Returns the rows chosen and their labels, by class then rank.
 */
export function selectPseudoLabels(probs: Float32Array, classes: number, perClass: number, perImage: number): { rows: Int32Array; labels: Int32Array } {
  const n = probs.length / classes;
  const candidates: { row: number; p: number }[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * classes, (i + 1) * classes);
    const ranked = Array.from({ length: classes }, (_, c) => c).sort((x, y) => row[y]! - row[x]! || x - y);
    for (const c of ranked.slice(0, perImage)) candidates[c]!.push({ row: i, p: row[c]! });
  }
  const rows: number[] = [];
  const labels: number[] = [];
  candidates.forEach((list, c) => {
    list.sort((x, y) => y.p - x.p || x.row - y.row);
    for (const { row } of list.slice(0, perClass)) {
      rows.push(row);
      labels.push(c);
    }
  });
  return { rows: Int32Array.from(rows), labels: Int32Array.from(labels) };
}

/**
 * The teacher's pseudo-labels for `unlabeled`: every image scored once (in data-set order, eval
 * mode), then selectPseudoLabels. Returns data-set indices and their labels, by class then rank.
 */
export async function pseudoLabel(
  teacher: FeatureNet,
  spec: ModelSpec,
  unlabeled: Dataset,
  { perClass, perImage, batchSize }: { perClass: number; perImage: number; batchSize?: number },
): Promise<{ rows: Int32Array; labels: Int32Array }> {
  // Without a batch size, as many images at once as the memory budget holds (inference-batch.ts).
  batchSize ??= inferenceBatch(teacher, [spec.inChannels, spec.imageSize, spec.imageSize]);
  const loader = new DataLoader(unlabeled, { batchSize, generator: new Generator(0), transform: { normalize: spec.normalize } });
  const { probs, classes, indices } = await predict(loader, (x) => teacher.forward(x));
  const picked = selectPseudoLabels(probs, classes, perClass, perImage);
  return { rows: Int32Array.from(picked.rows, (r) => indices[r]!), labels: picked.labels };
}
