// The loss family (kernels/losses.wgsl): crossEntropy with integer labels, binary cross-entropy
// on probabilities and on logits, mean squared error, all with PyTorch's default mean reduction;
// and top-k accuracy.
import { Tensor } from '../tensor.js';
import { backend } from '../runtime.js';
import type { Backend } from '../gpu/backend.js';
import { filled } from './layout.js';
import { groups1d, launch, type Split } from '../gpu/launch.js';
import type { OpDef, RefTensor } from './op.js';
import { SUM_KERNELS, sumAxis } from './reduce.js';

const WG = 64;

export interface NoAttrs {}
export interface TopKAttrs { k: number }

/** Cuts a loss dispatch along its rows (samples); `perRow` invocations each. The scalar dout is bound whole. */
function byRows(rows: number, perRow: number, bindings: string[]): Split {
  return { extent: rows, bindings, uniforms: (w) => ({ rows: w.count }), groups: (n) => groups1d(n * perRow, WG) };
}

function checkLogitsAndLabels(op: string, logits: Tensor, labels: Tensor): [number, number] {
  if (logits.ndim !== 2) throw new Error(`${op}: logits must be (N, C), got [${logits.shape.join(', ')}]`);
  if (labels.dtype !== 'int32' || labels.ndim !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new Error(`${op}: labels must be int32 of shape [${logits.shape[0]}], got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  flagBadLabels(labels, logits.shape[0]!, logits.shape[1]!);
  return [logits.shape[0]!, logits.shape[1]!];
}

/** A label outside [0, C) given to crossEntropy or topkAccuracy (PyTorch's IndexError). */
export class LabelError extends RangeError {}

/**
 * Per device (data-parallel training holds several): [bad labels seen, one of them], counted on
 * the GPU by label_check; `unread` when labels were checked since the last checkLabels, so a
 * report with several meters reads it back once.
 */
const labelFlags = new Map<Backend, { tensor: Tensor; unread: boolean }>();

/** What flagBadLabels launches: the check, and the fill that makes its flag on first use. */
const LABEL_CHECK_KERNELS = ['losses.label_check', 'fill.fill'] as const;

function flagBadLabels(labels: Tensor, rows: number, classes: number): void {
  const device = backend();
  let flag = labelFlags.get(device);
  if (!flag) labelFlags.set(device, (flag = { tensor: filled([2], 0, 'int32').keep(), unread: false }));
  flag.unread = true;
  launch('losses', 'label_check', { label: labels, label_error: flag.tensor }, { rows, classes, k: 0, logits: 0, scale: 1 }, groups1d(rows, WG));
}

/**
 * Throws LabelError when a label outside [0, C) reached crossEntropy or topkAccuracy since the
 * last call, on any device: one small readback, made where a loop reads its losses anyway.
 */
export async function checkLabels(): Promise<void> {
  for (const [device, flag] of labelFlags) {
    if (!device.alive) labelFlags.delete(device);
    if (!flag.unread || !device.alive) continue;
    flag.unread = false;
    const [count, example] = (await flag.tensor.toArray()) as Int32Array;
    if (!count) continue;
    flag.tensor.dispose();
    labelFlags.delete(device);
    throw new LabelError(`${count} label(s) outside [0, number of classes) reached crossEntropy or topkAccuracy (e.g. ${example}); labels must be class indices, as in PyTorch`);
  }
}

function meanOf(terms: Tensor): Tensor {
  const mean = sumAxis(terms, 0, 1 / terms.size);
  terms.dispose();
  return mean;
}

const refLogSumExp = (row: ArrayLike<number>): number => {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let total = 0;
  for (let i = 0; i < row.length; i++) total += Math.exp(row[i]! - m);
  return m + Math.log(total);
};

const scalar = (v: number): RefTensor => ({ shape: [], data: Float64Array.of(v) });

function bceOp(logits: boolean): OpDef<NoAttrs> {
  const flag = logits ? 1 : 0;
  const name = logits ? 'binaryCrossEntropyWithLogits' : 'binaryCrossEntropy';
  return {
    kernels: ['losses.bce_forward', 'losses.bce_backward', 'losses.bce_backward_target', ...SUM_KERNELS],
    saves: ['in0', 'in1'],
    inputs: [logits ? 'real' : 'probability', 'probability'],
    forward([x, target]) {
      if (x!.shape.join() !== target!.shape.join()) {
        throw new Error(`${name}: input [${x!.shape.join(', ')}] and target [${target!.shape.join(', ')}] differ in shape`);
      }
      const loss = Tensor.empty([x!.size]);
      launch('losses', 'bce_forward', { loss, x: x!, targets: target! }, { rows: x!.size, classes: 1, k: 0, logits: flag, scale: 1 }, byRows(x!.size, 1, ['loss', 'x', 'targets']));
      return { out: meanOf(loss) };
    },
    backward({ grad, saved, needs }) {
      const [x, target] = saved;
      const params = { rows: x!.size, classes: 1, k: 0, logits: flag, scale: 1 / x!.size };
      return (['bce_backward', 'bce_backward_target'] as const).map((entry, i) => {
        if (!needs[i]) return null;
        const d = Tensor.empty(x!.shape);
        const bindings: Record<string, Tensor> = { dx: d, dout: grad, x: x! };
        if (i === 0) bindings.targets = target!;
        launch('losses', entry, bindings, params, byRows(x!.size, 1, Object.keys(bindings).filter((b) => b !== 'dout')));
        return d;
      });
    },
    reference([x, t]) {
      let total = 0;
      for (let i = 0; i < x!.data.length; i++) {
        const v = x!.data[i]!;
        const y = t!.data[i]!;
        total += logits
          ? Math.max(v, 0) - v * y + Math.log1p(Math.exp(-Math.abs(v)))
          : -(y * Math.max(Math.log(v), -100) + (1 - y) * Math.max(Math.log(1 - v), -100));
      }
      return scalar(total / x!.data.length);
    },
    cases: [
      { shapes: [[1], [1]], attrs: {} },
      { shapes: [[3, 17], [3, 17]], attrs: {} },
      { shapes: [[130], [130]], attrs: {} },
    ],
    tolerance: { rtol: 1e-5, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-5 },
  };
}

export const lossOps = {
  crossEntropy: {
    kernels: ['losses.cross_entropy_forward', 'losses.cross_entropy_backward', ...LABEL_CHECK_KERNELS, ...SUM_KERNELS],
    saves: ['in0', 'in1', 'extra0'],
    inputs: ['real', { labels: 0 }],
    forward([logits, labels]) {
      const [rows, classes] = checkLogitsAndLabels('crossEntropy', logits!, labels!);
      const loss = Tensor.empty([rows]);
      const lse = Tensor.empty([rows]);
      launch('losses', 'cross_entropy_forward', { loss, lse, x: logits!, label: labels! }, { rows, classes, k: 0, logits: 1, scale: 1 }, byRows(rows, 1, ['loss', 'lse', 'x', 'label']));
      return { out: meanOf(loss), extras: [lse] };
    },
    backward({ grad, saved }) {
      const [logits, labels, lse] = saved;
      const [rows, classes] = [logits!.shape[0]!, logits!.shape[1]!];
      const dx = Tensor.empty(logits!.shape);
      const params = { rows, classes, k: 0, logits: 1, scale: 1 / rows };
      launch('losses', 'cross_entropy_backward', { dx, dout: grad, x: logits!, label: labels!, lse_in: lse! }, params, byRows(rows, classes, ['dx', 'x', 'label', 'lse_in']));
      return [dx, null];
    },
    reference([x, labels]) {
      const [rows, classes] = [x!.shape[0]!, x!.shape[1]!];
      let total = 0;
      for (let n = 0; n < rows; n++) {
        const row = x!.data.subarray(n * classes, (n + 1) * classes);
        total += refLogSumExp(row) - row[labels!.data[n]!]!;
      }
      return scalar(total / rows);
    },
    cases: [
      { shapes: [[1, 1], [1]], attrs: {} },
      { shapes: [[1, 3], [1]], attrs: {} },
      { shapes: [[5, 17], [5]], attrs: {} },
      { shapes: [[3, 130], [3]], attrs: {} },
    ],
    tolerance: { rtol: 1e-5, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-5 },
  } satisfies OpDef<NoAttrs>,
  binaryCrossEntropy: bceOp(false),
  binaryCrossEntropyWithLogits: bceOp(true),
  mseLoss: {
    kernels: ['losses.mse_forward', 'losses.mse_backward', ...SUM_KERNELS],
    saves: ['in0', 'in1'],
    forward([x, target]) {
      if (x!.shape.join() !== target!.shape.join()) throw new Error(`mseLoss: input [${x!.shape.join(', ')}] and target [${target!.shape.join(', ')}] differ in shape`);
      const loss = Tensor.empty([x!.size]);
      launch('losses', 'mse_forward', { loss, x: x!, targets: target! }, { rows: x!.size, classes: 1, k: 0, logits: 0, scale: 1 }, byRows(x!.size, 1, ['loss', 'x', 'targets']));
      return { out: meanOf(loss) };
    },
    backward({ grad, saved, needs }) {
      const [x, target] = saved;
      return [0, 1].map((which) => {
        if (!needs[which]) return null;
        const d = Tensor.empty(x!.shape);
        const params = { rows: x!.size, classes: 1, k: 0, logits: which, scale: 1 / x!.size };
        launch('losses', 'mse_backward', { dx: d, dout: grad, x: x!, targets: target! }, params, byRows(x!.size, 1, ['dx', 'x', 'targets']));
        return d;
      });
    },
    reference([x, t]) {
      let total = 0;
      for (let i = 0; i < x!.data.length; i++) total += (x!.data[i]! - t!.data[i]!) ** 2;
      return scalar(total / x!.data.length);
    },
    cases: [
      { shapes: [[1], [1]], attrs: {} },
      { shapes: [[3, 17], [3, 17]], attrs: {} },
      { shapes: [[2, 65], [2, 65]], attrs: {} },
    ],
    tolerance: { rtol: 1e-5, atol: 1e-6 },
    gradTolerance: { rtol: 1e-3, atol: 1e-5 },
  } satisfies OpDef<NoAttrs>,
  topkAccuracy: {
    kernels: ['losses.topk_correct', ...LABEL_CHECK_KERNELS, ...SUM_KERNELS],
    saves: [],
    inputs: ['real', { labels: 0 }],
    forward([logits, labels], { k }) {
      const [rows, classes] = checkLogitsAndLabels('topkAccuracy', logits!, labels!);
      const hits = Tensor.empty([rows]);
      launch('losses', 'topk_correct', { loss: hits, x: logits!, label: labels! }, { rows, classes, k, logits: 1, scale: 1 }, byRows(rows, 1, ['loss', 'x', 'label']));
      return { out: meanOf(hits) };
    },
    backward: 'none',
    reference([x, labels], { k }) {
      const [rows, classes] = [x!.shape[0]!, x!.shape[1]!];
      let hits = 0;
      for (let n = 0; n < rows; n++) {
        const score = x!.data[n * classes + labels!.data[n]!]!;
        let above = 0;
        for (let c = 0; c < classes; c++) if (x!.data[n * classes + c]! > score) above++;
        if (above < k) hits++;
      }
      return scalar(hits / rows);
    },
    cases: [
      { shapes: [[1, 3], [1]], attrs: { k: 1 } },
      { shapes: [[17, 10], [17]], attrs: { k: 1 } },
      { shapes: [[17, 10], [17]], attrs: { k: 5 } },
    ],
    tolerance: { rtol: 0, atol: 1e-6 },
    gradTolerance: 'none',
  } satisfies OpDef<TopKAttrs>,
};
