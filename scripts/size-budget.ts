// The size budget: prints the lines of src/, models/ and kernels/ per folder and exits 1 when
// their sum passes BUDGET, so that growing the engine is a decision (raise the budget here and
// in README's layout section) rather than a drift. Run by .ci/run: `npm run size`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Lines of TypeScript and WGSL in src/ + models/ + kernels/. 15,200 when set; 19,000 after the
 * size ceiling and the GPU kernels; 24,000 once the seeds' recipes, the VAE pretexts, queue scoring
 * and data-parallel training came in (about 20,900: some 15 % headroom).
 */
const BUDGET = 24_000;
const ROOTS = ['src', 'models', 'kernels'];
const COUNTED = /\.(ts|wgsl)$/;

if (process.argv.includes('--help')) {
  process.stdout.write('Usage: npm run size\nPrints lines per folder of src/, models/ and kernels/; exits 1 above the budget.\n');
  process.exit(0);
}

const root = join(import.meta.dirname, '..');
const perFolder = new Map<string, number>();

function walk(dir: string): void {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (COUNTED.test(name)) {
      const folder = relative(root, dir);
      const lines = readFileSync(path, 'utf8').split('\n').length - 1;
      perFolder.set(folder, (perFolder.get(folder) ?? 0) + lines);
    }
  }
}

for (const r of ROOTS) walk(join(root, r));
const total = [...perFolder.values()].reduce((a, b) => a + b, 0);
for (const [folder, lines] of perFolder) process.stdout.write(`${`${folder}/`.padEnd(18)}${String(lines).padStart(6)}\n`);
process.stdout.write(`${'total'.padEnd(18)}${String(total).padStart(6)} of ${BUDGET} (${((100 * total) / BUDGET).toFixed(0)} %)\n`);
if (total > BUDGET) {
  process.stderr.write(`size budget: src/ + models/ + kernels/ hold ${total} lines, over the budget of ${BUDGET}; shrink the change, or raise BUDGET in scripts/size-budget.ts and README's layout section\n`);
  process.exit(1);
}
