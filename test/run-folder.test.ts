// A run folder holds one run: a second run into it is refused and changes nothing, --resume
// continues only that folder's run, the default folder is numbered, a lock stops two live runs,
// a torn metrics line is repaired, SIGTERM and SIGINT save and exit 143 / 130 (after the step in
// flight, not at the next report; a second one, or one before training, quits at once), and
// evaluate compares class names.
// Commands run in this process (pipelines shared) on 3 classes of 8 built-in images.
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { explainError } from '../src/cli/errors.js';
import { runCommand } from '../src/cli/main.js';
import { BUILTIN_ROOT } from '../src/data/builtin.js';
import { chooseRunFolder, Run, RunFolderError } from '../src/train/run.js';

const root = mkdtempSync(join(tmpdir(), 'dawnet-run-folder-'));
const data = join(root, 'data');
const previousCache = process.env.DAWNET_CACHE;

beforeAll(() => {
  process.env.DAWNET_CACHE = join(root, 'cache');
  for (const [split, count] of [['train', 8], ['test', 4]] as const) {
    for (const cls of ['0-tshirt-top', '1-trouser', '7-sneaker']) {
      mkdirSync(join(data, split, cls), { recursive: true });
      for (const f of readdirSync(join(BUILTIN_ROOT, split, cls)).sort().slice(0, count)) copyFileSync(join(BUILTIN_ROOT, split, cls, f), join(data, split, cls, f));
    }
  }
});

afterAll(() => {
  if (previousCache === undefined) delete process.env.DAWNET_CACHE;
  else process.env.DAWNET_CACHE = previousCache;
  rmSync(root, { recursive: true, force: true });
});

const rotnet = (outf: string, epochs: number, extra: string[] = []) => [
  '--dataroot', data, '--imageSize', '16', '--model', 'nin', '--ninStages', '3', '--batchSize', '4', '--epochSize', '8', '--verbIter', '1', '--epochs', String(epochs), '--outf', outf, ...extra,
];

/** Every file of a folder with its bytes and modification time. */
function snapshot(dir: string): Record<string, { bytes: string; mtimeMs: number }> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, { bytes: readFileSync(join(dir, f)).toString('base64'), mtimeMs: statSync(join(dir, f)).mtimeMs }]));
}

const epochs = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; epoch: number }).filter((r) => r.kind === 'epoch').map((r) => r.epoch);

describe('one run per folder', () => {
  const first = join(root, 'runs', 'first');
  // One epoch of RotNet in `first`, made by whichever test needs it first (each test runs alone too).
  let firstRun: Promise<unknown> | null = null;
  const ensureFirst = () => (firstRun ??= runCommand('train:rotnet', rotnet(first, 1)));

  it('running a command twice into one --outf is refused and changes nothing of the first run', async () => {
    await ensureFirst();
    const before = snapshot(first);
    expect(Object.keys(before)).toContain('net_best.safetensors');
    const again = runCommand('train:rotnet', rotnet(first, 1, ['--lr', '0.5']));
    await expect(again).rejects.toThrow(RunFolderError);
    await expect(again).rejects.toThrow(`${first} already holds a train:rotnet run; continue it with --resume ${first}, or pass a new --outf (nothing in ${first} was changed)`);
    expect(snapshot(first)).toEqual(before);
  });

  it('--resume of the folder continues its own run; a run continued elsewhere keeps its own best', async () => {
    await ensureFirst();
    await runCommand('train:rotnet', rotnet(first, 2, ['--resume', first]));
    expect(epochs(first)).toEqual([1, 2]);
    const stray = join(root, 'runs', 'stray');
    mkdirSync(stray, { recursive: true });
    writeFileSync(join(stray, 'notes.txt'), 'mine');
    await expect(runCommand('train:rotnet', rotnet(stray, 3, ['--resume', first]))).rejects.toThrow(`${stray} already holds 1 file(s) (notes.txt)`);
    await expect(runCommand('train:dcgan', ['--dataroot', data, '--imageSize', '32', '--batchSize', '8', '--resume', first, '--outf', first])).rejects.toThrow(
      `${first} holds a train:rotnet run, not a train:dcgan run; --resume continues a run of the same command`,
    );
    // Into a fresh folder, the continued run starts its own best: its first epoch is written as net_best.
    const elsewhere = join(root, 'runs', 'elsewhere');
    await runCommand('train:rotnet', rotnet(elsewhere, 3, ['--resume', join(first, 'net_epoch_2.safetensors')]));
    expect(readdirSync(elsewhere)).toEqual(expect.arrayContaining(['net_epoch_3.safetensors', 'net_best.safetensors']));
  });

  it('the default folder is runs/<command>, then runs/<command>-2, …; --resume alone writes to the resumed folder', () => {
    const cwd = process.cwd();
    process.chdir(mkdtempSync(join(root, 'cwd-')));
    try {
      expect(chooseRunFolder('train:rotnet', {})).toBe('runs/rotnet');
      mkdirSync('runs/rotnet', { recursive: true });
      expect(chooseRunFolder('train:rotnet', {})).toBe('runs/rotnet');
      writeFileSync('runs/rotnet/args.json', '{"command": "train:rotnet"}\n');
      expect(chooseRunFolder('train:rotnet', {})).toBe('runs/rotnet-2');
      expect(chooseRunFolder('train:rotnet', { resume: 'runs/rotnet' })).toBe('runs/rotnet');
      writeFileSync('runs/rotnet/net_epoch_1.safetensors', '');
      expect(chooseRunFolder('train:rotnet', { resume: 'runs/rotnet/net_epoch_1.safetensors' })).toBe('runs/rotnet');
      expect(() => chooseRunFolder('train:rotnet', { outf: 'runs/rotnet' })).toThrow(/already holds a train:rotnet run/);
      // A stage's checkpoint inside the folder (train:student's pretrain/) continues the folder's run.
      mkdirSync('runs/rotnet/pretrain');
      writeFileSync('runs/rotnet/pretrain/net_epoch_1.safetensors', '');
      expect(chooseRunFolder('train:student', { outf: 'runs/rotnet', resume: 'runs/rotnet/pretrain/net_epoch_1.safetensors' })).toBe('runs/rotnet');
      expect(() => chooseRunFolder('train:rotnet', { resume: 'runs/nowhere' })).toThrow('--resume: runs/nowhere does not exist');
      expect(() => chooseRunFolder('train:rotnet', { outf: ' ' })).toThrow('--outf is empty');
    } finally {
      process.chdir(cwd);
    }
  });

  it('a lock stops a second live run in the folder; a dead run’s lock is taken over', () => {
    const dir = join(root, 'locked');
    mkdirSync(dir);
    writeFileSync(join(dir, '.lock'), `${process.ppid}\n`);
    expect(() => new Run(dir, 'test', {})).toThrow(`${dir} is in use by another run (process ${process.ppid}); wait for it to finish or pass another --outf`);
    writeFileSync(join(dir, '.lock'), `${2 ** 22 + 777}\n`);
    const run = new Run(dir, 'test', {});
    expect(readFileSync(join(dir, '.lock'), 'utf8')).toBe(`${process.pid}\n`);
    expect(() => new Run(dir, 'test', { resume: dir })).toThrow(/is in use by another run/);
    run.close();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('a torn last metrics line is dropped with a warning when the run resumes; a damaged earlier line is named', () => {
    const dir = join(root, 'torn');
    mkdirSync(dir);
    writeFileSync(join(dir, 'args.json'), '{"command": "test"}\n');
    writeFileSync(join(dir, 'metrics.jsonl'), '{"kind":"epoch","epoch":1,"loss":1}\n{"kind":"step","ep');
    const logged: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => logged.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      new Run(dir, 'test', { resume: dir }).close();
    } finally {
      process.stderr.write = write;
    }
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toBe('{"kind":"epoch","epoch":1,"loss":1}\n');
    expect(logged.join('')).toMatch(/warning: dropped the torn last line of .*metrics\.jsonl/);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"kind":"epo\n{"kind":"epoch","epoch":2}\n');
    expect(() => new Run(dir, 'test', { resume: dir })).toThrow(`${join(dir, 'metrics.jsonl')}: line 1 is not JSON; delete that line (or the file) and resume again`);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('an --outf below a file is one line naming it', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, '');
    let caught: unknown;
    await runCommand('train:rotnet', rotnet(join(file, 'run'), 1)).catch((err: unknown) => (caught = err));
    expect(explainError(caught).message).toBe(`error: ${join(file, 'run')}: part of this path is a file, not a folder`);
  });
});

describe('class names', () => {
  it('evaluate refuses data whose class names differ from the model’s', async () => {
    const outf = join(root, 'runs', 'supervised');
    await runCommand('train:supervised', ['--dataroot', data, '--imageSize', '16', '--model', 'nin', '--ninStages', '3', '--trainSamples', '4', '--epochs', '1', '--batchSize', '4', '--outf', outf]);
    const renamed = join(root, 'renamed');
    for (const split of ['train', 'test']) {
      for (const [from, to] of [['0-tshirt-top', 'bird'], ['1-trouser', 'dog'], ['7-sneaker', 'frog']]) {
        mkdirSync(join(renamed, split), { recursive: true });
        renameSync(join(data, split, from!), join(renamed, split, to!));
      }
    }
    const net = join(outf, 'net_epoch_1.safetensors');
    try {
      const scored = runCommand('evaluate', ['--dataroot', renamed, '--net', net]);
      await expect(scored).rejects.toThrow(CheckpointError);
      await expect(scored).rejects.toThrow(`${net} was trained on the classes [0-tshirt-top, 1-trouser, 7-sneaker], but the test split of ${renamed} has [bird, dog, frog]`);
    } finally {
      for (const split of ['train', 'test']) {
        for (const [from, to] of [['0-tshirt-top', 'bird'], ['1-trouser', 'dog'], ['7-sneaker', 'frog']]) renameSync(join(renamed, split, to!), join(data, split, from!));
      }
    }
  });
});

describe('signals', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s finishes the step, saves, and exits %i (its own process)', async (signal, code) => {
    const outf = join(root, 'runs', signal);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train:rotnet', ...rotnet(outf, 50, ['--maxIters', '1000'])], { env: { ...process.env, DAWNET_QUIET: '1' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/step 1\/2/.test(stderr) && child.exitCode === null && !child.killed) child.kill(signal);
    });
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(status, stderr).toBe(code);
    expect(stderr).toContain(`interrupted (${signal}): stopping after this step; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit now`);
    expect(stderr).not.toMatch(/\n\s+at /);
    const saved = readdirSync(outf);
    expect(saved.some((f) => f === 'net_last.safetensors' || /^net_epoch_\d+\.safetensors$/.test(f))).toBe(true);
    expect(saved).not.toContain('.lock');
  });

  // Six steps an epoch and no report inside one (--verbIter 1000): a signal can only be seen
  // between steps, not at a readback. One epoch is trained here, then resumed in its own process.
  const steps = 6;
  const paced = (outf: string, extra: string[] = []) => [
    '--dataroot', data, '--imageSize', '16', '--model', 'nin', '--ninStages', '3', '--batchSize', '8', '--epochSize', String(8 * steps), '--verbIter', '1000', '--outf', outf, ...extra,
  ];
  const pacedBase = join(root, 'runs', 'paced');
  let pacedRun: Promise<unknown> | null = null;
  /** A copy of the one-epoch run, for a test to resume and interrupt. */
  const pacedCopy = async (name: string) => {
    await (pacedRun ??= runCommand('train:rotnet', paced(pacedBase, ['--epochs', '1'])));
    const outf = join(root, 'runs', name);
    cpSync(pacedBase, outf, { recursive: true });
    return outf;
  };
  /** Resumes `outf` for 50 epochs in its own process; `onOutput` sees stderr so far and may signal it. */
  const resumeInChild = async (outf: string, onOutput: (stderr: string, signal: (s: NodeJS.Signals) => void) => void) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train:rotnet', ...paced(outf, ['--epochs', '50', '--resume', outf])], { env: { ...process.env, DAWNET_QUIET: '1' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onOutput(stderr, (s) => child.exitCode === null && child.kill(s));
    });
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { status, stderr };
  };

  it('SIGINT stops a resumed run after the step in flight, not at its next report, and its checkpoint resumes (its own process)', async () => {
    const outf = await pacedCopy('paced-once');
    let sent = false;
    // The run resumes at step 6 and runs steps 7–12 with no readback: once the line is out, the signal is pending before its first step.
    const { status, stderr } = await resumeInChild(outf, (text, signal) => {
      if (!sent && text.includes(`resumed from epoch 1, step ${steps}`)) {
        sent = true;
        signal('SIGINT');
      }
    });
    expect(status, stderr).toBe(130);
    // Step 7 was in flight, step 8 at most already queued behind it (before, the loop ran past the epoch's report at step 12).
    const last = join(outf, 'net_last.safetensors');
    const { step } = await loadCheckpoint(last);
    expect(step).toBeGreaterThanOrEqual(steps + 1);
    expect(step).toBeLessThanOrEqual(steps + 2);
    expect(stderr).toContain('interrupted (SIGINT): stopping after this step; Ctrl-C again to quit now');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).toContain(`stopped by SIGINT after step ${step}; continue with --resume ${outf}`);
    expect(readdirSync(outf)).not.toContain('.lock');
    const resumed = (await runCommand('train:rotnet', paced(outf, ['--epochs', '50', '--resume', last, '--maxIters', String(step! + 1)]))) as { steps: number };
    expect(resumed.steps).toBe(step! + 1);
  });

  it('a second SIGINT while the first is honoured quits at once with 130, keeping what was written (its own process)', async () => {
    const outf = await pacedCopy('paced-twice');
    const before = readFileSync(join(outf, 'net_epoch_1.safetensors'));
    let sent = 0;
    const { status, stderr } = await resumeInChild(outf, (text, signal) => {
      const next = sent === 0 ? `resumed from epoch 1, step ${steps}` : 'stopping after this step';
      // The first is handled when its line is out; the step it waits for is still on the GPU.
      if (sent < 2 && text.includes(next)) {
        sent += 1;
        signal('SIGINT');
      }
    });
    expect(status, stderr).toBe(130);
    expect(stderr).toContain('interrupted again (SIGINT): quitting now; checkpoints already written are kept');
    expect(stderr).not.toContain('stopped (interrupted)');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(outf, 'net_epoch_1.safetensors')).equals(before)).toBe(true);
    expect(readdirSync(outf)).not.toContain('.lock');
  });

  it('SIGINT while the images are packed, before any step, quits at once with 130 and says so (its own process)', async () => {
    const outf = join(root, 'runs', 'packing');
    // A cache of its own, so that the folder is packed in this process.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train:rotnet', ...rotnet(outf, 1)], { env: { ...process.env, DAWNET_QUIET: '1', DAWNET_CACHE: join(root, 'cache-packing') } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/building the packed cache/.test(stderr) && child.exitCode === null && !child.killed) child.kill('SIGINT');
    });
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(status, stderr).toBe(130);
    expect(stderr).toContain('interrupted (SIGINT): no training step is running, so quitting now');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(outf, 'net_last.safetensors'))).toBe(false);
  });

  it('no GPU adapter is one error with what to install, exit 1, no stack trace (its own process)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train:rotnet', '--epochs', '1', '--outf', join(root, 'runs', 'no-adapter')], {
      env: { ...process.env, DAWNET_ADAPTER: 'no-such-adapter', DAWNET_QUIET: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(status, stderr).toBe(1);
    expect(stderr).toMatch(/^error: cannot open a GPU device: No WebGPU adapter was found\.$/m);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(root, 'runs', 'no-adapter'))).toBe(false);
  });
});
