// Prints the adapter dawnet would use and its capabilities record, and checks that it runs a
// kernel; exits 1 if none works.
//   npm run device [-- --json] [-- --slug]   (DAWNET_ADAPTER / DAWNET_BACKEND choose among several)
//   --json adds the record as one JSON line; --slug prints only the adapter's file-name form.
import { F, init, shutdown, tensor } from '../src/index.js';
import { adapterSlug } from '../src/gpu/tuning.js';

if (process.argv.includes('--help')) {
  console.log('npm run device [-- --json] [-- --slug]: the adapter dawnet uses, its capabilities, and a test kernel.');
  process.exit(0);
}

try {
  const gpu = await init({ announce: false });
  const sum = await F.sum(tensor([1, 2, 3])).item();
  if (sum !== 6) throw new Error(`a test kernel computed ${sum} instead of 6`);
  if (process.argv.includes('--slug')) {
    console.log(adapterSlug(gpu.adapterName));
    shutdown();
    process.exit(0);
  }
  const l = gpu.limits;
  console.log(`${gpu.adapterName} (${gpu.isSoftware ? 'software' : 'hardware'})`);
  const c = gpu.caps;
  const subgroups = c.subgroupMax > 0 ? `subgroups ${c.subgroupMin}–${c.subgroupMax} lanes` : 'no subgroups';
  console.log(`  ${c.vendor || 'unknown vendor'} ${c.architecture}, ${subgroups}, shader-f16 ${c.shaderF16 ? 'yes' : 'no'}, timestamp queries ${c.timestampQuery ? 'yes' : 'no'}`);
  if (process.argv.includes('--json')) console.log(JSON.stringify(c));
  console.log(`  max buffer ${(l.maxBufferSize / 2 ** 20).toFixed(0)} MiB, max storage binding ${(l.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup storage ${l.maxComputeWorkgroupStorageSize} B`);
  shutdown();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
