// The whole benchmark suite in one process: the FMA peak and copy bandwidth, then every family
// (matmul, conv, train, data), then the peers; writes bench/results/latest.json and latest.md.
//   npm run bench [-- --quick] [-- --only <text>] [-- --peers [tfjs|jax] | --no-peers] [-- --save <device>]
// One family alone: npm run bench:matmul, bench:conv, bench:train, bench:data.
import { convBench } from './conv.bench.js';
import { dataBench } from './data.bench.js';
import { runBenchmarks } from './harness.js';
import { matmulBench } from './matmul.bench.js';
import { trainBench } from './train.bench.js';

await runBenchmarks([matmulBench, convBench, trainBench, dataBench], { suite: true });
