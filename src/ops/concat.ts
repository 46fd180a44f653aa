// Concatenation (kernels/concat.wgsl), as torch.cat: every part must match the others in all
// dimensions but `dim`. The gradient of each part is its slice of the output's gradient.
import { Tensor } from '../tensor.js';
import { groups1d, launch } from '../gpu/launch.js';
import type { Window } from '../gpu/windows.js';
import type { OpCase, OpDef, RefTensor } from './op.js';
import { aroundAxis } from './reference.js';

export interface CatAttrs {
  /** Non-negative dimension; the functional API normalises negative ones. */
  dim: number;
}

const WG = 64;
const E = 8;

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** The output shape, or an Error naming the first part that does not fit. */
export function catShape(shapes: readonly (readonly number[])[], dim: number): number[] {
  if (shapes.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  const first = shapes[0]!;
  if (dim < 0 || dim >= first.length) throw new Error(`cat: dim ${dim} is out of range for ${fmt(first)}`);
  let extent = 0;
  shapes.forEach((s, i) => {
    if (s.length !== first.length || s.some((d, k) => k !== dim && d !== first[k])) {
      throw new Error(`cat: tensor ${i} ${fmt(s)} does not match tensor 0 ${fmt(first)} outside dimension ${dim}`);
    }
    extent += s[dim]!;
  });
  return first.map((d, k) => (k === dim ? extent : d));
}

function launchPart(entry: 'concat_copy' | 'concat_slice', bindings: Record<string, Tensor>, outer: number, rows: number, total: number, offset: number): void {
  // Windows along outer: whole rows of both the part and the output.
  const split = { extent: outer, bindings: Object.keys(bindings), uniforms: (w: Window) => ({ outer: w.count }), groups: (n: number) => groups1d(n * Math.ceil(rows / E), WG) };
  launch('concat', entry, bindings, { outer, rows, total, offset }, split, { WG, E });
}

export function catForward(parts: readonly Tensor[], dim: number): Tensor {
  const shape = catShape(parts.map((p) => p.shape), dim);
  const out = Tensor.empty(shape);
  const [outer, , inner] = aroundAxis(shape, dim);
  let offset = 0;
  for (const part of parts) {
    const rows = part.shape[dim]! * inner;
    if (rows > 0 && outer > 0) launchPart('concat_copy', { out, part }, outer, rows, shape[dim]! * inner, offset);
    offset += rows;
  }
  return out;
}

export const concatOps = {
  cat: {
    kernels: ['concat.concat_copy', 'concat.concat_slice'],
    saves: [],
    forward: (parts, { dim }) => ({ out: catForward(parts, dim) }),
    backward({ grad, shapes, attrs: { dim }, needs }) {
      const [outer, , inner] = aroundAxis(grad.shape, dim);
      const total = grad.shape[dim]! * inner;
      let offset = 0;
      return shapes.map((shape, i) => {
        const rows = shape[dim]! * inner;
        const at = offset;
        offset += rows;
        if (!needs[i]) return null;
        const partOut = Tensor.empty(shape);
        if (rows > 0 && outer > 0) launchPart('concat_slice', { partOut, whole: grad }, outer, rows, total, at);
        return partOut;
      });
    },
    reference(parts, { dim }): RefTensor {
      const shape = catShape(parts.map((p) => p.shape), dim);
      const [outer, , inner] = aroundAxis(shape, dim);
      const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
      let offset = 0;
      for (const p of parts) {
        const rows = p.shape[dim]! * inner;
        for (let o = 0; o < outer; o++) for (let r = 0; r < rows; r++) data[o * shape[dim]! * inner + offset + r] = p.data[o * rows + r]!;
        offset += rows;
      }
      return { shape, data };
    },
    cases: [
      // channels, as DenseNet-style and U-Net skips concatenate feature maps
      { shapes: [[2, 3, 4, 5], [2, 1, 4, 5], [2, 6, 4, 5]], attrs: { dim: 1 } },
      { shapes: [[1, 17], [3, 17]], attrs: { dim: 0 } },
      { shapes: [[3, 2, 5], [3, 2, 1]], attrs: { dim: 2 } },
      { shapes: [[1]], attrs: { dim: 0 } },
    ] satisfies OpCase<CatAttrs>[],
    tolerance: { rtol: 0, atol: 0 },
    gradTolerance: { rtol: 1e-4, atol: 1e-6 },
  } satisfies OpDef<CatAttrs>,
};
