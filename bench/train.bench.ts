// Whole training steps (forward, cross-entropy, backward, plain SGD) on random images, in images/s
// and GFLOP/s: ResNet-18 with the CIFAR stem at 32 px, RotNet's NIN-4 at 32 px and RotNet's
// AlexNet (224 px where its fc6 weight fits the device's storage binding, else 128 px); batch 8,
// and 128 as well on a GPU. Then RotNet's default step (NIN-4, 128 images × 4 rotations of
// 1 × 28 × 28: activations past lavapipe's 128 MiB binding, so bound in windows) with its peak
// memory, and the cost of windows: NIN-4 at batch 128 whole, then under a 32 MiB ceiling.
//   npm run bench:train [-- --quick] [-- --no-peers]   (npm run bench: every family)
import { backend, F, memory, noGrad, optim, randn, scope, tensor } from '../src/index.js';
import { formatBytes } from '../src/gpu/pool.js';
import { Conv2d } from '../src/nn/conv.js';
import { Linear } from '../src/nn/linear.js';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/tensor.js';
import { AlexNet, NIN, resnet18 } from '../models/index.js';
import { DataParallel } from '../src/train/data-parallel.js';
import { asLoss } from '../src/train/trainer.js';
import { runIfMain, type Family, type Session } from './harness.js';

/** The peers' and PyTorch's step too: p -= lr · grad, no momentum. */
const LR = 0.01;
const FLOPS_NOTE = 'FLOPs: 3 × the forward multiply-adds of the convolutions and linear layers';

/**
 * FLOPs of one training step, counted the usual way: 3 × the forward FLOPs of the convolutions and
 * linear layers (the forward pass, the input gradient, the weight gradient), 2 per multiply-add.
 * Each such layer's forward is wrapped for one untimed pass to read its output size.
 */
function trainingFlops(model: Module, x: Tensor): number {
  let forward = 0;
  const layers = model.namedModules().map(([, m]) => m).filter((m): m is Conv2d | Linear => m instanceof Conv2d || m instanceof Linear);
  const originals = layers.map((m) => m.forward);
  layers.forEach((m, i) => {
    // Output elements × the multiply-adds behind each: in/groups · kH · kW for a conv, in for a linear.
    const perOutput = m.weight.size / m.weight.shape[0]!;
    m.forward = (input: Tensor) => {
      const y = originals[i]!.call(m, input);
      forward += 2 * y.size * perOutput;
      return y;
    };
  });
  model.eval();
  scope(() => noGrad(() => model.forward(x)));
  model.train();
  layers.forEach((m, i) => (m.forward = originals[i]!));
  return 3 * forward;
}

async function trainStep(session: Session, name: string, model: Module, side: number, classes: number, batch: number, channels = 3, note?: () => string): Promise<void> {
  if (!session.wants(name)) {
    model.dispose();
    return;
  }
  const x = randn([batch, channels, side, side]).keep();
  const labels = tensor(Int32Array.from({ length: batch }, (_, i) => i % classes), [batch]).keep();
  const flops = trainingFlops(model, x);
  const opt = new optim.SGD(model.parameters(), { lr: LR });
  const step = (): void => {
    scope(() => F.crossEntropy(model.forward(x), labels).backward());
    opt.step();
    opt.zeroGrad();
  };
  let extra = '';
  if (note) {
    // One untimed step for the peak memory (and the pipeline compiles).
    backend().resetPeak();
    step();
    await backend().sync();
    extra = `; peak ${formatBytes(memory().peakBytesInUse)}; ${note()}`;
  }
  const spec = { name, shape: `${batch}x${channels}x${side}x${side} → ${classes} classes`, flops, images: batch, note: `plain SGD, lr ${LR}; ${FLOPS_NOTE}${extra}` };
  await session.gpu(spec, step, session.isSoftware ? 3 : 10);
  opt.dispose();
  model.dispose();
  x.dispose();
  labels.dispose();
}

/** RotNet trains AlexNet at 224 px; its fc6 weight (4096 × 256·6·6 floats) must fit one storage binding. */
function alexNetSide(): number {
  return 4 * 4096 * 256 * 6 * 6 <= backend().limits.maxStorageBufferBindingSize ? 224 : 128;
}

/** Binding windows in whole steps: RotNet's default step, and one step whole vs under a lowered ceiling. */
async function windowedSteps(session: Session): Promise<void> {
  const gpu = backend();
  const nin = () => new NIN({ stages: 4, numClasses: 4, inChannels: 1 });
  const windows = (before: number) => () => `${gpu.windowed - before} windowed launches`;
  await trainStep(session, 'train step nin4 rotnet default 28px batch 512', nin(), 28, 4, 512, 1, windows(gpu.windowed));
  const whole = 'train step nin4 rotnet 28px batch 128 whole';
  await trainStep(session, whole, nin(), 28, 4, 128, 1, windows(gpu.windowed));
  const split = 'train step nin4 rotnet 28px batch 128 split 32MiB';
  gpu.setBindingLimit('32MiB');
  try {
    await trainStep(session, split, nin(), 28, 4, 128, 1, windows(gpu.windowed));
  } finally {
    gpu.setBindingLimit();
  }
  const [w, s] = [whole, split].map((name) => session.measurements.find((m) => m.name === name));
  if (w && s) {
    s.note = `${s.note ?? ''}; windows cost ${((100 * (s.ms - w.ms)) / w.ms).toFixed(1)} % over the whole step`;
    process.stderr.write(`  ${split}: ${s.note.split('; ').at(-1)}\n`);
  }
}

/**
 * Data-parallel training (--devices 2; two devices on one adapter where there is one): ResNet-18's
 * step at batch 8 split 4 + 4, and what it costs beyond the devices' own work: the batch's shares
 * (read back, uploaded) and the reduce (gradient arenas read back, summed, written to both).
 * With `syncBN`, the same step with its 20 batch norms' statistics and gradient sums exchanged
 * between the devices (40 points a step, each a round trip through the host): compare its time
 * with the step without.
 */
async function dataParallelStep(session: Session, syncBN = false): Promise<void> {
  const name = `train step resnet18 cifar batch 8 devices 2${syncBN ? ' syncBN' : ''}`;
  if (!session.wants(name)) return;
  const model = resnet18({ stem: 'cifar', numClasses: 10 });
  const opt = new optim.SGD(model.parameters(), { lr: LR });
  const parallel = await DataParallel.open('2', [model], [opt], { syncBN });
  parallel!.measureOverhead = true;
  const images = randn([8, 3, 32, 32]).keep();
  const labels = tensor(Int32Array.from({ length: 8 }, (_, i) => i % 10), [8]).keep();
  const batch = { images, labels, size: 8, dispose: () => {} };
  const times: Record<'share' | 'reduce' | 'read' | 'sum' | 'write', number[]> = { share: [], reduce: [], read: [], sum: [], write: [] };
  const step = async (): Promise<void> => {
    await parallel!.step(batch, (b) => {
      const loss = F.crossEntropy(model.forward(b.images), b.labels);
      loss.backward();
      return { loss: asLoss(loss) };
    });
    for (const [key, list] of Object.entries(times)) list.push(parallel!.overheadMs[key as keyof typeof times]);
  };
  const gradientBytes = 4 * model.parameters().reduce((n, p) => n + p.size, 0);
  try {
    await session.gpu({ name, shape: '8x3x32x32 → 10 classes, 4 + 4 on 2 devices', images: 8, note: `plain SGD, lr ${LR}; ${parallel!.adapters.length} devices` }, step, session.isSoftware ? 3 : 10);
    const m = session.measurements.find((r) => r.name === name);
    const mid = (key: keyof typeof times) => [...times[key]].sort((a, b) => a - b)[Math.floor(times[key].length / 2)]!.toFixed(1);
    if (m) {
      m.note = `${m.note}; overhead per step: reduce + write-back ${mid('reduce')} ms (read ${mid('read')}, host sum ${mid('sum')}, write ${mid('write')}; ${formatBytes(gradientBytes)} of gradients per device), batch shares ${mid('share')} ms`;
      process.stderr.write(`  ${name}: ${m.note.split('; ').at(-1)}\n`);
    }
  } finally {
    parallel?.close();
    opt.dispose();
    model.dispose();
    images.dispose();
    labels.dispose();
  }
}

export const trainBench: Family = {
  name: 'train',
  async run(session) {
    const alexSide = alexNetSide();
    for (const batch of session.isSoftware ? [8] : [8, 128]) {
      await trainStep(session, `train step resnet18 cifar batch ${batch}`, resnet18({ stem: 'cifar', numClasses: 10 }), 32, 10, batch);
      await trainStep(session, `train step nin4 cifar batch ${batch}`, new NIN({ stages: 4, numClasses: 4 }), 32, 4, batch);
      await trainStep(session, `train step alexnet rotnet ${alexSide}px batch ${batch}`, new AlexNet({ imageSize: alexSide, numClasses: 4 }), alexSide, 4, batch);
    }
    await windowedSteps(session);
    await dataParallelStep(session);
    await dataParallelStep(session, true);
  },
};

await runIfMain(import.meta.url, trainBench);
