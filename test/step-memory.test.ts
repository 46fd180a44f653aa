// The device-memory check: a step measured on 2 and 4 images, scaled to the batch, against
// DAWNET_MEMORY; the message names the need, the memory and the largest batch that fits, and
// batchThatFits (experiment:fmnist's batch) lowers a batch to it.
import { afterEach, describe, expect, it } from 'vitest';
import { zeros } from '../src/index.js';
import { batchThatFits, DeviceMemoryError, requireStepFits } from '../src/train/step-memory.js';

const MiB = 2 ** 20;
/** A step holding 1 MiB per image at once. */
const step = (n: number): void => {
  zeros([n, MiB / 4]);
};

describe('requireStepFits', () => {
  const previous = process.env.DAWNET_MEMORY;
  afterEach(() => {
    if (previous === undefined) delete process.env.DAWNET_MEMORY;
    else process.env.DAWNET_MEMORY = previous;
  });

  it('passes a batch that fits and names the largest batch that fits otherwise', () => {
    process.env.DAWNET_MEMORY = '10MiB';
    expect(() => requireStepFits(step, 8)).not.toThrow();
    expect(() => requireStepFits(step, 32)).toThrow(DeviceMemoryError);
    expect(() => requireStepFits(step, 32)).toThrow('a training step at --batchSize 32 needs about 32.0 MiB of device memory (measured on 2 and 4 images, scaled), and the device has 10.0 MiB (DAWNET_MEMORY): lower --batchSize to 10 or less. Nothing was written.');
  });

  it('batchThatFits keeps a batch that fits and lowers one that does not to the largest that fits', () => {
    process.env.DAWNET_MEMORY = '10MiB';
    expect(batchThatFits(step, 8)).toBe(8);
    expect(batchThatFits(step, 32)).toBe(10);
    expect(() => requireStepFits(step, batchThatFits(step, 32))).not.toThrow();
    process.env.DAWNET_MEMORY = '512KiB';
    expect(batchThatFits(step, 32)).toBe(1);
  });
});
