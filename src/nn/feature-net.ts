// A network as a chain of named stages, so that evaluation protocols can read the activations
// of any stage (`features(x, ['conv2', 'layer3'])`) as the RotNet protocol does.
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export type Stage = (x: Tensor) => Tensor;

export class FeatureNet extends Module {
  private readonly stages: [string, Stage][] = [];

  /** Appends a stage; the constructor of a network declares them in order. */
  protected stage(name: string, fn: Stage): void {
    this.stages.push([name, fn]);
  }

  /** The stage names, in order: the names features() accepts. */
  get stageNames(): string[] {
    return this.stages.map(([name]) => name);
  }

  override forward(x: Tensor): Tensor {
    let y = x;
    for (const [, fn] of this.stages) y = fn(y);
    return y;
  }

  /** Runs stage `name` alone on x, the output of the stage before it. */
  runStage(name: string, x: Tensor): Tensor {
    const found = this.stages.find(([n]) => n === name);
    if (!found) throw new Error(`${this.constructor.name}: no stage named ${name} (stages: ${this.stageNames.join(', ')})`);
    return found[1](x);
  }

  /** Runs the stages after `name` on x, the output of stage `name` (a second head on shared features). */
  forwardFrom(name: string, x: Tensor): Tensor {
    const i = this.stageNames.indexOf(name);
    if (i < 0) throw new Error(`${this.constructor.name}: no stage named ${name} (stages: ${this.stageNames.join(', ')})`);
    let y = x;
    for (const [, fn] of this.stages.slice(i + 1)) y = fn(y);
    return y;
  }

  /** The outputs of the named stages, running the network only as far as the last of them. */
  features(x: Tensor, names: readonly string[]): Record<string, Tensor> {
    const order = this.stageNames;
    const unknown = names.filter((n) => !order.includes(n));
    if (unknown.length > 0) throw new Error(`${this.constructor.name}: no stage named ${unknown.join(', ')} (stages: ${order.join(', ')})`);
    const last = Math.max(...names.map((n) => order.indexOf(n)));
    const out: Record<string, Tensor> = {};
    let y = x;
    for (const [i, [name, fn]] of this.stages.entries()) {
      if (i > last) break;
      y = fn(y);
      if (names.includes(name)) out[name] = y;
    }
    return out;
  }
}
