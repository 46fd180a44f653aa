// The workloads dawnet's benchmarks compare against, written once per peer engine
// (TensorFlow.js WebGPU, jax-js) in that engine's own idiom and layout: tfjs in NHWC with HWIO
// filters, jax-js in NCHW with OIHW kernels like dawnet. FLOPs do not depend on the layout.
// Each builder makes its inputs outside the timed region; `run()` does the work once and returns
// only when the GPU has finished it (no large readback is timed).
import './webgpu-globals.js';
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  blockUntilReady, defaultDevice, getWebGPUDevice, init as initJax, jit, lax, nn, numpy as np, tree, valueAndGrad, vjp,
  type Array as JaxArray,
} from '@jax-js/jax';
import type { Engine, Peers, Prepared, Workload } from './index.js';
import { peerAdapterName } from './webgpu-globals.js';

export { peerAdapterName };

/** Opens the engine's WebGPU device (again: a no-op) and returns the adapter it actually runs on. */
export async function startEngine(engine: Engine): Promise<string> {
  if (engine === 'tfjs') {
    tf.enableProdMode();
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not start');
    return describeAdapter(tfjsBackend().device.adapterInfo);
  }
  const devices = await initJax('webgpu');
  if (!devices.includes('webgpu')) throw new Error('jax-js: the webgpu device did not start');
  defaultDevice('webgpu');
  return describeAdapter(getWebGPUDevice().adapterInfo);
}

function describeAdapter(info: GPUAdapterInfo): string {
  return info.description || info.device || info.vendor || 'unknown adapter';
}

function tfjsBackend(): WebGPUBackend {
  const backend = tf.backend();
  if (!(backend instanceof WebGPUBackend)) throw new Error(`tfjs runs on ${tf.getBackend()}, not webgpu`);
  return backend;
}

/**
 * Waits for all the work tfjs has recorded. It batches dispatches into an open compute pass, so
 * close and submit that first, as its own readback does (getBufferData), then wait for the queue:
 * what dawnet's benchmarks wait for too, and no readback.
 */
async function tfjsDone(): Promise<void> {
  const backend = tfjsBackend();
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
  await backend.device.queue.onSubmittedWorkDone();
}

/**
 * jax-js is lazy: blockUntilReady dispatches what each array still needs and waits for the GPU
 * (it maps a zero-byte read after the work). Every result must be waited on, or its work would
 * be left for the next iteration.
 */
async function jaxDone(result: unknown): Promise<void> {
  await blockUntilReady(result);
  tree.dispose(result);
}

/** Deterministic uniform values in [-bound, bound] (mulberry32): the same stream for every engine. */
function uniform(count: number, bound: number, seed: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * bound;
  }
  return out;
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const tfRandom = (shape: number[], seed: number, bound = 1): tf.Tensor => tf.tensor(uniform(size(shape), bound, seed), shape);
const jaxRandom = (shape: number[], seed: number, bound = 1): JaxArray => np.array(uniform(size(shape), bound, seed), { shape });

// ---------------------------------------------------------------------------------------------
// matmul: C = A·B, all N×N.

function matmul(n: number, iterations: number): Workload {
  return {
    name: `matmul ${n}`,
    flops: 2 * n ** 3,
    iterations,
    build: {
      tfjs: () => {
        const a = tfRandom([n, n], 1), b = tfRandom([n, n], 2);
        return {
          run: async () => {
            const c = tf.matMul(a, b);
            await tfjsDone();
            c.dispose();
          },
          dispose: () => tf.dispose([a, b]),
        };
      },
      jax: () => {
        const a = jaxRandom([n, n], 1), b = jaxRandom([n, n], 2);
        return {
          run: () => jaxDone(np.matmul(a.ref, b.ref)),
          dispose: () => tree.dispose([a, b]),
        };
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// conv2d 3×3, stride 1, pad 1, C→C channels: forward y = conv(x, w), backward-input dx from
// (dy, w), backward-weight dw from (x, dy). tfjs's backward ops are the kernels its Conv2D
// gradient dispatches (conv2DBackpropInput through the public conv2dTranspose, and
// Conv2DBackpropFilter by kernel name, as it has no public op); jax-js's are the transposed convs
// its autodiff emits, obtained from vjp with the forward pass done once outside the timing.

type ConvPass = 'forward' | 'backward-input' | 'backward-weight';
const CONV_PAD: [number, number][] = [[1, 1], [1, 1]];

function conv2d(pass: ConvPass, batch: number, channels: number, side: number, iterations: number): Workload {
  const [n, c, h] = [batch, channels, side];
  const nhwc = [n, h, h, c], hwio = [3, 3, c, c];
  const nchw = [n, c, h, h], oihw = [c, c, 3, 3];
  const wBound = Math.sqrt(6 / (9 * c));
  return {
    name: `conv2d ${pass} ${n}x${c}x${h}x${h}`,
    flops: 2 * n * c * h * h * c * 9,
    iterations,
    build: {
      tfjs: () => {
        const x = tfRandom(nhwc, 3) as tf.Tensor4D, w = tfRandom(hwio, 4, wBound) as tf.Tensor4D;
        const dy = tfRandom(nhwc, 5) as tf.Tensor4D;
        const op = (): tf.Tensor => {
          if (pass === 'forward') return tf.conv2d(x, w, 1, 1);
          if (pass === 'backward-input') return tf.conv2dTranspose(dy, w, [n, h, h, c], 1, 1);
          return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
            { strides: [1, 1], pad: 1, dataFormat: 'NHWC', filterShape: hwio }) as tf.Tensor;
        };
        return {
          run: async () => {
            const out = op();
            await tfjsDone();
            out.dispose();
          },
          dispose: () => tf.dispose([x, w, dy]),
        };
      },
      jax: () => {
        const x = jaxRandom(nchw, 3), w = jaxRandom(oihw, 4, wBound), dy = jaxRandom(nchw, 5);
        const conv = (a: JaxArray, b: JaxArray): JaxArray => lax.convGeneralDilated(a, b, [1, 1], CONV_PAD);
        if (pass === 'forward') {
          return {
            run: () => jaxDone(conv(x.ref, w.ref)),
            dispose: () => tree.dispose([x, w, dy]),
          };
        }
        const [y, backward] = pass === 'backward-input'
          ? vjp((a: JaxArray) => conv(a, w.ref), [x.ref])
          : vjp((b: JaxArray) => conv(x.ref, b), [w.ref]);
        y.dispose();
        return {
          run: () => jaxDone(backward(dy.ref)),
          dispose: () => {
            backward.dispose();
            tree.dispose([x, w, dy]);
          },
        };
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// BatchNorm2d in training mode: y = (x - mean) / sqrt(var + eps) · gamma + beta with the batch's
// biased mean and variance (torch.nn.functional.batch_norm, training=True), then dx, dgamma,
// dbeta from dy. Running statistics are not updated by either peer.

const BN_EPS = 1e-5;

function batchNormTrain(n: number, c: number, h: number, iterations: number): Workload {
  return {
    name: `batchnorm train fwd+bwd ${n}x${c}x${h}x${h}`,
    iterations,
    build: {
      tfjs: () => {
        const x = tfRandom([n, h, h, c], 6), dy = tfRandom([n, h, h, c], 7);
        const gamma = tf.ones([c]), beta = tf.zeros([c]);
        const forwardBackward = tf.grads((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tfBatchNorm(xs, g, b));
        return {
          run: async () => {
            const grads = forwardBackward([x, gamma, beta], dy);
            await tfjsDone();
            tf.dispose(grads);
          },
          dispose: () => tf.dispose([x, dy, gamma, beta]),
        };
      },
      jax: () => {
        const x = jaxRandom([n, c, h, h], 6), dy = jaxRandom([n, c, h, h], 7);
        const gamma = np.ones([c]), beta = np.zeros([c]);
        const forwardBackward = jit((xs: JaxArray, g: JaxArray, b: JaxArray, dys: JaxArray) => {
          const [y, backward] = vjp(jaxBatchNorm, [xs, g, b]);
          const grads = backward(dys);
          backward.dispose();
          return [y, ...grads];
        });
        return {
          run: () => jaxDone(forwardBackward(x.ref, gamma.ref, beta.ref, dy.ref)),
          dispose: () => {
            forwardBackward.dispose();
            tree.dispose([x, dy, gamma, beta]);
          },
        };
      },
    },
  };
}

/** Training-mode batch norm over N, H, W of an NHWC tensor, as tfjs's layers do it. */
function tfBatchNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm(x, mean, variance, beta, gamma, BN_EPS);
}

/** Training-mode batch norm over N, H, W of an NCHW array (consumes its arguments). */
function jaxBatchNorm(x: JaxArray, gamma: JaxArray, beta: JaxArray): JaxArray {
  const c = x.shape[1]!;
  return nn.standardize(x, [0, 2, 3], { epsilon: BN_EPS }).mul(gamma.reshape([1, c, 1, 1])).add(beta.reshape([1, c, 1, 1]));
}

// ---------------------------------------------------------------------------------------------
// One training step of ResNet-18 for CIFAR (He et al. 2016, with the usual CIFAR stem: a 3×3
// stride-1 conv and no max-pool; torchvision's BasicBlock with 1×1 stride-2 downsampling convs),
// 32 px, 10 classes: forward, mean softmax cross-entropy, backward, and plain SGD
// (p -= lr · grad) on all 62 parameters. Convolutions have no bias, as they feed batch norms.

interface ConvSpec { cin: number; cout: number; k: number; stride: number }
interface BlockSpec { conv1: ConvSpec; conv2: ConvSpec; down: ConvSpec | null }

const RESNET18 = (() => {
  const blocks: BlockSpec[] = [];
  let cin = 64;
  for (const [cout, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]] as const) {
    for (let b = 0; b < 2; b++) {
      const s = b === 0 ? stride : 1;
      blocks.push({
        conv1: { cin, cout, k: 3, stride: s },
        conv2: { cin: cout, cout, k: 3, stride: 1 },
        down: s !== 1 || cin !== cout ? { cin, cout, k: 1, stride: s } : null,
      });
      cin = cout;
    }
  }
  return { stem: { cin: 3, cout: 64, k: 3, stride: 1 } satisfies ConvSpec, blocks, features: 512, classes: 10 };
})();

const SGD_LR = 0.01;
/** PyTorch's padding = k // 2 (1 for 3×3 convs, 0 for the 1×1 downsampling ones). */
const samePad = (spec: ConvSpec): number => (spec.k - 1) / 2;

function resnet18TrainStep(batch: number, iterations: number, gpuOnly = false): Workload {
  const images = uniform(batch * 3 * 32 * 32, 1, 8);
  const onehot = new Float32Array(batch * RESNET18.classes);
  for (let i = 0; i < batch; i++) onehot[i * RESNET18.classes + (i % RESNET18.classes)] = 1;
  return {
    name: `train step resnet18 cifar batch ${batch}`,
    images: batch,
    iterations,
    gpuOnly,
    build: { tfjs: () => tfjsResNet(batch, images, onehot), jax: () => jaxResNet(batch, images, onehot) },
  };
}

type TfConvBn = { w: tf.Variable; gamma: tf.Variable; beta: tf.Variable };

function tfjsResNet(batch: number, images: Float32Array<ArrayBuffer>, onehot: Float32Array<ArrayBuffer>): Prepared {
  let seed = 100;
  // tf.variable shares its initial value's buffer; tidy drops the initial tensor's own reference.
  const variable = (init: () => tf.Tensor): tf.Variable => tf.tidy(() => tf.variable(init()));
  const convBn = (spec: ConvSpec): TfConvBn => ({
    w: variable(() => tfRandom([spec.k, spec.k, spec.cin, spec.cout], seed++, Math.sqrt(6 / (spec.k * spec.k * spec.cin)))),
    gamma: variable(() => tf.ones([spec.cout])),
    beta: variable(() => tf.zeros([spec.cout])),
  });
  const stem = convBn(RESNET18.stem);
  const blocks = RESNET18.blocks.map((b) => ({ conv1: convBn(b.conv1), conv2: convBn(b.conv2), down: b.down && convBn(b.down) }));
  const fcW = variable(() => tfRandom([RESNET18.features, RESNET18.classes], seed++, Math.sqrt(1 / RESNET18.features)));
  const fcB = variable(() => tf.zeros([RESNET18.classes]));
  const variables = [stem, ...blocks.flatMap((b) => (b.down ? [b.conv1, b.conv2, b.down] : [b.conv1, b.conv2]))]
    .flatMap((p) => [p.w, p.gamma, p.beta]).concat([fcW, fcB]);

  // NCHW images → tfjs's NHWC.
  const x = tf.tidy(() => tf.tensor(images, [batch, 3, 32, 32]).transpose([0, 2, 3, 1])) as tf.Tensor4D;
  const labels = tf.tensor(onehot, [batch, RESNET18.classes]);
  const applyConvBn = (p: TfConvBn, spec: ConvSpec, input: tf.Tensor4D, relu: boolean): tf.Tensor4D => {
    const y = tfBatchNorm(tf.conv2d(input, p.w as tf.Tensor4D, spec.stride, samePad(spec)), p.gamma, p.beta) as tf.Tensor4D;
    return relu ? tf.relu(y) : y;
  };
  const loss = (): tf.Scalar => {
    let h = applyConvBn(stem, RESNET18.stem, x, true);
    RESNET18.blocks.forEach((spec, i) => {
      const p = blocks[i]!;
      const shortcut = p.down && spec.down ? applyConvBn(p.down, spec.down, h, false) : h;
      const y = applyConvBn(p.conv2, spec.conv2, applyConvBn(p.conv1, spec.conv1, h, true), false);
      h = tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
    });
    const logits = tf.add(tf.matMul(tf.mean(h, [1, 2]), fcW), fcB);
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  };
  const optimizer = tf.train.sgd(SGD_LR);
  return {
    run: async () => {
      const cost = optimizer.minimize(loss, true, variables);
      await tfjsDone();
      cost?.dispose();
    },
    dispose: () => {
      optimizer.dispose();
      tf.dispose([x, labels, ...variables]);
    },
  };
}

type JaxConvBn = { w: JaxArray; gamma: JaxArray; beta: JaxArray };
/** Per block: [conv1, conv2] or [conv1, conv2, downsample]. */
type JaxResNetParams = { stem: JaxConvBn; blocks: JaxConvBn[][]; fc: { w: JaxArray; b: JaxArray } };

function jaxResNet(batch: number, images: Float32Array<ArrayBuffer>, onehot: Float32Array<ArrayBuffer>): Prepared {
  let seed = 100;
  const convBn = (spec: ConvSpec): JaxConvBn => ({
    w: jaxRandom([spec.cout, spec.cin, spec.k, spec.k], seed++, Math.sqrt(6 / (spec.k * spec.k * spec.cin))),
    gamma: np.ones([spec.cout]),
    beta: np.zeros([spec.cout]),
  });
  let params: JaxResNetParams = {
    stem: convBn(RESNET18.stem),
    blocks: RESNET18.blocks.map((b) => (b.down ? [convBn(b.conv1), convBn(b.conv2), convBn(b.down)] : [convBn(b.conv1), convBn(b.conv2)])),
    fc: {
      w: jaxRandom([RESNET18.features, RESNET18.classes], seed++, Math.sqrt(1 / RESNET18.features)),
      b: np.zeros([RESNET18.classes]),
    },
  };
  const x = np.array(images, { shape: [batch, 3, 32, 32] });
  const labels = np.array(onehot, { shape: [batch, RESNET18.classes] });

  // jax-js owns arrays by reference count: every use consumes one reference, hence the `.ref`s.
  const applyConvBn = (p: JaxConvBn, spec: ConvSpec, input: JaxArray, relu: boolean): JaxArray => {
    const pad = samePad(spec);
    const y = jaxBatchNorm(lax.convGeneralDilated(input, p.w, [spec.stride, spec.stride], [[pad, pad], [pad, pad]]), p.gamma, p.beta);
    return relu ? nn.relu(y) : y;
  };
  const loss = (p: JaxResNetParams, xs: JaxArray, ys: JaxArray): JaxArray => {
    let h = applyConvBn(p.stem, RESNET18.stem, xs, true);
    RESNET18.blocks.forEach((spec, i) => {
      const [conv1, conv2, down] = p.blocks[i]!;
      const shortcut = down && spec.down ? applyConvBn(down, spec.down, h.ref, false) : h.ref;
      const y = applyConvBn(conv2!, spec.conv2, applyConvBn(conv1!, spec.conv1, h, true), false);
      h = nn.relu(y.add(shortcut));
    });
    const logits = np.matmul(np.mean(h, [2, 3]), p.fc.w).add(p.fc.b);
    return np.mean(np.sum(nn.logSoftmax(logits, -1).mul(ys), -1)).mul(-1);
  };
  const trainStep = jit((p: JaxResNetParams, xs: JaxArray, ys: JaxArray): [JaxArray, JaxResNetParams] => {
    const [value, grads] = valueAndGrad(loss)(tree.ref(p), xs, ys);
    const next = tree.map((w: JaxArray, g: JaxArray) => w.sub(g.mul(SGD_LR)), p, grads as JaxResNetParams);
    return [value, next];
  });
  return {
    run: async () => {
      const [value, next] = trainStep(params, x.ref, labels.ref);
      params = next;
      await blockUntilReady(params);
      await jaxDone(value);
    },
    dispose: () => {
      trainStep.dispose();
      tree.dispose([params, x, labels]);
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** ResNet-18's CIFAR 3×3 conv shapes (C×H×W); each costs the same FLOPs. */
const CONV_SHAPES: [channels: number, side: number][] = [[64, 32], [128, 16], [256, 8], [512, 4]];

export const workloads: Workload[] = [
  matmul(512, 10),
  matmul(1024, 5),
  matmul(2048, 3),
  ...(['forward', 'backward-input', 'backward-weight'] as const).flatMap((pass) =>
    CONV_SHAPES.map(([c, h]) => conv2d(pass, 32, c, h, 3))),
  batchNormTrain(32, 64, 32, 5),
  resnet18TrainStep(8, 3),
  resnet18TrainStep(128, 10, true),
];

// index.ts loads this module untyped (so that dawnet builds without the peers): keep it to its shape.
({ workloads, startEngine, peerAdapterName }) satisfies Peers;
