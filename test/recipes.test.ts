// The recipes' shared options (src/cli/flags.ts, src/cli/common.ts): what the flags of every
// training command turn into, checked where it reaches the trainer — the optimizer's first step
// against PyTorch's closed forms, the rate at chosen epochs of each schedule preset and of --lut,
// the augmentation kernel's settings, the epoch --selectBy keeps — and the seeds' command lines
// (the NYU DS-GA 1008 solution's, kebab-case) parsed as written.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { parseCommand, UsageError, type Flags } from '../src/cli/args.js';
import type { ClassifyResult } from '../src/cli/commands/classify.js';
import type { ProbeResult } from '../src/cli/commands/probe.js';
import type { RotnetResult } from '../src/cli/commands/rotnet.js';
import { augmentOf, optimizerOf, scheduleOf, selectKey, type OptimizerArgs, type ScheduleFlags } from '../src/cli/common.js';
import { applyMachineFlags, machineReport } from '../src/cli/machine.js';
import { COMMANDS, runCommand } from '../src/cli/main.js';
import { readSafetensors } from '../src/checkpoint/safetensors.js';
import { Augment, type AugmentOptions } from '../src/data/augment.js';
import { defaultWorkerCount, setDecodeThreads, sharedDecodePool } from '../src/data/workers.js';
import { tensor } from '../src/index.js';
import { hasTorch, python } from './golden/golden.js';
import { commandSandbox } from './fixtures/sandbox.js';

const parse = (command: string, argv: string[]) => parseCommand(COMMANDS[command]!.spec as { name: string; summary: string; flags: Flags }, argv)!;

describe('flags as the seeds spell them', () => {
  it('kebab-case spellings parse to the same values as camelCase', () => {
    const kebab = parse('train:finetune', ['--batch-size', '8', '--manual-seed', '3', '--weight-decay', '0', '--no-nesterov', '--momentum', '0', '--lr-steps', '30,60', '--train-samples', '5', '--select-by', 'loss']);
    const camel = parse('train:finetune', ['--batchSize', '8', '--manualSeed', '3', '--weightDecay', '0', '--no-nesterov', '--momentum', '0', '--lrSteps', '30,60', '--trainSamples', '5', '--selectBy', 'loss']);
    expect(kebab).toEqual(camel);
    expect(kebab).toMatchObject({ batchSize: 8, manualSeed: 3, weightDecay: 0, nesterov: false, lrSteps: '30,60', trainSamples: 5, selectBy: 'loss' });
    expect(() => parse('train:rotnet', ['--batch-size', '0'])).toThrow('train:rotnet: --batch-size must be at least 1, got 0');
  });

  it("the NYU solution's two command lines parse as written", () => {
    const rotation = parse('train:rotnet', '--verbIter 1000 --dataroot /data/unsupervised_split --workers 4 --batchSize 64 --imageSize 224 --lr 0.001 --cuda --ngpu 1 --outf /models/rotLearn --manualSeed 9000'.split(' '));
    expect(rotation).toMatchObject({ verbIter: 1000, dataroot: '/data/unsupervised_split', workers: 4, batchSize: 64, imageSize: 224, lr: 0.001, cuda: true, ngpu: 1, outf: '/models/rotLearn', manualSeed: 9000 });
    const finetune = parse(
      'train:finetune',
      "--net /models/rotLearn/net_epoch_23.pth --dataroot /data/supervised --workers 4 --batchSize 64 --imageSize 224 --lr 0.001 --cuda --ngpu 1 --outf /models/rotLearn/finetune --trainSamples 64 --manualSeed 9000 --niter 100".split(' '),
    );
    expect(finetune).toMatchObject({ net: '/models/rotLearn/net_epoch_23.pth', workers: 4, batchSize: 64, imageSize: 224, lr: 0.001, cuda: true, ngpu: 1, trainSamples: 64, manualSeed: 9000, epochs: 100 });
  });

  it('--cuda and --ngpu say what they did; --workers sizes the decoding threads', () => {
    expect(machineReport({ cuda: true, ngpu: 1 }, { adapterName: 'llvmpipe (LLVM 19)', isSoftware: true })).toBe(
      '--cuda: no hardware GPU adapter was found; running on llvmpipe (LLVM 19) (software, slow). DAWNET_ADAPTER chooses among adapters\n--ngpu 1: one adapter, llvmpipe (LLVM 19)',
    );
    expect(machineReport({ cuda: true, ngpu: 2 }, { adapterName: 'NVIDIA H200', isSoftware: false })).toBe('--cuda: running on NVIDIA H200 (hardware)\n--ngpu 2: dawnet trains on one adapter (NVIDIA H200); the other GPUs are not used');
    expect(machineReport({ cuda: false }, { adapterName: 'x', isSoftware: true })).toBeNull();
    try {
      applyMachineFlags('train:rotnet', { workers: 3 });
      expect(sharedDecodePool().size).toBe(3);
    } finally {
      setDecodeThreads(defaultWorkerCount());
    }
  });

  it("train:gan-classifier's defaults are the NYU solution's: Adam 1e-3 β1 0.5, ×0.1 every 7 epochs, best by top-5", () => {
    const a = parse('train:gan-classifier', []);
    expect(a).toMatchObject({ optimizer: 'adam', lr: 0.001, beta1: 0.5, beta2: 0.999, weightDecay: 0, schedule: 'step', lrStep: 7, gamma: 0.1, selectBy: 'top5', regularized: false, augment: 'none' });
    const { schedule } = scheduleOf(a as unknown as ScheduleFlags, 10);
    expect([0, 6, 7, 13, 14].map((t) => schedule(t, 0.001))).toBeAllClose([0.001, 0.001, 1e-4, 1e-4, 1e-5], { rtol: 1e-12, atol: 0 });
    expect(parse('train:gan-classifier', ['--regularized'])).toMatchObject({ regularized: true });
  });
});

describe('schedules as data', () => {
  const flags = (over: Partial<ScheduleFlags>): ScheduleFlags => ({ schedule: 'lut', lr: 0.1, epochs: 200, lrStep: 30, gamma: 0.1, warmupEpochs: 0, warmupLr: 0, lrPower: 0.5, ...over });
  const at = (f: ScheduleFlags, epochs: number[], baseLr = f.lr) => epochs.map((t) => scheduleOf(f, 1).schedule(t, baseLr));
  const exact = { rtol: 1e-12, atol: 0 };

  it("presets are RotNet's LUT_lr tables (rate until each epoch bound, from epoch 0)", () => {
    expect(at(flags({ schedule: 'rotnet' }), [0, 59, 60, 119, 120, 159, 160, 199, 250])).toBeAllClose([0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008, 0.0008], exact);
    expect(at(flags({ schedule: 'rotnet-classifier' }), [0, 34, 35, 69, 70, 84, 85, 99])).toBeAllClose([0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008], exact);
    expect(at(flags({ schedule: 'alexnet' }), [0, 14, 15, 29, 30, 44, 45, 49])).toBeAllClose([0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4, 1e-5, 1e-5], exact);
  });

  it('--lut epoch:rate pairs give the same rates as the preset they spell; a second group keeps its ratio', () => {
    const epochs = Array.from({ length: 210 }, (_, t) => t);
    expect(at(flags({ lut: '0:0.1,60:0.02,120:0.004,160:0.0008' }), epochs)).toBeAllClose(at(flags({ schedule: 'rotnet' }), epochs), exact);
    // A backbone at a tenth of --lr follows the table at a tenth.
    expect(at(flags({ schedule: 'rotnet' }), [0, 60], 0.01)).toBeAllClose([0.01, 0.002], exact);
    expect(() => scheduleOf(flags({ lut: '5:0.1,60:0.02' }), 1)).toThrow('--lut: the first entry must start at epoch 0');
    expect(() => scheduleOf(flags({ lut: '0:0.1,60' }), 1)).toThrow(UsageError);
    expect(() => scheduleOf(flags({ lut: '0:0.1,60:0.02,40:0.01' }), 1)).toThrow('--lut: epochs must increase');
  });

  it('--lrSteps with --gamma is MultiStepLR', () => {
    expect(at(flags({ lrSteps: '30,60,90', gamma: 0.1 }), [0, 29, 30, 59, 60, 90, 150])).toBeAllClose([0.1, 0.1, 0.01, 0.01, 0.001, 1e-4, 1e-4], { rtol: 1e-12, atol: 1e-18 });
    expect(() => scheduleOf(flags({ lrSteps: '30,x' }), 1)).toThrow("--lrSteps: expected increasing whole epochs such as '30,60,90', got '30,x'");
    // Refused as the flags are parsed, before any data is opened.
    expect(() => parse('train:rotnet', ['--lut', '0:0.1', '--lrSteps', '30'])).toThrow('give --lut or --lrSteps, not both');
    expect(() => parse('train:rotnet', ['--lut', '5:0.1,10:0.01'])).toThrow('train:rotnet: --lut: the first entry must start at epoch 0');
    expect(() => parse('train:probe', ['--lr-steps', '60,30'])).toThrow('train:probe: --lrSteps: expected increasing whole epochs');
    expect(() => parse('train:finetune', ['--gammaRange', '1.2'])).toThrow("train:finetune: --gammaRange: expected 'lo,hi' with 0 ≤ lo ≤ hi, got '1.2'");
  });
});

describe('augmentation options', () => {
  const base = { augment: 'none' };
  it('presets and individual flags', () => {
    expect(augmentOf({ augment: 'rotnet-cifar' }, 32)).toEqual({ crop: { padding: 4 }, hflip: 0.5 });
    expect(augmentOf({ augment: 'imagenet' }, 224)).toEqual({ resizedCrop: { scale: [0.08, 1] }, hflip: 0.5 });
    expect(augmentOf({ augment: 'flip' }, 96)).toEqual({ hflip: 0.5 });
    expect(augmentOf({ augment: 'auto' }, 32)).toEqual({ crop: { padding: 4 }, hflip: 0.5 });
    expect(augmentOf({ augment: 'auto' }, 96)).toEqual({ hflip: 0.5 });
    expect(augmentOf(base, 32)).toEqual({});
    expect(augmentOf({ augment: 'rotnet-cifar', cropPadding: 2, hflip: 0 }, 32)).toEqual({ crop: { padding: 2 } });
    expect(augmentOf({ ...base, randomResizedCrop: 64, rrcScale: '0.2,1', gammaRange: '0.8,1.25' }, 64)).toEqual({ resizedCrop: { scale: [0.2, 1] }, gamma: [0.8, 1.25] });
    expect(augmentOf({ augment: 'rotnet-cifar', randomResizedCrop: 32 }, 32)).toEqual({ resizedCrop: { scale: [0.08, 1] }, hflip: 0.5 });
    expect(augmentOf({ augment: 'rotnet-cifar', randomCrop: 0 }, 32)).toEqual({ hflip: 0.5 });
    expect(() => augmentOf({ ...base, randomCrop: 24 }, 32)).toThrow('--randomCrop 24: crops are taken at the image size (32 px)');
    expect(() => augmentOf({ ...base, cropPadding: 4 }, 32)).toThrow('--cropPadding needs a random crop');
    expect(() => augmentOf({ ...base, gammaRange: '1.2,0.8' }, 32)).toThrow("--gammaRange: expected 'lo,hi'");
  });

  it('--selectBy names the held-out metric; top-1 decides where top-5 is always 100 %', () => {
    expect(selectKey('top5', 'val', 10)).toBe('valTop5');
    expect(selectKey('loss', 'test', 3)).toBe('testLoss');
    expect(selectKey('top5', 'test', 4)).toBe('testTop1');
  });
});

describe('the optimizer the flags build, one step against its closed form', () => {
  const a = (over: Partial<OptimizerArgs>): OptimizerArgs => ({ optimizer: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01, beta1: 0.8, beta2: 0.99, ...over });
  const p0 = [0.5, -1.25, 2, 0.03];
  const g = [0.2, 0.7, -1.5, 1e-3];
  const stepOnce = async (args: OptimizerArgs): Promise<number[]> => {
    const p = tensor(Float32Array.from(p0), [4]).keep().requiresGrad_();
    p.grad = tensor(Float32Array.from(g), [4]).keep();
    const opt = optimizerOf(args, [p]);
    opt.step();
    const out = [...((await p.toArray()) as Float32Array)];
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
    return out;
  };
  const f = Math.fround;
  const tol = { rtol: 1e-6, atol: 1e-7 };

  it('sgd with Nesterov: p − lr·(1 + μ)·(g + λp) on the first step', async () => {
    const expected = p0.map((p, i) => f(p) - 0.1 * 1.9 * (f(g[i]!) + 0.01 * f(p)));
    expect(await stepOnce(a({}))).toBeAllClose(expected, tol);
  });

  it('adam: g + λp, then p − lr/(1 − β1) · m / (√v/√(1 − β2) + ε)', async () => {
    const expected = p0.map((p, i) => {
      const d = f(g[i]!) + 0.01 * f(p);
      const m = 0.2 * d;
      const v = 0.01 * d * d;
      return f(p) - (0.1 / 0.2) * (m / (Math.sqrt(v) / Math.sqrt(0.01) + 1e-8));
    });
    expect(await stepOnce(a({ optimizer: 'adam' }))).toBeAllClose(expected, tol);
  });

  it('adamw: p·(1 − lr·λ), then the Adam step on g alone', async () => {
    const expected = p0.map((p, i) => {
      const d = f(g[i]!);
      return f(p) * (1 - 0.1 * 0.01) - (0.1 / 0.2) * ((0.2 * d) / (Math.sqrt(0.01 * d * d) / Math.sqrt(0.01) + 1e-8));
    });
    expect(await stepOnce(a({ optimizer: 'adamw' }))).toBeAllClose(expected, tol);
  });
});

// The commands on a tiny image folder (3 classes, 8 training and 4 test images each, 16 px, NIN-3).
const { root, data, out } = commandSandbox('dawnet-recipes-test-', { train: 8, test: 4 });

const tiny = ['--dataroot', data, '--imageSize', '16', '--verbIter', '1', '--batchSize', '4'];
const nin3 = ['--model', 'nin', '--ninStages', '3'];

/** Runs a command and returns what it returned with the options of every loader it built (the augmentation kernel's settings). */
async function withTransforms<R>(command: string, argv: string[]): Promise<{ result: R; transforms: AugmentOptions[] }> {
  const spy = vi.spyOn(Augment.prototype, 'layout');
  try {
    const result = (await runCommand(command, argv)) as R;
    return { result, transforms: spy.mock.contexts.map((c) => (c as Augment).options) };
  } finally {
    spy.mockRestore();
  }
}

function epochRecords(outf: string): Record<string, number>[] {
  return readFileSync(join(outf, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number> & { kind?: string })
    .filter((r) => (r as { kind?: string }).kind === 'epoch');
}

/** The RotNet run the probe reads, made once by whichever test needs it first. */
let pretrained: Promise<{ result: RotnetResult; transforms: AugmentOptions[] }> | null = null;
const rotnetRun = () => (pretrained ??= withTransforms<RotnetResult>('train:rotnet', [...tiny, ...nin3, '--epochs', '2', '--epochSize', '8', '--optimizer', 'adam', '--lut', '0:0.01,1:0.002', '--outf', out('rotnet')]));

describe('the options that reach the trainers', () => {
  it("train:rotnet crops and flips as RotNet's CIFAR loaders by default; --optimizer and --lut reach it", async () => {
    const { result, transforms } = await rotnetRun();
    const [train, heldOut] = transforms;
    expect(train).toMatchObject({ crop: { padding: 4 }, hflip: 0.5, rotation: 'all' });
    expect(train!.resizedCrop).toBeUndefined();
    expect(heldOut).not.toHaveProperty('crop');
    expect(heldOut).not.toHaveProperty('hflip');
    expect(epochRecords(result.outf).map((r) => r.lr)).toBeAllClose([0.01, 0.002], { rtol: 1e-6, atol: 0 });
    const saved = await readSafetensors(join(result.outf, 'net_epoch_2.safetensors'));
    expect(JSON.parse(saved.metadata.optimizer!)).toMatchObject({ kind: 'Adam', groups: [{ hyperparameters: { betas: [0.9, 0.999], weightDecay: 5e-4 } }] });
  });

  it('train:probe augments the labelled images and keeps the epoch of lowest held-out loss with --selectBy loss', async () => {
    const { result: rot } = await rotnetRun();
    const outf = out('probe-loss');
    const { result, transforms } = await withTransforms<ProbeResult>('train:probe', [
      ...tiny, '--net', join(rot.outf, 'net_epoch_2.safetensors'), '--blocks', 'conv1,conv2', '--epochs', '3', '--augment', 'rotnet-cifar', '--hflip', '0', '--gammaRange', '0.9,1.1', '--selectBy', 'loss', '--schedule', 'constant', '--lr', '0.05', '--outf', outf,
    ]);
    expect(transforms[0]).toMatchObject({ crop: { padding: 4 }, gamma: [0.9, 1.1] });
    expect(transforms[0]).not.toHaveProperty('hflip');
    const losses = epochRecords(outf).map((r) => r.testLoss_conv1!);
    expect(losses).toHaveLength(3);
    const lowest = losses.indexOf(Math.min(...losses)) + 1;
    expect(result.bestEpoch).toBe(lowest);
    expect((await readSafetensors(join(outf, 'net_best.safetensors'))).metadata.epoch).toBe(String(lowest));
  });

  it('train:finetune selects by validation top-1 or loss, and restores that epoch', async () => {
    const { result: rot } = await rotnetRun();
    const common = [...tiny, '--net', join(rot.outf, 'net_epoch_2.safetensors'), '--trainSamples', '4', '--valSamples', '4', '--epochs', '3', '--schedule', 'constant', '--lr', '0.05', '--augment', 'none'];
    for (const selectBy of ['top1', 'loss'] as const) {
      const outf = out(`finetune-${selectBy}`);
      const r = (await runCommand('train:finetune', [...common, '--selectBy', selectBy, '--outf', outf])) as ClassifyResult;
      const records = epochRecords(outf);
      const values = records.map((x) => (selectBy === 'loss' ? -x.valLoss! : x.valTop1!));
      const best = values.indexOf(Math.max(...values)) + 1;
      expect(r.epoch).toBe(best);
      expect(r.val!.loss).toBeCloseTo(records[best - 1]!.valLoss!, 5);
    }
  });
});

describe.skipIf(!hasTorch())("the NYU solution's fine-tuning command line on a .pth", () => {
  it('runs as written (smaller images and batches, one epoch) on a torchvision resnet18 state dict named net_epoch_23.pth', async () => {
    python('scripts/golden/interop.py', ['nets', '--classes', '3', '--dir', root]);
    const net = join(root, 'rotLearn', 'net_epoch_23.pth');
    mkdirSync(join(root, 'rotLearn'), { recursive: true });
    copyFileSync(join(root, 'resnet18.pth'), net);
    const outf = out('rotLearn-finetune');
    const line = `--net ${net} --dataroot ${data} --workers 4 --batchSize 4 --imageSize 16 --lr 0.001 --cuda --ngpu 1 --outf ${outf} --trainSamples 4 --manualSeed 9000 --niter 1 --channels 3`;
    try {
      const r = (await runCommand('train:finetune', line.split(' '))) as ClassifyResult;
      expect(r.labeled).toBe(12);
      expect(sharedDecodePool().size).toBe(4);
      const saved = await readSafetensors(join(outf, 'net_best.safetensors'));
      expect(JSON.parse(saved.metadata.args!)).toMatchObject({ workers: 4, cuda: true, ngpu: 1, manualSeed: 9000, epochs: 1, modelSpec: { model: 'resnet18' } });
    } finally {
      setDecodeThreads(defaultWorkerCount());
    }
  });
});

describe("train:gan-classifier as the NYU solution's", () => {
  const gan = ['--dataroot', data, '--imageSize', '32', '--batchSize', '8', '--verbIter', '1'];
  /** The discriminator tensors of netD and of the classifier trained on it (under discriminator.*). */
  const trunks = async (netD: string, classifier: string) => {
    const [d, c] = await Promise.all([readSafetensors(netD), readSafetensors(classifier)]);
    return [...d.tensors].filter(([name]) => !name.startsWith('optimizer.')).map(([name, t]) => [name, t.data, c.tensors.get(`discriminator.${name}`)!.data] as const);
  };

  it('Adam 1e-3 (β1 0.5) on a frozen trunk by default; --regularized trains the whole discriminator with Dropout(0.6) before the head', async () => {
    await runCommand('train:dcgan', [...gan, '--nz', '8', '--ngf', '8', '--ndf', '8', '--epochs', '1', '--outf', out('dcgan')]);
    const netD = join(out('dcgan'), 'netD_epoch_1.safetensors');
    const classifier = [...gan, '--netD', netD, '--epochs', '1', '--trainSamples', '8'];
    const { transforms } = await withTransforms<ClassifyResult>('train:gan-classifier', [...classifier, '--outf', out('gan-frozen')]);
    expect(transforms[0]).not.toHaveProperty('crop');
    expect(transforms[0]).not.toHaveProperty('hflip');
    const frozen = join(out('gan-frozen'), 'net_epoch_1.safetensors');
    expect(JSON.parse((await readSafetensors(frozen)).metadata.optimizer!)).toMatchObject({ kind: 'Adam', groups: [{ hyperparameters: { lr: 0.001, betas: [0.5, 0.999], weightDecay: 0 } }] });
    for (const [name, before, after] of await trunks(netD, frozen)) expect([name, [...after]]).toEqual([name, [...before]]);

    const logged: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (logged.push(String(chunk)), true));
    try {
      await runCommand('train:gan-classifier', [...classifier, '--regularized', '--outf', out('gan-regularized')]);
    } finally {
      spy.mockRestore();
    }
    expect(logged.join('')).toMatch(/adam, no augmentation, dropout 0\.6 before the head, best epoch by testTop1/);
    // Every weight of the trunk changes; the real/fake output conv (the last main.N) is not on the classifier's path.
    const all = await trunks(netD, join(out('gan-regularized'), 'net_epoch_1.safetensors'));
    const output = `main.${Math.max(...all.map(([name]) => Number(/^main\.(\d+)\./.exec(name)?.[1] ?? -1)))}.weight`;
    const weights = all.filter(([name]) => name.endsWith('weight') && name !== output);
    expect(weights.length).toBeGreaterThanOrEqual(3);
    for (const [name, before, after] of weights) expect([name, [...after].some((v, i) => v !== before[i])]).toEqual([name, true]);
  });
});

describe("the NYU solution's rotation-learning command line", () => {
  it('runs as written (16 px images, batches of 4, two steps), says what --cuda and --ngpu did, and decodes in --workers threads', async () => {
    const outf = out('rotLearn');
    const line = `--verbIter 1000 --dataroot ${data} --workers 4 --batchSize 4 --imageSize 16 --lr 0.001 --cuda --ngpu 1 --outf ${outf} --manualSeed 9000 --maxIters 2`;
    const logged: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (logged.push(String(chunk)), true));
    try {
      const r = (await runCommand('train:rotnet', line.split(' '))) as RotnetResult;
      expect(r.steps).toBe(2);
      expect(sharedDecodePool().size).toBe(4);
    } finally {
      spy.mockRestore();
      setDecodeThreads(defaultWorkerCount());
    }
    const text = logged.join('');
    expect(text).toMatch(/train:rotnet: --cuda: (running on .+ \(hardware\)|no hardware GPU adapter was found; running on .+ \(software, slow\))/);
    expect(text).toMatch(/train:rotnet: --ngpu 1: one adapter, /);
    const saved = await readSafetensors(join(outf, 'net_last.safetensors'));
    expect(JSON.parse(saved.metadata.args!)).toMatchObject({ verbIter: 1000, workers: 4, lr: 0.001, cuda: true, ngpu: 1, manualSeed: 9000, augment: 'auto', schedule: 'lut' });
  });
});
