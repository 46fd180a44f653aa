// Freezing a pretrained network up to a named stage, as fine-tuning and the RotNet evaluation
// protocol do: the stage's parameters (and those before it) are left out of the optimizer,
// their modules stay in eval mode (batch norm keeps its running statistics), and the forward
// pass runs them without recording gradients.
import { noGrad } from '../autograd/tape.js';
import type { FeatureNet } from '../nn/feature-net.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor.js';

export interface Frozen {
  /** The stage up to which (inclusive) the network is frozen; null when nothing is. */
  through: string | null;
  frozen: [string, Tensor][];
  trainable: [string, Tensor][];
  /** Modules all of whose parameters are frozen. */
  modules: Module[];
}

/**
 * Splits the parameters at `through`: a stage owns the parameters registered from its own name
 * (or, for ResNet's stem, the first registered) up to the next stage's, as every network of the
 * zoo registers its modules in stage order.
 */
export function freezeThrough(model: FeatureNet, through: string | null): Frozen {
  const named = model.namedParameters();
  if (!through) return { through: null, frozen: [], trainable: named, modules: [] };
  const stages = model.stageNames;
  const at = stages.indexOf(through);
  if (at < 0) throw new RangeError(`no stage named '${through}' (stages: ${stages.join(', ')})`);
  if (at === stages.length - 1) throw new RangeError(`'${through}' is the last stage: freezing it would leave nothing to train`);
  const later = stages.slice(at + 1);
  const firstLater = named.findIndex(([n]) => later.some((s) => n.startsWith(`${s}.`)));
  const cut = firstLater < 0 ? named.length : firstLater;
  const frozen = named.slice(0, cut);
  const trainable = named.slice(cut);
  const frozenNames = new Set(frozen.map(([n]) => n));
  const modules = model.namedModules().filter(([path, m]) => {
    if (path === '') return false;
    const own = m.namedParameters().map(([n]) => `${path}.${n}`);
    return own.length > 0 ? own.every((n) => frozenNames.has(n)) : frozen.some(([n]) => n.startsWith(`${path}.`));
  });
  for (const [, t] of frozen) t.requiresGrad_(false);
  return { through, frozen, trainable, modules: modules.map(([, m]) => m) };
}

/** Training mode for the model except its frozen modules. */
export function trainExceptFrozen(model: FeatureNet, f: Frozen): void {
  model.train();
  for (const m of f.modules) m.eval();
}

/** The logits: frozen stages without gradients, the rest recorded. */
export function forwardFrozen(model: FeatureNet, f: Frozen, x: Tensor): Tensor {
  if (!f.through) return model.forward(x);
  const through = f.through;
  const features = noGrad(() => model.features(x, [through])[through]!);
  return model.forwardFrom(through, features);
}
