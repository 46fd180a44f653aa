// Whole training steps (forward, cross-entropy, backward, plain SGD) on random images, in images/s
// and GFLOP/s: ResNet-18 with the CIFAR stem at 32 px, RotNet's NIN-4 at 32 px and RotNet's
// AlexNet (224 px where its fc6 weight fits the device's storage binding, else 128 px); batch 8,
// and 128 as well on a GPU.
//   npm run bench:train [-- --quick] [-- --no-peers]   (npm run bench: every family)
import { backend, F, noGrad, optim, randn, scope, tensor } from '../src/index.js';
import { Conv2d } from '../src/nn/conv.js';
import { Linear } from '../src/nn/linear.js';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/tensor.js';
import { AlexNet, NIN, resnet18 } from '../models/index.js';
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

async function trainStep(session: Session, name: string, model: Module, side: number, classes: number, batch: number): Promise<void> {
  if (!session.wants(name)) {
    model.dispose();
    return;
  }
  const x = randn([batch, 3, side, side]).keep();
  const labels = tensor(Int32Array.from({ length: batch }, (_, i) => i % classes), [batch]).keep();
  const flops = trainingFlops(model, x);
  const opt = new optim.SGD(model.parameters(), { lr: LR });
  const spec = { name, shape: `${batch}x3x${side}x${side} → ${classes} classes`, flops, images: batch, note: `plain SGD, lr ${LR}; ${FLOPS_NOTE}` };
  await session.gpu(spec, () => {
    scope(() => F.crossEntropy(model.forward(x), labels).backward());
    opt.step();
    opt.zeroGrad();
  }, session.isSoftware ? 3 : 10);
  opt.dispose();
  model.dispose();
  x.dispose();
  labels.dispose();
}

/** RotNet trains AlexNet at 224 px; its fc6 weight (4096 × 256·6·6 floats) must fit one storage binding. */
function alexNetSide(): number {
  return 4 * 4096 * 256 * 6 * 6 <= backend().limits.maxStorageBufferBindingSize ? 224 : 128;
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
  },
};

await runIfMain(import.meta.url, trainBench);
