// A pretrained network cut after one stage, with a head on that stage's features: what
// fine-tuning trains once train:probe has trained the head on the frozen features (the two-stage
// recipe of the RotNet-vs-VAE study). Parameter names are the trunk's (conv1.…) and head.…, so
// the trunk loads from the pretrained checkpoint and the head from the probe's.
import { FeatureNet } from '../src/nn/feature-net.js';
import type { Module } from '../src/nn/module.js';

export class HeadedNet extends FeatureNet {
  constructor(trunk: FeatureNet, readonly block: string, readonly head: Module) {
    super();
    const stages = trunk.stageNames;
    const at = stages.indexOf(block);
    if (at < 0) throw new RangeError(`no stage named '${block}' (stages: ${stages.join(', ')})`);
    // The stages after the block are never run: their modules are released, not carried.
    const later = new Set(stages.slice(at + 1));
    for (const [name, m] of trunk.namedChildren()) {
      if (later.has(name)) m.dispose();
      else this.registerModule(name, m);
    }
    for (const s of stages.slice(0, at + 1)) this.stage(s, (x) => trunk.runStage(s, x));
    this.registerModule('head', head);
    this.stage('head', (x) => head.forward(x));
  }
}
