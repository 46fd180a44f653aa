// A trained classifier loaded from any dawnet classification checkpoint (fine-tune, supervised,
// SESEMI, the student) or a bare state dict, as `evaluate` and the teacher of `score` /
// `train:student` use it; and the hash that tells two teachers apart across machines.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { buildModel, checkpointSpec, completeSpec, type ModelSpec } from '../../models/registry.js';
import { CheckpointError, loadCheckpoint, readCheckpointFile, sourcePath, type CheckpointSource } from '../checkpoint/checkpoint.js';
import type { Dataset } from '../data/dataset.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { channelStats } from './splits.js';

/**
 * The description of the classifier in `path`; a bare state dict's is completed from `data`, the
 * training split (its image size, class names, channel statistics); `modelName` (--model) names
 * its model where its names and shapes do not.
 */
export async function classifierSpec(source: CheckpointSource, data: Dataset, modelName?: string): Promise<ModelSpec> {
  const described = await checkpointSpec(source, modelName);
  return completeSpec(described, data, described.normalize ?? (await channelStats(data)), sourcePath(source));
}

/** The classifier `spec` describes, with the weights of `source`, in eval mode. */
export async function loadWeights(source: CheckpointSource, spec: ModelSpec): Promise<FeatureNet> {
  const model = buildModel(spec, 0);
  try {
    // Extra tensors (SESEMI's rotation head) are allowed; missing ones are not.
    const loaded = await loadCheckpoint(source, { model, strict: false });
    if (loaded.missing.length > 0) throw new CheckpointError(`${sourcePath(source)} lacks ${loaded.missing.length} tensor(s) of its ${spec.model}: ${loaded.missing.slice(0, 5).join(', ')}`);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.eval();
  return model;
}

/** The classifier a checkpoint holds, rebuilt from its description (see classifierSpec) and loaded; the file is read once. */
export async function loadClassifier(source: CheckpointSource, data: Dataset, modelName?: string): Promise<{ model: FeatureNet; spec: ModelSpec }> {
  const file = typeof source === 'string' ? await readCheckpointFile(source) : source;
  const spec = await classifierSpec(file, data, modelName);
  return { model: await loadWeights(file, spec), spec };
}

/** SHA-256 of a file's bytes, read as a stream (checkpoints can be large). */
export async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
