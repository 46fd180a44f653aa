// The commands that take a checkpoint read it from disk once: its description (the model it
// holds) and its weights come from the same read, since a large one (RotNet's AlexNet) is
// hundreds of MiB. Counted at the one reader every checkpoint goes through (readTensorFile).
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as pth from '../src/checkpoint/pth.js';
import { runCommand } from '../src/cli/main.js';
import { commandSandbox, once } from './fixtures/sandbox.js';

const { data, out } = commandSandbox('dawnet-checkpoint-reads-', { train: 4, test: 2 });

const tiny = ['--dataroot', data, '--imageSize', '16', '--verbIter', '1', '--batchSize', '6', '--epochs', '1', '--epochSize', '6'];
// A classifier (3 classes), the --net of every command below.
const classifier = once(async () => {
  await runCommand('train:supervised', [...tiny, '--model', 'nin', '--ninStages', '3', '--outf', out('supervised')]);
  return join(out('supervised'), 'net_epoch_1.safetensors');
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** How many times `command` read `path` in full. */
async function readsOf(path: string, command: string, args: string[]): Promise<number> {
  const read = vi.spyOn(pth, 'readTensorFile');
  await runCommand(command, args);
  return read.mock.calls.filter(([p]) => p === path).length;
}

describe('a --net checkpoint is read once', () => {
  it.each([
    ['evaluate', ['--dataroot', data]],
    ['train:probe', [...tiny, '--blocks', 'conv2', '--outf', out('probe')]],
    ['train:finetune', [...tiny, '--outf', out('finetune')]],
  ])('%s', async (command, args) => {
    const net = await classifier();
    expect(await readsOf(net, command, ['--net', net, ...args])).toBe(1);
  });
});
