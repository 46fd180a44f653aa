// Creating tensors, as torch.tensor / zeros / ones / full / randn / rand / randint.
import { backend } from './runtime.js';
import { defaultGenerator, type Generator } from './random.js';
import { filled } from './ops/layout.js';
import { checkShape, numel, Tensor, type DType, type Shape } from './tensor.js';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

function finish(t: Tensor, options: CreateOptions): Tensor {
  return options.requiresGrad ? t.requiresGrad_() : t;
}

/** Flattens nested arrays, returning the data and its shape. */
function flattenNested(data: unknown): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const values = (data as unknown[]).flat(Infinity) as number[];
  if (values.length !== numel(shape)) throw new Error('tensor: nested arrays are ragged');
  return { values, shape };
}

/** A tensor from a typed array (with a shape) or nested arrays; uploads once. */
export function tensor(data: ArrayLike<number> | number[] | number[][] | number[][][] | number[][][][], shape?: Shape, options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  let values: ArrayLike<number>;
  let dims: number[];
  if (Array.isArray(data) && !shape) ({ values, shape: dims } = flattenNested(data));
  else {
    values = data as ArrayLike<number>;
    dims = checkShape(shape ?? [values.length], 'tensor');
  }
  if (values.length !== numel(dims)) throw new Error(`tensor: ${values.length} values do not fill shape [${dims.join(', ')}]`);
  const t = Tensor.empty(dims, dtype);
  const array = dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
  if (array.length > 0) backend().write(t.view, array);
  return finish(t, options);
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  return finish(filled(checkShape(shape, 'full'), value, options.dtype), options);
}
export const zeros = (shape: Shape, options: CreateOptions = {}): Tensor => full(shape, 0, options);
export const ones = (shape: Shape, options: CreateOptions = {}): Tensor => full(shape, 1, options);

/** Standard normal samples from the (seeded) generator. */
export function randn(shape: Shape, options: RandomOptions = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  const values = new Float32Array(numel(checkShape(shape, 'randn')));
  for (let i = 0; i < values.length; i++) values[i] = g.normal();
  return tensor(values, shape, { requiresGrad: options.requiresGrad });
}

/** Uniform samples in [0, 1). */
export function rand(shape: Shape, options: RandomOptions = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  const values = new Float32Array(numel(checkShape(shape, 'rand')));
  for (let i = 0; i < values.length; i++) values[i] = g.uniform();
  return tensor(values, shape, { requiresGrad: options.requiresGrad });
}

/** Integers in [low, high), int32. */
export function randint(low: number, high: number, shape: Shape, options: RandomOptions = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  const values = new Int32Array(numel(checkShape(shape, 'randint')));
  for (let i = 0; i < values.length; i++) values[i] = low + g.integer(high - low);
  return tensor(values, shape, { dtype: 'int32' });
}
