// Reverse-mode autograd. Each differentiable op applied to a tensor that requires a gradient
// records a Node holding what its backward rule needs. backward() walks the nodes from the
// output in reverse topological order, accumulates into leaves' .grad, and releases the graph.
import type { Tensor } from '../tensor.js';
import { track, untrack } from '../scope.js';

export type BackwardFn = (grad: Tensor, saved: readonly Tensor[], needs: readonly boolean[]) => (Tensor | null)[];

let gradEnabled = true;

/** Whether ops record to the tape (false inside noGrad). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording any op, like `with torch.no_grad()`. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    const result = fn();
    if (result instanceof Promise) {
      throw new Error('noGrad: pass a synchronous function (await outside it)');
    }
    return result;
  } finally {
    gradEnabled = previous;
  }
}

export class Node {
  private savedTensors: Tensor[];
  private released = false;

  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    saved: readonly Tensor[],
    private readonly rule: BackwardFn,
  ) {
    // Saved tensors are views owned by the node, so a user disposing the originals is harmless.
    this.savedTensors = saved.map((t) => {
      const view = t.alias();
      untrack(view);
      return view;
    });
    track(this);
  }

  run(grad: Tensor): (Tensor | null)[] {
    if (this.released) {
      throw new Error(
        `backward through '${this.op}', whose graph was already released: call backward() once, inside the scope that ran the forward pass`,
      );
    }
    const needs = this.inputs.map((t) => t.requiresGrad);
    return noGrad(() => this.rule(grad, this.savedTensors, needs));
  }

  /** Frees the saved tensors; also called when the enclosing scope ends. */
  dispose(): void {
    for (const t of this.savedTensors) t.dispose();
    this.savedTensors = [];
    this.released = true;
    untrack(this);
  }
}

/** Records `op` as the producer of `output` when gradients are on and an input needs one. */
export function record(op: string, output: Tensor, inputs: readonly Tensor[], saved: readonly Tensor[], rule: BackwardFn): void {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return;
  output.requiresGrad = true;
  output.node = new Node(op, inputs, saved, rule);
}

/** Gradient accumulation: the out-of-place sum, so no kernel reads and writes one buffer. */
type Adder = (a: Tensor, b: Tensor) => Tensor;
type Filler = (shape: readonly number[], value: number) => Tensor;
let add: Adder | null = null;
let full: Filler | null = null;

/** Wired by the op table at start-up, so the tape does not import the ops it differentiates. */
export function setGradientPrimitives(adder: Adder, filler: Filler): void {
  add = adder;
  full = filler;
}

export function backward(output: Tensor, seed?: Tensor): void {
  if (!output.requiresGrad) throw new Error('backward: the tensor does not require grad (no input had requiresGrad set)');
  if (!seed && output.size !== 1) {
    throw new Error(`backward: gradient can only be implied for a one-element output, got shape [${output.shape.join(', ')}]`);
  }
  if (seed && seed.size !== output.size) {
    throw new Error(`backward: gradient shape [${seed.shape.join(', ')}] does not match output [${output.shape.join(', ')}]`);
  }
  if (!output.node) {
    noGrad(() => accumulateLeaf(output, seed ? seed.alias(output.shape) : full!(output.shape, 1)));
    return;
  }
  const order = topologicalOrder(output);
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    grads.set(output, seed ? seed.alias(output.shape) : full!(output.shape, 1));
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i]!;
      const produced = nodeOutputs.get(node)!;
      const grad = grads.get(produced);
      if (!grad) continue;
      grads.delete(produced);
      const inputGrads = node.run(grad);
      grad.dispose();
      node.inputs.forEach((input, k) => {
        const g = inputGrads[k];
        if (!g || !input.requiresGrad) {
          g?.dispose();
          return;
        }
        if (g.size !== input.size) {
          throw new Error(`backward of '${node.op}': gradient for input ${k} has shape [${g.shape.join(', ')}], expected [${input.shape.join(', ')}]`);
        }
        const shaped = g.shape.join() === input.shape.join() ? g : reshapeOwned(g, input.shape);
        if (!input.node) accumulateLeaf(input, shaped);
        else {
          const prior = grads.get(input);
          if (prior) {
            grads.set(input, add!(prior, shaped));
            prior.dispose();
            shaped.dispose();
          } else grads.set(input, shaped);
        }
      });
    }
  });
  for (const g of grads.values()) g.dispose();
  for (const node of order) node.dispose();
}

function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  const view = t.alias(shape);
  t.dispose();
  return view;
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.grad && !leaf.grad.isDisposed) {
    const sum = add!(leaf.grad, g);
    leaf.grad.dispose();
    g.dispose();
    leaf.grad = sum.keep();
  } else {
    leaf.grad = g.keep();
  }
}

/** Which tensor each node produced; a WeakMap so the node holds no strong edge to its output. */
const nodeOutputs = new WeakMap<Node, Tensor>();

function topologicalOrder(output: Tensor): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // Iterative DFS: deep networks would overflow a recursive one.
  const stack: [Tensor, boolean][] = [[output, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    const node = t.node;
    if (!node) continue;
    if (expanded) {
      order.push(node);
      continue;
    }
    if (seen.has(node)) continue;
    seen.add(node);
    nodeOutputs.set(node, t);
    stack.push([t, true]);
    for (const input of node.inputs) if (input.node && !seen.has(input.node)) stack.push([input, false]);
  }
  return order;
}
