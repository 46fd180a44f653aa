// The model zoo against its references: parameter counts and state-dict names (torchvision's
// ResNets, RotNet's AlexNet, NIN and evaluation heads, the PyTorch DCGAN example), initialisation,
// output and feature shapes, one forward and backward pass that reaches every parameter,
// overfitting one tiny batch, and state-dict round trips. Inputs are a few pixels wide: lavapipe
// runs every kernel on the CPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultGenerator, F, Generator, memory, noGrad, optim, randn, scope, tensor, type Tensor } from '../src/index.js';
import { Conv2d, ConvTranspose2d } from '../src/nn/conv.js';
import type { Module, StateDict } from '../src/nn/module.js';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/normalization.js';
import { AdaptiveAvgPool2d, AdaptiveMaxPool2d } from '../src/nn/pooling.js';
import {
  AlexNet,
  ConvHead,
  DcganDiscriminator,
  DcganGenerator,
  GanClassifier,
  LinearProbe,
  MlpHead,
  NIN,
  resnet18,
  resnet34,
  resnet50,
} from '../models/index.js';

type Optimizer = { step(): void; zeroGrad(): void; dispose(): void };

const numParameters = (m: Module): number => m.parameters().reduce((n, p) => n + p.size, 0);
const labels = (values: number[]): Tensor => tensor(Int32Array.from(values), [values.length]).keep();
const input = (shape: number[], seed: number): Tensor => randn(shape, { generator: new Generator(seed) }).keep();
const shapesOf = (features: Record<string, Tensor>): Record<string, number[]> =>
  Object.fromEntries(Object.entries(features).map(([name, t]) => [name, [...t.shape]]));

function param(m: Module, name: string): Tensor {
  const t = new Map(m.namedState()).get(name);
  if (!t) throw new Error(`no state entry ${name}`);
  return t;
}

function child<T>(m: Module, name: string, kind: abstract new (...args: never[]) => T): T {
  const found = new Map(m.namedModules()).get(name);
  if (!(found instanceof kind)) throw new Error(`${name} is not a ${kind.name}`);
  return found;
}

async function moments(t: Tensor): Promise<{ mean: number; std: number; maxAbs: number }> {
  const a = await t.toArray();
  let sum = 0;
  let maxAbs = 0;
  for (const v of a) {
    sum += v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / a.length;
  let sq = 0;
  for (const v of a) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / a.length), maxAbs };
}

/** Every value of the tensor equals `value` exactly. */
async function allEqual(t: Tensor, value: number): Promise<boolean> {
  return (await t.toArray()).every((v) => v === value);
}

/** The first index where two arrays' bits differ, described; null when they are identical. */
function firstDifference(a: Float32Array | Int32Array, b: Float32Array | Int32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return `index ${i}: ${a[i]} and ${b[i]}`;
  return null;
}

/** The output of `run` without a tape, read back. */
async function outputOf(run: () => Tensor): Promise<Float32Array> {
  const y = noGrad(() => scope(run));
  const values = (await y.toArray()) as Float32Array;
  y.dispose();
  return values;
}

/** One forward and backward pass; each parameter's gradient (null when it got none), read back. */
async function gradients(model: Module, loss: () => Tensor): Promise<Map<string, Float32Array | null>> {
  model.zeroGrad();
  scope(() => loss().backward());
  const out = new Map<string, Float32Array | null>();
  for (const [name, p] of model.namedParameters()) out.set(name, p.grad ? ((await p.grad.toArray()) as Float32Array) : null);
  model.zeroGrad();
  return out;
}

/** Parameters (besides `except`) whose gradient is missing, not finite, or zero everywhere. */
function gradientProblems(grads: Map<string, Float32Array | null>, except: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const [name, g] of grads) {
    if (except.includes(name)) continue;
    if (!g) problems.push(`${name}: no gradient`);
    else if (!g.every(Number.isFinite)) problems.push(`${name}: not finite`);
    else if (g.every((v) => v === 0)) problems.push(`${name}: zero everywhere`);
  }
  return problems;
}

/**
 * Steps on one fixed batch until the loss is below 10 % of its first value, at most maxSteps
 * times; returns the losses seen, each before its step (in training mode, as they were computed).
 */
async function overfit(loss: () => Tensor, opt: Optimizer, maxSteps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < maxSteps; i++) {
    const l = scope(() => {
      const value = loss();
      value.backward();
      return value;
    });
    losses.push(await l.item());
    l.dispose();
    if (losses.at(-1)! < 0.1 * losses[0]!) break;
    opt.step();
    opt.zeroGrad();
  }
  opt.zeroGrad();
  opt.dispose();
  return losses;
}

function expectOverfit(losses: number[], minimumStart: number): void {
  expect(losses.every(Number.isFinite), losses.join(', ')).toBe(true);
  expect(losses[0]).toBeGreaterThan(minimumStart);
  expect(losses.at(-1)!, `losses ${losses.join(', ')}`).toBeLessThan(0.1 * losses[0]!);
}

/** Identical names, shapes, dtypes and bits. */
function expectSameState(got: StateDict, want: StateDict): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  const problems: string[] = [];
  for (const [name, w] of want) {
    const g = got.get(name)!;
    if (g.shape.join() !== w.shape.join()) problems.push(`${name}: shape [${g.shape}] vs [${w.shape}]`);
    else if (g.data.constructor !== w.data.constructor) problems.push(`${name}: ${g.data.constructor.name} vs ${w.data.constructor.name}`);
    else {
      const d = firstDifference(g.data, w.data);
      if (d) problems.push(`${name}: ${d}`);
    }
  }
  expect(problems).toEqual([]);
}

/**
 * Copies a trained model's state dict into a model built with another seed: afterwards both hold
 * the same arrays and give the same bits in eval mode (which reads the running statistics too);
 * before, their outputs differ.
 */
async function expectRoundTrip(trained: Module, fresh: Module, run: (m: Module) => Tensor): Promise<void> {
  trained.eval();
  fresh.eval();
  const want = await outputOf(() => run(trained));
  const before = await outputOf(() => run(fresh));
  expect(firstDifference(before, want)).not.toBeNull();
  const state = await trained.stateDict();
  fresh.loadStateDict(state);
  expectSameState(await fresh.stateDict(), state);
  expect(firstDifference(await outputOf(() => run(fresh)), want)).toBeNull();
  trained.train();
}

describe('ResNet, ImageNet stem, 1,000 classes: torchvision', () => {
  it("ResNet-18: 11,689,512 parameters, torchvision's state-dict names in order, initialisation, 32-px features", async () => {
    const g = new Generator(5);
    const globalState = defaultGenerator.getState();
    const m = resnet18({ generator: g });
    expect(defaultGenerator.getState(), 'building a seeded model drew from the default generator').toEqual(globalState);
    expect(numParameters(m)).toBe(11_689_512);
    // conv1 + bn1 (weight, bias, running_mean, running_var, num_batches_tracked); 8 blocks of
    // 2 convs and 2 BNs; 3 downsamples of a conv and a BN; fc weight and bias.
    const names = m.namedState().map(([name]) => name);
    expect(names).toHaveLength(6 + 8 * 12 + 3 * 6 + 2);
    expect(m.namedParameters()).toHaveLength(1 + 2 + 8 * 6 + 3 * 3 + 2);
    const order = ['conv1.weight', 'bn1.running_mean', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'fc.bias'].map((n) => names.indexOf(n));
    expect(order).not.toContain(-1);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(names.slice(0, 7)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight']);
    expect(names.at(-1)).toBe('fc.bias');
    expect(names).not.toContain('layer1.0.downsample.0.weight');
    expect(param(m, 'bn1.num_batches_tracked').dtype).toBe('int32');

    // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std √(2 / (out · k · k)). Here fan_in
    // is half of fan_out, so fan_in would give a std √2 larger; 295k samples pin the std to ~0.2 %.
    const big = await moments(param(m, 'layer3.0.conv1.weight'));
    expect(Math.abs(big.mean)).toBeLessThan(0.01 * big.std);
    expect(big.std / Math.sqrt(2 / (256 * 9))).toBeCloseTo(1, 1.5);
    const stem = await moments(param(m, 'conv1.weight'));
    expect(stem.std / Math.sqrt(2 / (64 * 49))).toBeCloseTo(1, 1);
    // Batch norms: weight 1, bias 0, running statistics 0 and 1.
    const bns = m.namedModules().filter(([, x]) => x instanceof BatchNorm2d);
    expect(bns).toHaveLength(1 + 8 * 2 + 3);
    for (const [name] of bns) {
      expect(await allEqual(param(m, `${name}.weight`), 1), name).toBe(true);
      expect(await allEqual(param(m, `${name}.bias`), 0), name).toBe(true);
      expect(await allEqual(param(m, `${name}.running_mean`), 0), name).toBe(true);
      expect(await allEqual(param(m, `${name}.running_var`), 1), name).toBe(true);
    }
    // fc keeps nn.Linear's default, U(±1/√512).
    const fc = await moments(param(m, 'fc.weight'));
    expect(fc.maxAbs).toBeLessThanOrEqual(1 / Math.sqrt(512));
    expect(fc.maxAbs).toBeGreaterThan(0.99 / Math.sqrt(512));

    // The smallest input that reaches layer4: 7×7/2 conv and 3×3/2 max-pool, then three stride-2 stages.
    const x = input([2, 3, 32, 32], 1);
    const shapes = noGrad(() => scope(() => shapesOf(m.features(x, ['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc']))));
    expect(shapes).toEqual({
      conv1: [2, 64, 8, 8],
      layer1: [2, 64, 8, 8],
      layer2: [2, 128, 4, 4],
      layer3: [2, 256, 2, 2],
      layer4: [2, 512, 1, 1],
      avgpool: [2, 512],
      fc: [2, 1000],
    });
    expect(m.stageNames).toEqual(['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc']);
    x.dispose();
    m.dispose();
  });

  it('ResNet-34: 21,797,672 parameters', () => {
    const m = resnet34({ generator: new Generator(6) });
    expect(numParameters(m)).toBe(21_797_672);
    // 16 basic blocks, downsamples in layer2…layer4.
    expect(m.namedState()).toHaveLength(6 + 16 * 12 + 3 * 6 + 2);
    m.dispose();
  });

  it('ResNet-50: 25,557,032 parameters; the bottleneck blocks pass forward and backward to every parameter', async () => {
    const m = resnet50({ generator: new Generator(7) });
    expect(numParameters(m)).toBe(25_557_032);
    // 16 bottlenecks of 3 convs and 3 BNs; every layer downsamples (layer1: 64 → 256 channels).
    const names = m.namedState().map(([name]) => name);
    expect(names).toHaveLength(6 + 16 * 18 + 4 * 6 + 2);
    expect(param(m, 'layer1.0.downsample.0.weight').shape).toEqual([256, 64, 1, 1]);
    expect(param(m, 'layer4.2.conv3.weight').shape).toEqual([2048, 512, 1, 1]);
    expect(param(m, 'fc.weight').shape).toEqual([1000, 2048]);
    // ResNet v1.5: the stride sits on the 3×3 convolution.
    expect(child(m, 'layer2.0.conv1', Conv2d).stride).toEqual([1, 1]);
    expect(child(m, 'layer2.0.conv2', Conv2d).stride).toEqual([2, 2]);

    const x = input([2, 3, 32, 32], 2);
    const y = labels([1, 999]);
    const grads = await gradients(m, () => F.crossEntropy(m.forward(x), y));
    expect(gradientProblems(grads)).toEqual([]);
    x.dispose();
    y.dispose();
    m.dispose();
  });
});

describe('ResNet-18, CIFAR stem, 8×8 images', () => {
  const make = (seed: number) => resnet18({ stem: 'cifar', numClasses: 10, generator: new Generator(seed) });
  let m: ReturnType<typeof make>;
  let x: Tensor;
  let y: Tensor;
  let trainingPasses = 0;
  beforeAll(() => {
    m = make(1);
    x = input([2, 3, 8, 8], 3);
    y = labels([3, 7]);
  });
  afterAll(() => {
    m.dispose();
    x.dispose();
    y.dispose();
  });
  const loss = () => {
    trainingPasses += 1;
    return F.crossEntropy(m.forward(x), y);
  };

  it('features: a 3×3 stride-1 stem without max-pool, then /2 per stage', () => {
    // torchvision's count with a 3×3 stem conv instead of 7×7, and fc (512 + 1) × 10 instead of × 1000.
    expect(numParameters(m)).toBe(11_689_512 - 64 * 3 * 49 + 64 * 3 * 9 - 513 * 990);
    const shapes = noGrad(() => scope(() => shapesOf(m.eval().features(x, ['conv1', 'layer2', 'layer4', 'avgpool', 'fc']))));
    m.train();
    expect(shapes).toEqual({ conv1: [2, 64, 8, 8], layer2: [2, 128, 4, 4], layer4: [2, 512, 1, 1], avgpool: [2, 512], fc: [2, 10] });
  });

  it('forward and backward give every parameter a finite, nonzero gradient', async () => {
    expect(gradientProblems(await gradients(m, loss))).toEqual([]);
  });

  it('overfits two images with Adam', async () => {
    expectOverfit(await overfit(loss, new optim.Adam(m.parameters(), { lr: 1e-3 }), 12), 1);
  });

  it('state dict round trip into a differently seeded model', async () => {
    const state = await m.stateDict();
    expect(state.get('bn1.num_batches_tracked')!.data).toEqual(Int32Array.of(trainingPasses));
    const fresh = make(2);
    await expectRoundTrip(m, fresh, (net) => net.forward(x));
    fresh.dispose();
  });
});

describe('AlexNet as RotNet builds it, 63×63 images (the smallest it takes)', () => {
  const make = (seed: number) => new AlexNet({ imageSize: 63, generator: new Generator(seed) });
  let m: AlexNet;
  let x: Tensor;
  let y: Tensor;
  beforeAll(() => {
    m = make(1);
    x = input([2, 3, 63, 63], 4);
    y = labels([0, 3]);
  });
  afterAll(() => {
    m.dispose();
    x.dispose();
    y.dispose();
  });
  const loss = () => F.crossEntropy(m.forward(x), y);

  it('parameters by hand: biased convs with batch norm, bias-free FC layers with batch norm, a biased classifier', () => {
    const conv = (cin: number, cout: number, k: number) => cin * cout * k * k + cout + 2 * cout;
    const features = conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3) + conv(256, 256, 3);
    // pool5 is 1×1 at 63 px (6×6 at 224): 256 features into the first FC layer.
    const fc = 256 * 4096 + 2 * 4096 + 4096 * 4096 + 2 * 4096;
    expect(numParameters(m)).toBe(features + fc + 4096 * 4 + 4);
    const names = m.namedState().map(([name]) => name);
    for (let i = 1; i <= 5; i++) expect(names).toEqual(expect.arrayContaining([`conv${i}.0.weight`, `conv${i}.0.bias`, `conv${i}.1.running_mean`]));
    expect(names).toEqual(expect.arrayContaining(['fc_block.1.weight', 'fc_block.2.running_var', 'fc_block.4.weight', 'fc_block.5.weight', 'classifier.0.weight', 'classifier.0.bias']));
    expect(names.filter((n) => n.startsWith('fc_block.') && n.endsWith('.bias'))).toEqual(['fc_block.2.bias', 'fc_block.5.bias']);
    expect(child(m, 'fc_block.2', BatchNorm1d).numFeatures).toBe(4096);
    expect(child(m, 'fc_block.5', BatchNorm1d).numFeatures).toBe(4096);
    expect(m.stageNames).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4', 'conv5', 'pool5', 'fc_block', 'classifier']);
  });

  it('refuses an image too small for pool5 before allocating anything', () => {
    const inUse = memory().bytesInUse;
    expect(() => new AlexNet({ imageSize: 62 })).toThrow(/at least 63 pixels/);
    expect(memory().bytesInUse).toBe(inUse);
  });

  it('initialisation: conv weights N(0, 2 / (k·k·out)), linear biases 0', async () => {
    const conv5 = await moments(param(m, 'conv5.0.weight'));
    expect(conv5.std / Math.sqrt(2 / (9 * 256))).toBeCloseTo(1, 1.5);
    const conv1 = await moments(param(m, 'conv1.0.weight'));
    expect(conv1.std / Math.sqrt(2 / (121 * 64))).toBeCloseTo(1, 1);
    expect(await allEqual(param(m, 'classifier.0.bias'), 0)).toBe(true);
  });

  it('features at every stage', () => {
    const shapes = noGrad(() => scope(() => shapesOf(m.features(x, m.stageNames))));
    expect(shapes).toEqual({
      conv1: [2, 64, 15, 15],
      pool1: [2, 64, 7, 7],
      conv2: [2, 192, 7, 7],
      pool2: [2, 192, 3, 3],
      conv3: [2, 384, 3, 3],
      conv4: [2, 256, 3, 3],
      conv5: [2, 256, 3, 3],
      pool5: [2, 256, 1, 1],
      fc_block: [2, 4096],
      classifier: [2, 4],
    });
  });

  it('forward and backward reach every parameter; batch norm cancels the conv biases', async () => {
    const grads = await gradients(m, loss);
    const convBiases = [1, 2, 3, 4, 5].map((i) => `conv${i}.0.bias`);
    expect(gradientProblems(grads, convBiases)).toEqual([]);
    // A per-channel shift before training-mode batch norm changes nothing: its gradient is 0 up
    // to rounding, far below that of the conv's weights.
    for (const name of convBiases) {
      const maxAbs = (a: Float32Array) => a.reduce((p, v) => Math.max(p, Math.abs(v)), 0);
      const weight = maxAbs(grads.get(name.replace('bias', 'weight'))!);
      expect(maxAbs(grads.get(name)!), name).toBeLessThan(1e-4 * weight);
    }
  });

  it('overfits two images with SGD and momentum', async () => {
    expectOverfit(await overfit(loss, new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 }), 10), 0.3);
  });

  it('state dict round trip into a differently seeded model', async () => {
    const fresh = make(2);
    await expectRoundTrip(m, fresh, (net) => net.forward(x));
    fresh.dispose();
  });
});

describe('Network-in-Network as RotNet builds it', () => {
  // Per stage: three conv-BN blocks (weights, BN weight and bias) of widths 192/160/96.
  const block = (cin: number, cout: number, k: number) => cin * cout * k * k + 2 * cout;
  const stage1 = block(3, 192, 5) + block(192, 160, 1) + block(160, 96, 1);
  const stage2 = block(96, 192, 5) + block(192, 192, 1) + block(192, 192, 1);
  const stageN = block(192, 192, 3) + 2 * block(192, 192, 1);
  const classifier = 192 * 4 + 4;

  it('3 to 5 stages: parameters by hand, names, and features at 16 px', () => {
    const x = input([2, 3, 16, 16], 5);
    const cases: [{ stages: number; useAvgOnConv3?: boolean }, Record<string, number[]>][] = [
      [{ stages: 3 }, { conv1: [2, 96, 8, 8], conv2: [2, 192, 4, 4], conv3: [2, 192, 4, 4], classifier: [2, 4] }],
      [{ stages: 4 }, { conv1: [2, 96, 8, 8], conv2: [2, 192, 4, 4], conv3: [2, 192, 2, 2], conv4: [2, 192, 2, 2], classifier: [2, 4] }],
      [{ stages: 4, useAvgOnConv3: false }, { conv1: [2, 96, 8, 8], conv2: [2, 192, 4, 4], conv3: [2, 192, 4, 4], conv4: [2, 192, 4, 4], classifier: [2, 4] }],
      [{ stages: 5 }, { conv1: [2, 96, 8, 8], conv2: [2, 192, 4, 4], conv3: [2, 192, 2, 2], conv4: [2, 192, 2, 2], conv5: [2, 192, 2, 2], classifier: [2, 4] }],
    ];
    for (const [options, expected] of cases) {
      const m = new NIN({ ...options, generator: new Generator(1) });
      expect(numParameters(m), JSON.stringify(options)).toBe(stage1 + stage2 + (options.stages - 2) * stageN + classifier);
      const names = m.namedState().map(([name]) => name);
      expect(names.slice(0, 6)).toEqual([
        'conv1.Block1_ConvB1.layers.Conv.weight',
        'conv1.Block1_ConvB1.layers.BatchNorm.weight',
        'conv1.Block1_ConvB1.layers.BatchNorm.bias',
        'conv1.Block1_ConvB1.layers.BatchNorm.running_mean',
        'conv1.Block1_ConvB1.layers.BatchNorm.running_var',
        'conv1.Block1_ConvB1.layers.BatchNorm.num_batches_tracked',
      ]);
      expect(names.slice(-2)).toEqual(['classifier.Classifier.weight', 'classifier.Classifier.bias']);
      expect(names).toContain(`conv${options.stages}.Block${options.stages}_ConvB3.layers.Conv.weight`);
      expect(names.filter((n) => n.endsWith('Conv.bias'))).toEqual([]);
      expect(m.stageNames).toEqual(Object.keys(expected));
      expect(noGrad(() => scope(() => shapesOf(m.features(x, m.stageNames))))).toEqual(expected);
      m.dispose();
    }
    x.dispose();
    expect(() => new NIN({ stages: 2 })).toThrow(/3, 4 or 5/);
    expect(() => new NIN({ stages: 6 })).toThrow(/3, 4 or 5/);
  });

  describe('NIN-4 on 16×16 images', () => {
    const make = (seed: number) => new NIN({ stages: 4, generator: new Generator(seed) });
    let m: NIN;
    let x: Tensor;
    let y: Tensor;
    beforeAll(() => {
      m = make(1);
      x = input([2, 3, 16, 16], 6);
      y = labels([1, 2]);
    });
    afterAll(() => {
      m.dispose();
      x.dispose();
      y.dispose();
    });
    const loss = () => F.crossEntropy(m.forward(x), y);

    it('initialisation: conv weights N(0, 2 / (k·k·out)), classifier bias 0', async () => {
      const conv = await moments(param(m, 'conv2.Block2_ConvB1.layers.Conv.weight'));
      expect(conv.std / Math.sqrt(2 / (25 * 192))).toBeCloseTo(1, 1.5);
      expect(await allEqual(param(m, 'classifier.Classifier.bias'), 0)).toBe(true);
    });

    it('forward and backward give every parameter a finite, nonzero gradient', async () => {
      expect(gradientProblems(await gradients(m, loss))).toEqual([]);
    });

    it("overfits two images with RotNet's SGD (lr 0.1, momentum 0.9)", async () => {
      expectOverfit(await overfit(loss, new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 }), 15), 0.3);
    });

    it('state dict round trip into a differently seeded model', async () => {
      const fresh = make(2);
      await expectRoundTrip(m, fresh, (net) => net.forward(x));
      fresh.dispose();
    });
  });
});

describe('DCGAN as the PyTorch example builds it', () => {
  // The example's weights_init: every conv N(0, 0.02²); batch-norm weights N(1, 0.02²), biases 0.
  async function expectDcganInit(m: Module): Promise<void> {
    for (const [name, layer] of m.namedModules()) {
      if (layer instanceof Conv2d || layer instanceof ConvTranspose2d) {
        const { mean, std } = await moments(layer.weight);
        // The smallest layer has 3,072 weights: its sample std is within ~1.3 % of 0.02.
        expect(std / 0.02, name).toBeCloseTo(1, 1);
        expect(Math.abs(mean), name).toBeLessThan(0.002);
      }
    }
    const bnWeights: number[] = [];
    for (const [name, layer] of m.namedModules()) {
      if (layer instanceof BatchNorm2d) {
        bnWeights.push(...(await layer.weight!.toArray()));
        expect(await allEqual(layer.bias!, 0), name).toBe(true);
      }
    }
    const mean = bnWeights.reduce((a, b) => a + b, 0) / bnWeights.length;
    const std = Math.sqrt(bnWeights.reduce((a, b) => a + (b - mean) ** 2, 0) / bnWeights.length);
    expect(Math.abs(mean - 1)).toBeLessThan(0.005);
    expect(std / 0.02).toBeCloseTo(1, 0.8);
  }

  it("64×64: the example's parameter counts, names and initialisation; a forward pass", async () => {
    const g = new Generator(1);
    const G = new DcganGenerator({ generator: g });
    const D = new DcganDiscriminator({ generator: g });
    // Transposed convs nz → 512 → 256 → 128 → 64 → 3 (4×4 kernels, no bias), BN after all but the last.
    expect(numParameters(G)).toBe(100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16 + 2 * (512 + 256 + 128 + 64));
    expect(numParameters(G)).toBe(3_576_704);
    // Convs 3 → 64 → 128 → 256 → 512 → 1, BN on the middle three.
    expect(numParameters(D)).toBe(3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16 + 2 * (128 + 256 + 512));
    expect(numParameters(D)).toBe(2_765_568);
    const bn = (i: number) => ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `main.${i}.${s}`);
    expect(D.namedState().map(([n]) => n)).toEqual(['main.0.weight', 'main.2.weight', ...bn(3), 'main.5.weight', ...bn(6), 'main.8.weight', ...bn(9), 'main.11.weight']);
    expect(G.namedState().map(([n]) => n)).toEqual(['main.0.weight', ...bn(1), 'main.3.weight', ...bn(4), 'main.6.weight', ...bn(7), 'main.9.weight', ...bn(10), 'main.12.weight']);
    await expectDcganInit(G);
    await expectDcganInit(D);

    const z = input([1, 100, 1, 1], 7);
    const image = await outputOf(() => G.forward(z));
    expect(image).toHaveLength(3 * 64 * 64);
    expect(image.every((v) => v >= -1 && v <= 1)).toBe(true);
    const [p, trunk] = noGrad(() =>
      scope(() => {
        const fake = G.forward(z);
        return [D.forward(fake), D.features(fake, ['trunk']).trunk!];
      }),
    );
    expect(p!.shape).toEqual([1]);
    expect(trunk!.shape).toEqual([1, 512, 4, 4]);
    const probability = await p!.item();
    expect(probability > 0 && probability < 1).toBe(true);
    p!.dispose();
    trunk!.dispose();
    const flat = input([1, 100], 8);
    expect(() => G.forward(flat)).toThrow(/expected noise \(N, 100, 1, 1\)/);
    for (const t of [flat, z, G, D]) t.dispose();
    const size: number = 48;
    expect(() => new DcganGenerator({ imageSize: size as 32 | 64 })).toThrow(/32 or 64/);
  });

  describe('32×32 variant', () => {
    const makeG = (seed: number) => new DcganGenerator({ imageSize: 32, generator: new Generator(seed) });
    const makeD = (seed: number) => new DcganDiscriminator({ imageSize: 32, generator: new Generator(seed) });
    let G: DcganGenerator;
    let D: DcganDiscriminator;
    let z: Tensor;
    let images: Tensor;
    let real: Tensor;
    beforeAll(() => {
      G = makeG(1);
      D = makeD(1);
      z = input([2, 100, 1, 1], 9);
      images = scope(() => F.tanh(randn([2, 3, 32, 32], { generator: new Generator(10) }))).keep();
      real = tensor([1, 0], [2]).keep();
    });
    afterAll(() => {
      for (const t of [G, D, z, images, real]) t.dispose();
    });
    const mse = () => F.mean(F.pow(F.sub(G.forward(z), images), 2));
    const bce = () => F.binaryCrossEntropy(D.forward(images), real);

    it('one layer fewer on each side: parameters by hand, output and trunk shapes', () => {
      expect(numParameters(G)).toBe(100 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16 + 2 * (256 + 128 + 64));
      expect(numParameters(D)).toBe(3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 16 + 2 * (128 + 256));
      expect(G.namedParameters().at(-1)![0]).toBe('main.9.weight');
      expect(D.namedParameters().at(-1)![0]).toBe('main.8.weight');
      expect(D.trunkChannels).toBe(256);
      const shapes = noGrad(() =>
        scope(() => {
          const fake = G.forward(z);
          return { fake: [...fake.shape], ...shapesOf(D.features(fake, ['trunk', 'head'])) };
        }),
      );
      expect(shapes).toEqual({ fake: [2, 3, 32, 32], trunk: [2, 256, 4, 4], head: [2] });
    });

    it('forward and backward give every parameter a finite, nonzero gradient', async () => {
      expect(gradientProblems(await gradients(G, mse))).toEqual([]);
      expect(gradientProblems(await gradients(D, bce))).toEqual([]);
    });

    it("the generator fits two images and the discriminator separates them, with the example's Adam", async () => {
      expectOverfit(await overfit(mse, new optim.Adam(G.parameters(), { lr: 5e-3, betas: [0.5, 0.999] }), 40), 0.2);
      expectOverfit(await overfit(bce, new optim.Adam(D.parameters(), { lr: 2e-4, betas: [0.5, 0.999] }), 10), 0.3);
    });

    it('state dict round trips into differently seeded models', async () => {
      const freshG = makeG(2);
      await expectRoundTrip(G, freshG, (net) => net.forward(z));
      freshG.dispose();
      const freshD = makeD(2);
      await expectRoundTrip(D, freshD, (net) => net.forward(images));
      freshD.dispose();
    });
  });

  describe("GanClassifier on a 32×32 discriminator's trunk", () => {
    const make = (seed: number) => {
      const g = new Generator(seed);
      return new GanClassifier(new DcganDiscriminator({ imageSize: 32, generator: g }), 10, { generator: g });
    };
    let m: GanClassifier;
    let x: Tensor;
    let y: Tensor;
    beforeAll(() => {
      m = make(1);
      x = input([2, 3, 32, 32], 11);
      y = labels([4, 9]);
    });
    afterAll(() => {
      m.dispose();
      x.dispose();
      y.dispose();
    });
    const loss = () => F.crossEntropy(m.forward(x), y);

    it('the discriminator and a Linear on its 256×4×4 trunk', () => {
      expect(numParameters(m)).toBe(numParameters(m.discriminator) + 256 * 16 * 10 + 10);
      expect(m.stageNames).toEqual(['trunk', 'fc']);
      expect(m.namedParameters().map(([n]) => n).slice(-3)).toEqual(['discriminator.main.8.weight', 'fc.weight', 'fc.bias']);
      expect(noGrad(() => scope(() => shapesOf(m.features(x, ['trunk', 'fc']))))).toEqual({ trunk: [2, 256, 4, 4], fc: [2, 10] });
    });

    it("forward and backward reach every parameter but the discriminator's own last conv", async () => {
      const grads = await gradients(m, loss);
      expect(gradientProblems(grads, ['discriminator.main.8.weight'])).toEqual([]);
      expect(grads.get('discriminator.main.8.weight')).toBeNull();
    });

    it('overfits two images with Adam', async () => {
      expectOverfit(await overfit(loss, new optim.Adam(m.parameters(), { lr: 2e-4, betas: [0.5, 0.999] }), 10), 1);
    });

    it('state dict round trip into a differently seeded model', async () => {
      const fresh = make(2);
      await expectRoundTrip(m, fresh, (net) => net.forward(x));
      fresh.dispose();
    });
  });
});

describe("RotNet's evaluation heads on frozen features", () => {
  it('parameters by hand and layout', () => {
    const probe = new LinearProbe([192, 4, 4], 10, { poolSize: 2 });
    // Pooling, batch norm without affine parameters (running statistics only), Linear.
    expect(numParameters(probe)).toBe(192 * 4 * 10 + 10);
    expect(probe.namedState().map(([n]) => n)).toEqual(['layers.1.running_mean', 'layers.1.running_var', 'layers.1.num_batches_tracked', 'layers.3.weight', 'layers.3.bias']);
    // The reference's LinearClassifier pools by max unless told otherwise.
    expect(child(probe, 'layers.0', AdaptiveMaxPool2d).outputSize).toBe(2);
    const avg = new LinearProbe([192, 4, 4], 10, { poolSize: 2, poolType: 'avg' });
    expect(child(avg, 'layers.0', AdaptiveAvgPool2d).outputSize).toBe(2);
    const fcProbe = new LinearProbe([64], 10);
    expect(numParameters(fcProbe)).toBe(64 * 10 + 10);
    // The reference's MultLayer classifier: hidden width min(20 · classes, 2048), bias-free
    // Linear-BN-ReLU twice, then a biased Linear.
    const mlp = (inputs: number, hidden: number, classes: number) => inputs * hidden + 2 * hidden + hidden * hidden + 2 * hidden + hidden * classes + classes;
    const mlp10 = new MlpHead([192, 2, 2], 10);
    expect(numParameters(mlp10)).toBe(mlp(768, 200, 10));
    const mlp4 = new MlpHead([64], 4);
    expect(numParameters(mlp4)).toBe(mlp(64, 80, 4));
    const mlp1000 = new MlpHead([8], 1000, { hidden: 16 });
    expect(numParameters(mlp1000)).toBe(mlp(8, 16, 1000));
    // NIN_ConvBlock3: a 3×3 and two 1×1 conv-BN blocks of width 192, global pooling, Linear.
    const conv = new ConvHead([96, 2, 2], 10);
    expect(numParameters(conv)).toBe(96 * 192 * 9 + 2 * 192 * 192 + 3 * 2 * 192 + 192 * 10 + 10);
    expect(conv.namedParameters()[0]![0]).toBe('block.ConvB1.layers.Conv.weight');
    expect(() => new ConvHead([64], 10)).toThrow(/conv features/);
    for (const head of [probe, avg, fcProbe, mlp10, mlp4, mlp1000, conv]) head.dispose();
  });

  const features = [4, 96, 4, 4];
  const heads: [string, (seed: number) => Module, number[]][] = [
    ['LinearProbe on conv features', (seed) => new LinearProbe(features.slice(1), 10, { poolSize: 2, generator: new Generator(seed) }), features],
    ['LinearProbe on FC features', (seed) => new LinearProbe([64], 10, { generator: new Generator(seed) }), [4, 64]],
    ['MlpHead', (seed) => new MlpHead(features.slice(1), 10, { generator: new Generator(seed) }), features],
    ['ConvHead', (seed) => new ConvHead(features.slice(1), 10, { generator: new Generator(seed) }), features],
  ];
  for (const [name, make, shape] of heads) {
    it(`${name}: gradients reach every parameter, it overfits four samples, its state dict round-trips`, async () => {
      const head = make(1);
      const x = input(shape, 12);
      const y = labels([1, 2, 5, 9]);
      const loss = () => F.crossEntropy(head.forward(x), y);
      expect(noGrad(() => scope(() => [...head.forward(x).shape]))).toEqual([4, 10]);
      expect(gradientProblems(await gradients(head, loss))).toEqual([]);
      expectOverfit(await overfit(loss, new optim.Adam(head.parameters(), { lr: 1e-2 }), 20), 1);
      const fresh = make(2);
      await expectRoundTrip(head, fresh, (net) => net.forward(x));
      for (const t of [head, fresh, x, y]) t.dispose();
    });
  }
});
