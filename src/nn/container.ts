// Structural layers: Sequential (children named '0', '1', … as torch.nn.Sequential, or by the
// names given), Flatten and Identity.
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Sequential extends Module {
  private readonly layers: Module[] = [];

  /** Children named by position, or by the keys of one record (as an OrderedDict). */
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super();
    const first = modules[0];
    const named: [string, Module][] =
      modules.length === 1 && first !== undefined && !(first instanceof Module)
        ? Object.entries(first)
        : (modules as Module[]).map((m, i) => [String(i), m]);
    for (const [name, m] of named) this.layers.push(this.registerModule(name, m));
  }

  get length(): number {
    return this.layers.length;
  }

  at(index: number): Module {
    const m = this.layers.at(index);
    if (!m) throw new RangeError(`Sequential: no layer ${index} (it has ${this.layers.length})`);
    return m;
  }

  override forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return F.flatten(x, this.startDim);
  }
}

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}
