// Opens the device once for the whole suite and adds toBeAllClose.
import { afterAll, beforeAll, expect } from 'vitest';
import { init } from '../src/index.js';
import { allClose } from './helpers.js';

beforeAll(async () => {
  await init({ announce: false });
});

// The device stays open across files (isolate: false); the process exit releases it.
afterAll(() => {});

interface CloseOptions {
  rtol: number;
  atol: number;
}

expect.extend({
  toBeAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, options: CloseOptions) {
    const report = allClose(actual, expected, options);
    return {
      pass: report.ok,
      message: () => report.message,
    };
  },
});

declare module 'vitest' {
  interface Assertion<T> {
    toBeAllClose(expected: ArrayLike<number>, options: CloseOptions): T;
  }
}
