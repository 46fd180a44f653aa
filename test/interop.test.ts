// Checkpoints crossing between dawnet and PyTorch, proven with torch itself
// (scripts/golden/interop.py): dawnet's ResNets load into torchvision strictly once the
// `optimizer.*` keys are dropped; torchvision's state dicts, as safetensors and as torch.save
// .pth files, load into dawnet strictly; RotNet's reference checkpoints (`_feature_blocks.N…`,
// inside {'network': …, 'epoch': …}) load into NIN; and a pickle that would run code is refused.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { F, loadCheckpoint, optim, randn, readSafetensors, saveCheckpoint, scope, tensor, writeSafetensors, type Tensor } from '../src/index.js';
import { readTensorFile } from '../src/checkpoint/pth.js';
import { fromRotNetName, toRotNetName } from '../src/checkpoint/rotnet-names.js';
import type { Module } from '../src/nn/module.js';
import { AlexNet, NIN, resnet18, resnet34, resnet50 } from '../models/index.js';
import { expectGolden, FIXTURES, floats, hasTorch, python, reportWorst } from './golden/golden.js';

const dir = mkdtempSync(join(tmpdir(), 'dawnet-interop-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  reportWorst();
});

// Eval-mode logits in float32 on both sides.
const RTOL = 1e-4;

async function writeInput(shape: number[]): Promise<{ path: string; x: Tensor }> {
  const x = randn(shape).keep();
  const path = join(dir, `x-${shape.join('x')}.safetensors`);
  await writeSafetensors(path, [{ name: 'x', dtype: 'F32', shape, data: (await x.toArray()) as Float32Array }]);
  return { path, x };
}

async function evalLogits(model: Module, x: Tensor): Promise<Float32Array> {
  model.eval();
  return scope(async () => (await model.forward(x).toArray()) as Float32Array);
}

async function readLogits(path: string): Promise<Float32Array> {
  return floats((await readSafetensors(path)).tensors.get('logits')!);
}

describe('RotNet names', () => {
  it('map _feature_blocks.N… to the stage names and back', () => {
    const nin = new NIN({ stages: 4 });
    const alexnet = new AlexNet({ imageSize: 67 });
    try {
      expect(fromRotNetName('_feature_blocks.0.Block1_ConvB1.layers.Conv.weight', nin.stageNames)).toBe('conv1.Block1_ConvB1.layers.Conv.weight');
      expect(fromRotNetName('_feature_blocks.4.Classifier.bias', nin.stageNames)).toBe('classifier.Classifier.bias');
      expect(fromRotNetName('_feature_blocks.8.2.running_var', alexnet.stageNames)).toBe('fc_block.2.running_var');
      for (const [name] of [...nin.namedState(), ...alexnet.namedState()]) {
        const stages = nin.namedState().some(([n]) => n === name) ? nin.stageNames : alexnet.stageNames;
        expect(fromRotNetName(toRotNetName(name, stages), stages)).toBe(name);
      }
      expect(() => fromRotNetName('_feature_blocks.9.x.weight', nin.stageNames)).toThrow(/no feature block 9/);
    } finally {
      nin.dispose();
      alexnet.dispose();
    }
  });
});

describe('torch.save files without torch', () => {
  it('reads a committed .pth: a view sharing storage (strides, offset), int64, float16, float64', async () => {
    const pth = await readTensorFile(join(FIXTURES, 'state.pth'));
    const expected = await readSafetensors(join(FIXTURES, 'state.safetensors'));
    expect([...pth.tensors.keys()].sort()).toEqual([...expected.tensors.keys()].sort());
    for (const [name, t] of expected.tensors) {
      const got = pth.tensors.get(name)!;
      expect(got.shape, name).toEqual(t.shape);
      expect(got.dtype, name).toBe(t.dtype);
      expect([...got.data], name).toEqual([...t.data]);
    }
  });

  it('says why it cannot read a legacy torch.save file', async () => {
    const legacy = join(dir, 'legacy.pth');
    writeFileSync(legacy, Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc));
    await expect(readTensorFile(legacy)).rejects.toThrow(/legacy format \(PyTorch < 1\.6\)/);
  });
});

describe.skipIf(!hasTorch())('checkpoints both ways with PyTorch 1.13 and torchvision 0.14', () => {
  const builders = { 18: resnet18, 34: resnet34, 50: resnet50 } as const;
  for (const depth of [18, 34, 50] as const) {
    it(`ResNet-${depth}: dawnet → torchvision (strict) and torchvision → dawnet (strict), same logits`, async () => {
      // 64 px: at 32 px layer4 is 1×1, its batch norms see two values per channel, and the
      // training step's gradients blow the weights up until float32 overflows.
      const { path: input, x } = await writeInput([2, 3, 64, 64]);
      const model = builders[depth]({ numClasses: 10 });
      const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
      const ours = join(dir, `dawnet-resnet${depth}.safetensors`);
      try {
        // One training step, so that the running statistics and the optimizer state are real.
        scope(() => F.crossEntropy(model.forward(x), tensor(new Int32Array([3, 7]), [2])).backward());
        opt.step();
        opt.zeroGrad();
        await saveCheckpoint(ours, { model, optimizer: opt, epoch: 1 });
        const expected = await evalLogits(model, x);
        python('scripts/golden/interop.py', ['resnet', '--depth', String(depth), '--dawnet', ours, '--input', input, '--dir', dir]);
        expectGolden('interop', `resnet${depth} in torchvision`, await readLogits(join(dir, 'from_dawnet.safetensors')), expected, RTOL);

        const torchLogits = await readLogits(join(dir, 'torchvision_logits.safetensors'));
        const files = depth === 18 ? ['torchvision.safetensors', 'torchvision.pth'] : ['torchvision.safetensors'];
        for (const file of files) {
          await loadCheckpoint(join(dir, file), { model, strict: true });
          expectGolden('interop', `torchvision resnet${depth} from ${file}`, await evalLogits(model, x), torchLogits, RTOL);
        }
      } finally {
        opt.dispose();
        model.dispose();
        x.dispose();
      }
    });
  }

  it("RotNet's reference NIN checkpoint (torch.save of {'network', 'epoch'}) loads into NIN by its _feature_blocks names", async () => {
    const { path: input, x } = await writeInput([2, 3, 32, 32]);
    const model = new NIN({ numClasses: 4, stages: 4 });
    try {
      python('scripts/golden/interop.py', ['rotnet', '--dir', dir, '--input', input]);
      const meta = await loadCheckpoint(join(dir, 'model_net_epoch7'), { model, strict: true });
      expect(meta.metadata.epoch).toBe('7');
      expectGolden('interop', 'RotNet NIN', await evalLogits(model, x), await readLogits(join(dir, 'rotnet_logits.safetensors')), RTOL);
    } finally {
      model.dispose();
      x.dispose();
    }
  });

  it('refuses a .pth whose pickle would call a function, and runs nothing', async () => {
    const file = join(dir, 'unsafe.pth');
    const marker = join(dir, 'executed');
    python('scripts/golden/interop.py', ['unsafe', '--out', file, '--marker', marker]);
    await expect(loadCheckpoint(file)).rejects.toThrow(/refuses the global posix\.system/);
    expect(existsSync(marker)).toBe(false);
  });
});
