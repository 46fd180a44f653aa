// The reference RotNet code (FeatureLearningRotNet, architectures/NetworkInNetwork.py and
// AlexNet.py) keeps a network's stages in one ModuleList, so its checkpoints name tensors
// `_feature_blocks.<i>.<rest>`; dawnet's NIN and AlexNet register the same stages by name
// (`conv1.Block1_ConvB1.layers.Conv.weight`, `fc_block.1.weight`). Stage i of the reference is
// dawnet's i-th stage, so the map is a renaming of the first component, both ways.

export const ROTNET_PREFIX = '_feature_blocks.';

/** `_feature_blocks.<i>.<rest>` → `<stageNames[i]>.<rest>`; an error names a block the network lacks. */
export function fromRotNetName(name: string, stageNames: readonly string[]): string {
  if (!name.startsWith(ROTNET_PREFIX)) return name;
  const rest = name.slice(ROTNET_PREFIX.length);
  const dot = rest.indexOf('.');
  const stage = stageNames[Number(rest.slice(0, dot))];
  if (dot < 0 || stage === undefined) throw new Error(`${name}: the network has no feature block ${rest.slice(0, dot)} (its stages: ${stageNames.join(', ')})`);
  return `${stage}${rest.slice(dot)}`;
}

/** `<stage>.<rest>` → `_feature_blocks.<i>.<rest>`, to write a checkpoint the reference code loads. */
export function toRotNetName(name: string, stageNames: readonly string[]): string {
  const dot = name.indexOf('.');
  const i = stageNames.indexOf(name.slice(0, dot));
  if (i < 0) throw new Error(`${name}: not under one of the stages ${stageNames.join(', ')}`);
  return `${ROTNET_PREFIX}${i}${name.slice(dot)}`;
}

/**
 * The tensors of a file written by the reference RotNet code under dawnet's names, when `model`
 * is a staged network (NIN, AlexNet) and every name starts with `_feature_blocks.`; otherwise
 * the map itself.
 */
export function renameFromRotNet<T>(tensors: Map<string, T>, model: object | undefined): Map<string, T> {
  const stageNames = model && 'stageNames' in model ? (model.stageNames as string[]) : null;
  if (!stageNames || tensors.size === 0 || ![...tensors.keys()].every((k) => k.startsWith(ROTNET_PREFIX))) return tensors;
  return new Map([...tensors].map(([k, v]) => [fromRotNetName(k, stageNames), v]));
}
