// Convolution and batchnorm speed on ResNet-18's CIFAR layer shapes at batch 32 (3×3, stride 1,
// pad 1, C → C): conv2d forward, input gradient and weight gradient, each through its dedicated
// kernel, and training-mode BatchNorm2d forward + backward. On a CPU adapter each pass runs again
// with the GPU kernels (conv2d_gemm) forced, rows named `[gemm]`; the note names the kernel that ran.
//   npm run bench:conv [-- --quick] [-- --peers [tfjs|jax]] [-- --no-peers]   (npm run bench: every family)
import { F, ones, randn, scope, zeros, type Tensor } from '../src/index.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry, convKernelFor } from '../src/ops/conv.js';
import type { ConvOptions, ConvPass } from '../src/ops/conv-plan.js';
import { runIfMain, type Family, type Session } from './harness.js';

const BATCH = 32;
const LAYERS: [channels: number, side: number][] = [[64, 32], [128, 16], [256, 8], [512, 4]];

async function conv(session: Session, channels: number, side: number, options: ConvOptions = {}): Promise<void> {
  const shape = [BATCH, channels, side, side];
  const x = randn(shape).keep();
  const dy = randn(shape).keep();
  const w = randn([channels, channels, 3, 3]).keep();
  const g = conv2dGeometry(x.shape, w.shape, null, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
  const size = `${BATCH}x${channels}x${side}x${side}`;
  const passes: [ConvPass, () => Tensor][] = [
    ['forward', () => conv2dForward(x, w, null, g, options)],
    ['backward_input', () => conv2dBackwardInput(dy, w, g, null, options)],
    ['backward_weight', () => conv2dBackwardWeight(x, dy, g, options)],
  ];
  for (const [pass, run] of passes) {
    const forced = options.path ? ` [${options.path}]` : '';
    const spec = {
      name: `conv2d ${pass.replace('_', '-')} ${size}${forced}`,
      shape: `x ${size}, w ${channels}x${channels}x3x3`,
      flops: 2 * BATCH * channels * side * side * channels * 9,
      note: `kernel ${convKernelFor(pass, g, options)}`,
    };
    await session.gpu(spec, () => run().dispose(), 5);
  }
  for (const t of [x, dy, w]) t.dispose();
}

/** Training mode: batch statistics (and the running-statistic update), then dx, dγ, dβ. */
async function batchNorm(session: Session): Promise<void> {
  const [n, c, h] = [BATCH, 64, 32];
  const x = randn([n, c, h, h]).keep().requiresGrad_();
  const dy = randn([n, c, h, h]).keep();
  const gamma = ones([c]).keep().requiresGrad_();
  const beta = zeros([c]).keep().requiresGrad_();
  const runningMean = zeros([c]).keep();
  const runningVar = ones([c]).keep();
  const clearGrads = () => {
    for (const t of [x, gamma, beta]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  // The least traffic it can take: forward reads x and writes y, backward reads x and dy and writes dx.
  const spec = { name: `batchnorm train fwd+bwd ${n}x${c}x${h}x${h}`, shape: `x ${n}x${c}x${h}x${h}`, bytes: 5 * 4 * n * c * h * h };
  await session.gpu(spec, () => {
    clearGrads();
    scope(() => F.batchNorm(x, runningMean, runningVar, gamma, beta, true).backward(dy));
  }, 20);
  clearGrads();
  for (const t of [x, dy, gamma, beta, runningMean, runningVar]) t.dispose();
}

export const convBench: Family = {
  name: 'conv',
  async run(session) {
    for (const [channels, side] of LAYERS) await conv(session, channels, side);
    if (session.isSoftware) for (const [channels, side] of LAYERS) await conv(session, channels, side, { path: 'gemm' });
    await batchNorm(session);
  },
};

await runIfMain(import.meta.url, convBench);
