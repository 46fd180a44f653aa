// Training checkpoints as one safetensors file: the model's parameters and buffers under
// PyTorch's state-dict names and layouts, the optimizer's state, and a metadata block (format
// version, epoch, step, arguments, RNG states, class names), written atomically.
//
// Layout of the file
//   <state-dict name>                       model parameters and buffers: float32 as F32; int32
//                                           buffers (num_batches_tracked) as I64, PyTorch's dtype
//   optimizer.state.<param name>.<slot>     F32, the parameter's shape: momentum_buffer (SGD),
//                                           exp_avg and exp_avg_sq (Adam, AdamW)
//   optimizer.state.<param name>.step       F32 scalar: updates applied (Adam's state['step'], kept
//                                           as PyTorch keeps it; SGD's too, which PyTorch lacks)
//   (with several optimizers, optimizer.<key>.state.… for each)
//   __metadata__: format "pt", dawnet.format_version, epoch, step, and JSON strings: args, rng
//                 (Generator states by name), class_names, optimizer (kind, groups with their
//                 hyperparameters and parameter names).
// One file rather than a second one for the optimizer: a single rename makes the whole
// checkpoint appear at once. In PyTorch, load the model with
//   sd = safetensors.torch.load_file(p); model.load_state_dict({k: v for k, v in sd.items() if not k.startswith('optimizer.')})
// Parameter names come from the model (by tensor identity); a parameter the model does not hold
// is named by its number in the optimizer.
import type { Module, StateDict } from '../nn/module.js';
import type { OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';
import { readTensorFile } from './pth.js';
import { renameFromRotNet } from './rotnet-names.js';
import { writeSafetensors, type SafetensorsContents, type SafetensorsTensor, type TensorSpec } from './safetensors.js';

/** Raised on loading when the file does not fit the model or optimizer; lists every problem. */
export class CheckpointError extends Error {}

/**
 * A checkpoint read into memory once, for a command that reads its description
 * (checkpointSpec) and then its weights (loadCheckpoint): a large one is hundreds of MiB.
 */
export interface CheckpointFile {
  path: string;
  contents: SafetensorsContents;
}

/** A checkpoint's path, or the checkpoint already read (readCheckpointFile). */
export type CheckpointSource = string | CheckpointFile;

/** Reads a checkpoint (safetensors or .pth) once, to pass wherever a CheckpointSource is taken. */
export async function readCheckpointFile(path: string): Promise<CheckpointFile> {
  return { path, contents: await readTensorFile(path) };
}

/** The path of a source, for messages. */
export const sourcePath = (source: CheckpointSource): string => (typeof source === 'string' ? source : source.path);

/** The contents of a source: read now when it is a path, else the ones already read. */
export const sourceContents = async (source: CheckpointSource): Promise<SafetensorsContents> =>
  typeof source === 'string' ? readTensorFile(source) : source.contents;

/** Bumped when the layout above changes incompatibly. */
export const CHECKPOINT_FORMAT_VERSION = 1;
const PREFIX = 'optimizer';

/** What saveCheckpoint and loadCheckpoint need of an optimizer (SGD, Adam, AdamW). */
export interface CheckpointOptimizer {
  readonly kind: string;
  parameters(): readonly Tensor[];
  stateDict(): Promise<OptimizerStateDict>;
  checkStateDict(dict: OptimizerStateDict, describe?: (index: number) => string): string[];
  loadStateDict(dict: OptimizerStateDict): void;
}

export interface CheckpointMetadata {
  epoch?: number;
  /** Global iteration count. */
  step?: number;
  /** The run's arguments (JSON-serialisable). */
  args?: Record<string, unknown>;
  classNames?: readonly string[];
  /** Generator.getState() of each generator that drives the run (init, data order, dropout…). */
  rng?: Record<string, readonly number[]>;
  /** More metadata strings, kept as they are. */
  extra?: Record<string, string>;
}

export interface SaveCheckpointOptions extends CheckpointMetadata {
  model: Module;
  /** One optimizer, or several by key (a GAN's generator and discriminator). */
  optimizer?: CheckpointOptimizer | Record<string, CheckpointOptimizer>;
}

export interface LoadCheckpointOptions {
  /** The model to load into; its state-dict names and shapes must match. */
  model?: Module;
  optimizer?: CheckpointOptimizer | Record<string, CheckpointOptimizer>;
  /**
   * With false, model tensors missing from the file or absent from the model are allowed (a
   * backbone without its head, for fine-tuning); shapes must still match. Default true.
   */
  strict?: boolean;
  /**
   * Model tensors whose names start with one of these are not read (a pretrained network's
   * classifier, replaced by a new head of another shape). Needs strict: false.
   */
  skip?: readonly string[];
}

export interface LoadedCheckpoint extends CheckpointMetadata {
  /** The file's dawnet.format_version; null for a safetensors file dawnet did not write. */
  formatVersion: number | null;
  /** Model keys the file lacked / the model lacked (non-empty only with strict: false). */
  missing: string[];
  unexpected: string[];
  /** The raw __metadata__ strings. */
  metadata: Record<string, string>;
}

function optimizerEntries(optimizer: SaveCheckpointOptions['optimizer']): [string, CheckpointOptimizer][] {
  if (!optimizer) return [];
  if (isOptimizer(optimizer)) return [[PREFIX, optimizer]];
  return Object.entries(optimizer).map(([key, o]) => [`${PREFIX}.${key}`, o]);
}

function isOptimizer(o: CheckpointOptimizer | Record<string, CheckpointOptimizer>): o is CheckpointOptimizer {
  return typeof (o as CheckpointOptimizer).stateDict === 'function';
}

/** Names of an optimizer's parameters: the model's state-dict names, else their numbers. */
function parameterNames(model: Module | undefined, optimizer: CheckpointOptimizer): string[] {
  const byTensor = new Map<Tensor, string>(model ? model.namedParameters().map(([n, t]) => [t, n]) : []);
  return optimizer.parameters().map((p, i) => byTensor.get(p) ?? String(i));
}

// JSON has no NaN, and Generator states use it for "no spare normal": store it as null.
const encodeRng = (rng: Record<string, readonly number[]>): string => JSON.stringify(rng, (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? null : v));
const decodeRng = (text: string): Record<string, number[]> =>
  Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, (number | null)[]>).map(([k, s]) => [k, s.map((v) => (v === null ? NaN : v))]));

/**
 * Writes model, optimizer state and metadata to `path` atomically (a temporary file renamed
 * over it). Reads the GPU tensors back one by one as the file is written; await it before the
 * next training step.
 */
export async function saveCheckpoint(path: string, options: SaveCheckpointOptions): Promise<void> {
  const { model, epoch, step, args, classNames, rng, extra = {} } = options;
  const specs: TensorSpec[] = [];
  for (const [name, t] of model.namedState()) {
    if (name === PREFIX || name.startsWith(`${PREFIX}.`)) throw new CheckpointError(`saveCheckpoint: the model's '${name}' collides with the optimizer's prefix`);
    if (t.dtype === 'int32') {
      specs.push({ name, dtype: 'I64', shape: t.shape, data: async () => BigInt64Array.from(await t.toArray(), (v) => BigInt(v)) });
    } else {
      specs.push({ name, dtype: 'F32', shape: t.shape, data: async () => (await t.toArray()) as Float32Array });
    }
  }
  const metadata: Record<string, string> = { ...extra, format: 'pt', 'dawnet.format_version': String(CHECKPOINT_FORMAT_VERSION) };
  if (epoch !== undefined) metadata.epoch = String(epoch);
  if (step !== undefined) metadata.step = String(step);
  if (args !== undefined) metadata.args = JSON.stringify(args);
  if (classNames !== undefined) metadata.class_names = JSON.stringify(classNames);
  if (rng !== undefined) metadata.rng = encodeRng(rng);
  for (const [prefix, optimizer] of optimizerEntries(options.optimizer)) {
    const names = parameterNames(model, optimizer);
    const dict = await optimizer.stateDict();
    for (const [index, state] of dict.state) {
      const base = `${prefix}.state.${names[index]!}`;
      const shape = optimizer.parameters()[index]!.shape;
      if (state.step > 0) specs.push({ name: `${base}.step`, dtype: 'F32', shape: [], data: Float32Array.of(state.step) });
      for (const [slot, data] of state.tensors) specs.push({ name: `${base}.${slot}`, dtype: 'F32', shape, data });
    }
    metadata[prefix] = JSON.stringify({
      kind: dict.kind,
      groups: dict.groups.map((g) => ({ hyperparameters: g.hyperparameters, params: g.params.map((i) => names[i]) })),
    });
  }
  await writeSafetensors(path, specs, metadata);
}

function toHost(name: string, t: SafetensorsTensor, problems: string[]): { shape: number[]; data: Float32Array | Int32Array } {
  if (t.data instanceof Float32Array || t.data instanceof Int32Array) return { shape: t.shape, data: t.data };
  if (t.data instanceof Float64Array) return { shape: t.shape, data: Float32Array.from(t.data) };
  const out = new Int32Array(t.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = t.data[i]!;
    if (v > 2147483647n || v < -2147483648n) {
      problems.push(`  ${name}: the I64 value ${v} does not fit an int32 tensor`);
      break;
    }
    out[i] = Number(v);
  }
  return { shape: t.shape, data: out };
}

/** Rebuilds an optimizer state dict from the file's tensors and metadata, noting what does not fit. */
function optimizerState(
  prefix: string,
  optimizer: CheckpointOptimizer,
  names: string[],
  tensors: Map<string, SafetensorsTensor>,
  metadata: Record<string, string>,
  strict: boolean,
  problems: string[],
): OptimizerStateDict | null {
  const text = metadata[prefix];
  if (text === undefined) {
    problems.push(`  ${prefix}: the checkpoint holds no optimizer state`);
    return null;
  }
  const saved = JSON.parse(text) as { kind: string; groups: { hyperparameters: Record<string, number | boolean | number[]>; params: string[] }[] };
  const index = new Map(names.map((n, i) => [n, i]));
  const state = new Map<number, ParamState>();
  const head = `${prefix}.state.`;
  for (const [key, t] of tensors) {
    if (!key.startsWith(head)) continue;
    const rest = key.slice(head.length);
    const dot = rest.lastIndexOf('.');
    const [param, slot] = [rest.slice(0, dot), rest.slice(dot + 1)];
    const i = index.get(param);
    if (i === undefined) {
      if (strict) problems.push(`  ${key}: the optimizer has no parameter '${param}'`);
      continue;
    }
    const entry = state.get(i) ?? { step: 0, tensors: new Map<string, Float32Array>() };
    state.set(i, entry);
    if (slot === 'step') entry.step = Number(t.data[0] ?? 0);
    else if (t.data instanceof Float32Array) {
      if (t.shape.join() !== optimizer.parameters()[i]!.shape.join()) {
        problems.push(`  ${key}: checkpoint has [${t.shape.join(', ')}], the parameter has [${optimizer.parameters()[i]!.shape.join(', ')}]`);
      } else entry.tensors.set(slot, t.data);
    } else problems.push(`  ${key}: expected F32, found ${t.dtype}`);
  }
  const dict: OptimizerStateDict = {
    kind: saved.kind,
    groups: saved.groups.map((g) => ({ hyperparameters: g.hyperparameters, params: g.params.map((name) => index.get(name) ?? -1) })),
    state,
  };
  problems.push(...optimizer.checkStateDict(dict, (i) => names[i] ?? String(i)).map((p) => p.replace('  optimizer', `  ${prefix}`)));
  return dict;
}

/** How many mismatches a CheckpointError lists (a checkpoint of another model has hundreds). */
const LISTED_PROBLEMS = 8;

/** Metadata entries that hold JSON (besides the optimizers'); a damaged one stops a load before anything changes. */
const JSON_METADATA = new Set(['args', 'class_names', 'rng', 'best']);

function checkJsonMetadata(path: string, metadata: Record<string, string>): void {
  for (const [key, text] of Object.entries(metadata)) {
    if (!(JSON_METADATA.has(key) || key === PREFIX || key.startsWith(`${PREFIX}.`))) continue;
    try {
      JSON.parse(text);
    } catch (err) {
      throw new CheckpointError(`${path}: its metadata '${key}' is damaged (${err instanceof Error ? err.message : String(err)}); use another checkpoint of the run`);
    }
  }
}

/**
 * Reads a checkpoint — dawnet's safetensors, any safetensors state dict, or a torch.save .pth
 * (pth.ts; RotNet's `_feature_blocks.N` names mapped to the stages, rotnet-names.ts) — into a
 * model (and optimizers), after checking every name and shape: all
 * mismatches are listed in one CheckpointError and nothing is loaded. Returns the metadata, RNG
 * states included, for the caller to restore (Generator.setState).
 */
export async function loadCheckpoint(source: CheckpointSource, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const { model, strict = true, skip = [] } = options;
  const path = sourcePath(source);
  const { metadata, ...file } = await sourceContents(source);
  const tensors = renameFromRotNet(file.tensors, model);
  const versionText = metadata['dawnet.format_version'];
  const formatVersion = versionText === undefined ? null : Number(versionText);
  if (formatVersion !== null && !(formatVersion <= CHECKPOINT_FORMAT_VERSION)) {
    throw new CheckpointError(`${path}: checkpoint format version ${versionText} is newer than this dawnet's (${CHECKPOINT_FORMAT_VERSION})`);
  }
  checkJsonMetadata(path, metadata);
  const problems: string[] = [];
  const state: StateDict = new Map();
  for (const [name, t] of tensors) {
    if (name === PREFIX || name.startsWith(`${PREFIX}.`) || skip.some((p) => name.startsWith(p))) continue;
    state.set(name, toHost(name, t, problems));
  }
  let missing: string[] = [];
  let unexpected: string[] = [];
  if (model) {
    const check = model.checkStateDict(state, strict);
    problems.push(...check.problems);
    ({ missing, unexpected } = check);
  }
  const loads: [CheckpointOptimizer, OptimizerStateDict][] = [];
  for (const [prefix, optimizer] of optimizerEntries(options.optimizer)) {
    const dict = optimizerState(prefix, optimizer, parameterNames(model, optimizer), tensors, metadata, strict, problems);
    if (dict) loads.push([optimizer, dict]);
  }
  if (problems.length > 0) {
    const more = problems.length > LISTED_PROBLEMS ? [`  … and ${problems.length - LISTED_PROBLEMS} more`] : [];
    throw new CheckpointError(`${path} does not match (${problems.length} problem${problems.length > 1 ? 's' : ''}; nothing was loaded):\n${[...problems.slice(0, LISTED_PROBLEMS), ...more].join('\n')}`);
  }
  model?.loadStateDict(state, { strict });
  for (const [optimizer, dict] of loads) optimizer.loadStateDict(dict);
  const json = <T>(key: string): T | undefined => (metadata[key] === undefined ? undefined : (JSON.parse(metadata[key]) as T));
  return {
    formatVersion,
    epoch: metadata.epoch === undefined ? undefined : Number(metadata.epoch),
    step: metadata.step === undefined ? undefined : Number(metadata.step),
    args: json<Record<string, unknown>>('args'),
    classNames: json<string[]>('class_names'),
    rng: metadata.rng === undefined ? undefined : decodeRng(metadata.rng),
    missing,
    unexpected,
    metadata,
  };
}
