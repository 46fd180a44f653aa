// Parameter initialisation as torch.nn.init, drawn on the host from dawnet's seeded generator
// and uploaded once, so a seed fixes a model's starting weights on every device.
import { tensor } from '../creation.js';
import { backend } from '../runtime.js';
import { defaultGenerator, type Generator } from '../random.js';
import { numel, type Tensor } from '../tensor.js';

export interface InitOptions {
  generator?: Generator;
}

/** torch.nn.init._calculate_fan_in_and_fan_out: dim 1 and dim 0 times the receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`init: fan in and fan out need at least 2 dimensions, got [${shape.join(', ')}]`);
  const receptive = numel(shape.slice(2));
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

function fill(shape: readonly number[], draw: () => number): Tensor {
  const values = new Float32Array(numel(shape));
  for (let i = 0; i < values.length; i++) values[i] = draw();
  return tensor(values, shape);
}

/** U(low, high). */
export function uniform(shape: readonly number[], low: number, high: number, { generator = defaultGenerator }: InitOptions = {}): Tensor {
  return fill(shape, () => low + (high - low) * generator.uniform());
}

/** N(mean, std²). */
export function normal(shape: readonly number[], mean: number, std: number, { generator = defaultGenerator }: InitOptions = {}): Tensor {
  return fill(shape, () => mean + std * generator.normal());
}

export function constant(shape: readonly number[], value: number): Tensor {
  return fill(shape, () => value);
}

/**
 * torch.nn.init.kaiming_normal_(mode, nonlinearity='relu'): N(0, 2 / fan). torchvision's ResNet
 * uses mode 'fan_out' for every convolution.
 */
export function kaimingNormal(shape: readonly number[], mode: 'fan_in' | 'fan_out', options: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = fans(shape);
  return normal(shape, 0, Math.sqrt(2 / (mode === 'fan_in' ? fanIn : fanOut)), options);
}

/**
 * PyTorch's default for Linear and Conv weights, kaiming_uniform_(a = √5): the bound
 * gain · √(3 / fan_in) with gain = √(2 / (1 + a²)) is 1 / √fan_in. Biases draw from the same
 * U(−1/√fan_in, 1/√fan_in), with fan_in taken from the weight.
 */
export function defaultWeight(shape: readonly number[], options: InitOptions = {}): Tensor {
  const bound = 1 / Math.sqrt(fans(shape).fanIn);
  return uniform(shape, -bound, bound, options);
}

export function defaultBias(weightShape: readonly number[], length: number, options: InitOptions = {}): Tensor {
  const { fanIn } = fans(weightShape);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform([length], -bound, bound, options);
}

/** Overwrites a parameter in place with a freshly drawn value (then frees the value). */
export function assign(param: Tensor, value: Tensor): void {
  if (param.shape.join() !== value.shape.join()) {
    throw new Error(`init.assign: value [${value.shape.join(', ')}] does not fit parameter [${param.shape.join(', ')}]`);
  }
  backend().copy(value.view, param.view, param.view.size);
  value.dispose();
}
