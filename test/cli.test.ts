// Every training command end to end on a tiny configuration (an image folder of 3 classes made
// from the built-in images, 16 px, NIN-3, a few steps), in this process so that pipelines are
// shared: each writes its checkpoints and metrics, RotNet resumes exactly, and bad input is one
// clear error. Later commands read the checkpoints earlier ones wrote, as users chain them: each
// such run is made once, by whichever test needs it first, so every test also runs alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/cli/args.js';
import type { ClassifyResult } from '../src/cli/commands/classify.js';
import type { DcganResult } from '../src/cli/commands/dcgan.js';
import type { EvaluateResult } from '../src/cli/commands/evaluate.js';
import type { ProbeResult } from '../src/cli/commands/probe.js';
import type { RotnetResult } from '../src/cli/commands/rotnet.js';
import type { SesemiResult } from '../src/cli/commands/sesemi.js';
import type { StudentResult } from '../src/cli/commands/student.js';
import { runCommand } from '../src/cli/main.js';
import { DeviceMemoryError } from '../src/train/step-memory.js';
import { DataError } from '../src/data/errors.js';
import { memory } from '../src/index.js';
import { NonFiniteLossError } from '../src/train/run.js';
import { FIXTURES, hasTorch, python } from './golden/golden.js';
import { commandSandbox, once } from './fixtures/sandbox.js';

const { root, data, out } = commandSandbox('dawnet-cli-test-', { train: 8, test: 4 });

const tiny = ['--dataroot', data, '--imageSize', '16', '--verbIter', '1'];
const nin3 = ['--model', 'nin', '--ninStages', '3'];
const rotnetArgs = (outf: string, epochs: number, extra: string[] = []) => [...tiny, ...nin3, '--batchSize', '4', '--epochSize', '8', '--epochs', String(epochs), '--outf', outf, ...extra];

function epochRecords(outf: string): Record<string, number>[] {
  return readFileSync(join(outf, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number> & { kind: string })
    .filter((r) => (r as { kind: string }).kind === 'epoch');
}

const rotnetRun = once(async () => (await runCommand('train:rotnet', rotnetArgs(out('rotnet'), 2))) as RotnetResult);
/** RotNet's best checkpoint, trained first when no test has yet. */
const net = async () => {
  await rotnetRun();
  return join(out('rotnet'), 'net_best.safetensors');
};
const probeRun = once(async () => (await runCommand('train:probe', [...tiny, '--net', await net(), '--blocks', 'conv1,conv2', '--head', 'linear', '--epochs', '1', '--batchSize', '8', '--outf', out('probe')])) as ProbeResult);
const supervisedRun = once(async () => (await runCommand('train:supervised', [...tiny, ...nin3, '--trainSamples', '4', '--epochs', '1', '--batchSize', '4', '--outf', out('supervised')])) as ClassifyResult);
const sesemiRun = once(async () => (await runCommand('train:sesemi', [...tiny, ...nin3, '--trainSamples', '2', '--epochs', '1', '--batchSize', '4', '--outf', out('sesemi')])) as SesemiResult);

/** Runs `command` under a 64 KiB DAWNET_MEMORY: it must stop with the one message, its --outf unmade. */
async function expectStepTooLarge(command: string, args: string[]): Promise<void> {
  const outf = args[args.indexOf('--outf') + 1]!;
  const previous = process.env.DAWNET_MEMORY;
  process.env.DAWNET_MEMORY = '64KiB';
  try {
    const run = runCommand(command, args);
    await expect(run).rejects.toThrow(DeviceMemoryError);
    await expect(run).rejects.toThrow(/needs about .* of device memory .* the device has 64\.0 KiB \(DAWNET_MEMORY\): (lower --batchSize|not even 2 images)/);
  } finally {
    if (previous === undefined) delete process.env.DAWNET_MEMORY;
    else process.env.DAWNET_MEMORY = previous;
  }
  expect(existsSync(outf)).toBe(false);
}

describe('train:rotnet', () => {
  it('trains, evaluates rotation accuracy, and writes checkpoints, metrics, curves and arguments', async () => {
    const r = await rotnetRun();
    expect(r.epochs).toBe(2);
    expect(r.steps).toBe(4);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    expect(r.rotationAccuracy).toBeGreaterThanOrEqual(0);
    const files = readdirSync(out('rotnet'));
    for (const f of ['net_epoch_2.safetensors', 'net_best.safetensors', 'metrics.jsonl', 'curves.png', 'args.json', 'rotations.png']) expect(files).toContain(f);
    expect(files).not.toContain('net_epoch_1.safetensors');
    expect(epochRecords(out('rotnet')).map((e) => e.epoch)).toEqual([1, 2]);
    expect(JSON.parse(readFileSync(join(out('rotnet'), 'args.json'), 'utf8'))).toMatchObject({ command: 'train:rotnet', model: 'nin', ninStages: 3 });
  });

  it('--resume after epoch 1 gives the same losses, bit for bit, as the uninterrupted run', async () => {
    await rotnetRun();
    await runCommand('train:rotnet', rotnetArgs(out('rotnet-resumed'), 1));
    await runCommand('train:rotnet', rotnetArgs(out('rotnet-resumed'), 2, ['--resume', out('rotnet-resumed')]));
    const keys = ['loss', 'accuracy', 'testLoss', 'testAccuracy'];
    const pick = (r: Record<string, number>) => keys.map((k) => r[k]);
    expect(epochRecords(out('rotnet-resumed')).map(pick)).toEqual(epochRecords(out('rotnet')).map(pick));
  });

  it('--maxIters stops part-way and saves net_last', async () => {
    const r = (await runCommand('train:rotnet', rotnetArgs(out('rotnet-max'), 5, ['--maxIters', '1']))) as RotnetResult;
    expect(r.steps).toBe(1);
    expect(existsSync(join(out('rotnet-max'), 'net_last.safetensors'))).toBe(true);
  });

  it('a diverging loss stops the run with a clear error and writes no checkpoint after it', async () => {
    const run = runCommand('train:rotnet', rotnetArgs(out('rotnet-nan'), 2, ['--lr', '1e30']));
    await expect(run).rejects.toThrow(NonFiniteLossError);
    await expect(run).rejects.toThrow(/the loss became (NaN|Infinity)/);
    expect(existsSync(join(out('rotnet-nan'), 'net_epoch_2.safetensors'))).toBe(false);
  });

  it('a step larger than the device memory stops with one message before the run folder is made', async () => {
    await expectStepTooLarge('train:rotnet', rotnetArgs(out('rotnet-oom'), 1));
  });

  it('bad arguments and missing data are one clear error', async () => {
    await expect(runCommand('train:rotnet', ['--rotations', '5'])).rejects.toThrow(UsageError);
    await expect(runCommand('train:rotnet', ['--batchSize', 'many'])).rejects.toThrow(/expects an integer|expects a number/);
    await expect(runCommand('train:rotnet', ['--dataroot', join(root, 'nowhere'), '--imageSize', '16'])).rejects.toThrow(DataError);
    await expect(runCommand('train:nothing', [])).rejects.toThrow(/unknown command/);
    expect(await runCommand('train:rotnet', ['--help'])).toBeNull();
  });
});

describe('evaluation and fine-tuning on the RotNet features', () => {

  it('train:probe trains a head per block and reports top-1 per block', async () => {
    const r = await probeRun();
    expect(Object.keys(r.blocks)).toEqual(['conv1', 'conv2']);
    for (const s of Object.values(r.blocks)) expect(s.top1).toBeGreaterThanOrEqual(0);
    expect(readdirSync(out('probe'))).toContain('net_epoch_1.safetensors');
  });

  it('train:probe with the conv head on conv2', async () => {
    const r = (await runCommand('train:probe', [...tiny, '--net', await net(), '--blocks', 'conv2', '--head', 'conv', '--epochs', '1', '--batchSize', '8', '--outf', out('probe-conv')])) as ProbeResult;
    expect(r.blocks.conv2!.top1).toBeGreaterThanOrEqual(0);
  });

  it('train:finetune loads the backbone without its head, freezes through conv1, and stops early', async () => {
    const r = (await runCommand('train:finetune', [
      ...tiny, '--net', await net(), '--trainSamples', '4', '--valSamples', '2', '--patience', '1', '--freeze', 'conv1', '--epochs', '3', '--batchSize', '4', '--outf', out('finetune'),
    ])) as ClassifyResult;
    expect(r.labeled).toBe(12);
    expect(r.test.count).toBe(12);
    expect(readdirSync(out('finetune'))).toContain('net_best.safetensors');
  });

  it('a missing checkpoint, a missing --resume and an unknown --freeze stage are one clear error each', async () => {
    await expect(runCommand('train:finetune', [...tiny, '--net', join(root, 'none.safetensors')])).rejects.toThrow(/none\.safetensors: no such file/);
    await expect(runCommand('train:rotnet', rotnetArgs(out('rotnet-noresume'), 1, ['--resume', join(root, 'nowhere')]))).rejects.toThrow(/--resume: .* does not exist/);
    await expect(runCommand('train:finetune', [...tiny, '--net', await net(), '--freeze', 'conv9', '--epochs', '1'])).rejects.toThrow(UsageError);
  });

  it('train:finetune refuses a checkpoint that is not a dawnet model', async () => {
    await probeRun();
    await expect(runCommand('train:finetune', [...tiny, '--net', join(out('probe'), 'net_epoch_1.safetensors'), '--epochs', '1'])).rejects.toThrow(/lacks backbone tensors/);
    // A torch.save state dict of no known model: the error names the file and what each model needs.
    await expect(runCommand('train:finetune', [...tiny, '--net', join(FIXTURES, 'state.pth'), '--epochs', '1'])).rejects.toThrow(/state\.pth: .*none of them[^]*resnet50: conv1\.weight/);
  });
});

describe('supervised, SESEMI, DCGAN, student and evaluate', () => {
  it('train:supervised from scratch on K labels per class', async () => {
    const r = await supervisedRun();
    expect(r.steps).toBe(3);
    expect(r.test.top1).toBeGreaterThanOrEqual(0);
  });

  it('train:supervised --resume matches the uninterrupted run bit for bit', async () => {
    const args = (outf: string, epochs: number) => [...tiny, ...nin3, '--trainSamples', '4', '--epochs', String(epochs), '--batchSize', '4', '--outf', outf];
    await runCommand('train:supervised', args(out('supervised-2'), 2));
    // Stopped by --maxIters at the end of epoch 1 (3 steps): the same schedule as the full run.
    await runCommand('train:supervised', [...args(out('supervised-resumed'), 2), '--maxIters', '3']);
    expect(existsSync(join(out('supervised-resumed'), 'net_epoch_1.safetensors'))).toBe(true);
    await runCommand('train:supervised', [...args(out('supervised-resumed'), 2), '--resume', out('supervised-resumed')]);
    const pick = (r: Record<string, number>) => [r.loss, r.top1, r.testLoss, r.testTop1];
    expect(epochRecords(out('supervised-resumed')).map(pick)).toEqual(epochRecords(out('supervised-2')).map(pick));
  });

  it('train:sesemi, train:probe and train:dcgan continue with --resume', async () => {
    const sesemiArgs = [...tiny, ...nin3, '--trainSamples', '2', '--batchSize', '4', '--outf', out('sesemi-resumed')];
    await runCommand('train:sesemi', [...sesemiArgs, '--epochs', '1']);
    await runCommand('train:sesemi', [...sesemiArgs, '--epochs', '2', '--resume', out('sesemi-resumed')]);
    expect(epochRecords(out('sesemi-resumed')).map((r) => r.epoch)).toEqual([1, 2]);
    const probeArgs = [...tiny, '--net', await net(), '--blocks', 'conv1', '--batchSize', '8', '--outf', out('probe-resumed')];
    await runCommand('train:probe', [...probeArgs, '--epochs', '1']);
    await runCommand('train:probe', [...probeArgs, '--epochs', '2', '--resume', out('probe-resumed')]);
    expect(epochRecords(out('probe-resumed')).map((r) => r.epoch)).toEqual([1, 2]);
    const ganArgs = ['--dataroot', data, '--imageSize', '32', '--nz', '8', '--ngf', '8', '--ndf', '8', '--batchSize', '8', '--outf', out('dcgan-resumed')];
    await runCommand('train:dcgan', [...ganArgs, '--epochs', '1']);
    await runCommand('train:dcgan', [...ganArgs, '--epochs', '2', '--resume', out('dcgan-resumed')]);
    expect(epochRecords(out('dcgan-resumed')).map((r) => r.epoch)).toEqual([1, 2]);
    expect(readdirSync(out('dcgan-resumed'))).toContain('netD_epoch_2.safetensors');
  });

  it('train:sesemi: a labeled and a rotated unlabeled batch per step', async () => {
    const r = await sesemiRun();
    // An epoch is one pass over the 24 training + 12 validation images, 4 per step.
    expect(r.steps).toBe(9);
    const last = epochRecords(out('sesemi')).at(-1)!;
    expect(Number.isFinite(last.loss_supervised) && Number.isFinite(last.loss_rotation)).toBe(true);
  });

  it('train:dcgan writes sample grids and netG / netD checkpoints; train:gan-classifier reuses netD', async () => {
    const gan = ['--dataroot', data, '--imageSize', '32', '--nz', '8', '--ngf', '8', '--ndf', '8', '--batchSize', '8', '--verbIter', '1'];
    const r = (await runCommand('train:dcgan', [...gan, '--epochs', '1', '--outf', out('dcgan')])) as DcganResult;
    expect(r.steps).toBe(3);
    expect(Number.isFinite(r.lossD) && Number.isFinite(r.lossG)).toBe(true);
    const files = readdirSync(out('dcgan'));
    for (const f of ['real_samples.png', 'fake_samples_epoch_001.png', 'netG_epoch_1.safetensors', 'netD_epoch_1.safetensors']) expect(files).toContain(f);
    const c = (await runCommand('train:gan-classifier', [
      '--dataroot', data, '--imageSize', '32', '--netD', join(out('dcgan'), 'netD_epoch_1.safetensors'), '--epochs', '1', '--batchSize', '8', '--verbIter', '1', '--outf', out('gan-classifier'),
    ])) as ClassifyResult;
    expect(c.test.count).toBe(12);
  });

  it('train:student pseudo-labels with a teacher, trains and fine-tunes a student', async () => {
    await supervisedRun();
    const teacher = join(out('supervised'), 'net_epoch_1.safetensors');
    const r = (await runCommand('train:student', [
      ...tiny, ...nin3, '--teacher', teacher, '--topK', '2', '--topP', '3', '--trainSamples', '2', '--epochs', '1', '--finetuneEpochs', '1', '--batchSize', '4', '--outf', out('student'),
    ])) as StudentResult;
    expect(r.pseudoLabeled).toBe(6);
    expect(r.pseudoLabelAccuracy).toBeGreaterThanOrEqual(0);
    // The scoring step's ranking, kept in the run folder: 2 of each class's lines are the pseudo-labels.
    const ranking = JSON.parse(readFileSync(join(out('student'), 'score', 'ranking.json'), 'utf8')) as { topK: number; topP: number; files: string[] };
    expect(ranking).toMatchObject({ topK: 2, topP: 3, files: ['0-tshirt-top.jsonl', '1-trouser.jsonl', '7-sneaker.jsonl'] });
    expect(existsSync(join(out('student'), 'finetune', 'net_epoch_1.safetensors'))).toBe(true);
    // A second student reuses that ranking (--ranking) without a teacher, and takes the same 6 images.
    const again = (await runCommand('train:student', [
      ...tiny, ...nin3, '--ranking', join(out('student'), 'score'), '--topK', '2', '--trainSamples', '2', '--epochs', '1', '--finetuneEpochs', '1', '--batchSize', '4', '--outf', out('student-reuse'),
    ])) as StudentResult;
    expect([again.pseudoLabeled, again.pseudoLabelAccuracy]).toEqual([r.pseudoLabeled, r.pseudoLabelAccuracy]);
    expect(existsSync(join(out('student-reuse'), 'score'))).toBe(false);
  });

  it('train:probe, a step larger than the device memory: one message, no run folder', async () => {
    await expectStepTooLarge('train:probe', [...tiny, '--net', await net(), '--blocks', 'conv1', '--batchSize', '8', '--outf', out('probe-oom')]);
  });

  it('train:sesemi, a step larger than the device memory: one message, no run folder', async () => {
    await expectStepTooLarge('train:sesemi', [...tiny, ...nin3, '--trainSamples', '2', '--batchSize', '4', '--outf', out('sesemi-oom')]);
  });

  it('train:dcgan, a step larger than the device memory: one message, no run folder', async () => {
    await expectStepTooLarge('train:dcgan', ['--dataroot', data, '--imageSize', '32', '--nz', '8', '--ngf', '8', '--ndf', '8', '--batchSize', '8', '--outf', out('dcgan-oom')]);
  });

  it('train:student, a step larger than the device memory: one message before the teacher writes pseudo-labels', async () => {
    await supervisedRun();
    const teacher = join(out('supervised'), 'net_epoch_1.safetensors');
    await expectStepTooLarge('train:student', [...tiny, ...nin3, '--teacher', teacher, '--trainSamples', '2', '--batchSize', '4', '--outf', out('student-oom')]);
  });

  it('evaluate scores one checkpoint and an ensemble by averaged softmax', async () => {
    await supervisedRun();
    await sesemiRun();
    const a = join(out('supervised'), 'net_epoch_1.safetensors');
    const b = join(out('sesemi'), 'net_epoch_1.safetensors');
    const one = (await runCommand('evaluate', ['--dataroot', data, '--net', a])) as EvaluateResult;
    expect(one.count).toBe(12);
    const both = (await runCommand('evaluate', ['--dataroot', data, '--net', a, '--net', b])) as EvaluateResult;
    expect(both.perNet.map((p) => p.top1)).toEqual([one.top1, expect.any(Number)]);
    expect(both.top1).toBeGreaterThanOrEqual(0);
  });

  it('npm run experiment:fmnist chains the commands into a table and a plot, at the batch the memory holds (tiny settings, its own process)', () => {
    const outf = out('experiment');
    // A RotNet step of NIN-3 at 16 px takes about 31 MiB at two images and 9 MiB more per image:
    // 46 MiB holds 3 of the asked 4.
    const r = spawnSync(
      'npx',
      ['tsx', 'scripts/experiment.ts', '--dataroot', data, '--imageSize', '16', '--ninStages', '3', '--labels', '2', '--rotnetEpochs', '1', '--epochs', '1', '--epochSize', '8', '--batchSize', '4', '--outf', outf],
      { encoding: 'utf8', env: { ...process.env, DAWNET_QUIET: '1', DAWNET_MEMORY: '46MiB' } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('a RotNet step at --batchSize 4 does not fit the device memory; every run takes --batchSize 3, the largest that fits');
    expect(JSON.parse(readFileSync(join(outf, 'rotnet', 'args.json'), 'utf8'))).toMatchObject({ batchSize: 3 });
    const table = readFileSync(join(outf, 'results.md'), 'utf8');
    expect(table).toMatch(/\| 2 \| \d+\.\d % \| \d+\.\d % \|/);
    expect(table).toMatch(/\| all \| — \| \d+\.\d % \|/);
    expect(existsSync(join(outf, 'results.png'))).toBe(true);
  });

  it('leaves no GPU memory in use behind the commands', () => {
    expect(memory().bytesInUse).toBeLessThan(4 << 20);
  });
});

// PyTorch's own files as --net: the description is read from the state dict's names and shapes.
describe.skipIf(!hasTorch())('the commands on .pth state dicts written by torch', () => {
  let written = false;
  const pth = (name: string) => {
    if (!written) python('scripts/golden/interop.py', ['nets', '--classes', '3', '--dir', root]);
    written = true;
    return join(root, name);
  };

  it('train:finetune and evaluate take a torchvision resnet18 .pth', async () => {
    const net = pth('resnet18.pth');
    const r = (await runCommand('train:finetune', [...tiny, '--channels', '3', '--net', net, '--trainSamples', '4', '--epochs', '1', '--batchSize', '4', '--outf', out('finetune-pth')])) as ClassifyResult;
    expect(r.test.top1).toBeGreaterThanOrEqual(0);
    expect(readdirSync(out('finetune-pth'))).toContain('net_best.safetensors');
    const scored = (await runCommand('evaluate', ['--dataroot', data, '--imageSize', '16', '--net', net])) as EvaluateResult;
    expect(scored.count).toBe(12);
  });

  it("train:probe takes RotNet's reference NIN-3 checkpoint (_feature_blocks names)", async () => {
    const r = (await runCommand('train:probe', [...tiny, '--net', pth('nin3.pth'), '--blocks', 'conv1,conv2', '--trainSamples', '2', '--epochs', '1', '--batchSize', '4', '--outf', out('probe-pth')])) as ProbeResult;
    expect(Object.keys(r.blocks)).toEqual(['conv1', 'conv2']);
  });

  it("train:gan-classifier takes the DCGAN example's netD .pth", async () => {
    const args = ['--dataroot', data, '--imageSize', '64', '--netD', pth('netD.pth'), '--trainSamples', '2', '--epochs', '1', '--batchSize', '4', '--verbIter', '1', '--outf', out('gan-classifier-pth')];
    const r = (await runCommand('train:gan-classifier', args)) as ClassifyResult;
    expect(r.test.top1).toBeGreaterThanOrEqual(0);
  });
});
