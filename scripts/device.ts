// Prints the adapter dawnet would use and checks that it runs a kernel; exits 1 if none works.
//   npm run device            (DAWNET_ADAPTER / DAWNET_BACKEND choose among several)
import { F, init, shutdown, tensor } from '../src/index.js';

try {
  const gpu = await init({ announce: false });
  const sum = await F.sum(tensor([1, 2, 3])).item();
  if (sum !== 6) throw new Error(`a test kernel computed ${sum} instead of 6`);
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
