// Tests share one process and one GPU device, so each pipeline is compiled once for the whole
// suite (on lavapipe every new pipeline is an LLVM compile of a second or more).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    isolate: false,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
