// The other side of each peerRatio (peer ms / dawnet ms): the peer engines of bench/peers run in
// this process, on dawnet's adapter, over the workloads dawnet has just measured; and PyTorch's
// figures: the JSON lines bench/pytorch_bench.py printed on the same machine, or run now on its CPU.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineLabel, loadPeers, measurePeer, type Engine } from './peers/index.js';

/** One peer's median ms per workload name; null with a note where it did not run. */
export interface PeerRun {
  id: Engine | 'pytorch';
  label: string;
  adapter: string;
  results: Record<string, { ms: number | null; note?: string }>;
}

interface Named {
  name: string;
}

export async function comparePeers(measured: readonly Named[], engines: readonly Engine[], adapter: string, quick: boolean): Promise<PeerRun[]> {
  if (engines.length === 0) return [];
  const peers = await loadPeers();
  if (!peers) {
    process.stderr.write('peers: not installed (npm --prefix bench/peers ci); the report has no peerRatio\n');
    return [];
  }
  const names = new Set(measured.map((m) => m.name));
  const workloads = peers.workloads.filter((w) => names.has(w.name));
  const runs: PeerRun[] = [];
  for (const engine of workloads.length > 0 ? engines : []) {
    const peerAdapter = await peers.startEngine(engine);
    if (peerAdapter !== adapter) {
      process.stderr.write(`peers: ${engine} opened ${peerAdapter}, not ${adapter}; left out of the report\n`);
      continue;
    }
    const run: PeerRun = { id: engine, label: engineLabel(engine), adapter: peerAdapter, results: {} };
    for (const workload of workloads) {
      const r = await measurePeer(engine, workload, peerAdapter, quick ? 1 : undefined);
      const note = r.unsupported ? `unsupported: ${r.unsupported}` : r.error ? `failed: ${r.error}` : undefined;
      run.results[workload.name] = note === undefined ? { ms: r.ms } : { ms: null, note };
      process.stderr.write(`  ${engine} ${workload.name}: ${r.ms === null ? note : `${r.ms.toFixed(1)} ms`}\n`);
    }
    runs.push(run);
  }
  return runs;
}

/** bench/pytorch_bench.py's output: a header line {peer, device}, then {name, ms, …} per workload. */
export function parsePytorch(text: string, source: string, measured: readonly Named[]): PeerRun {
  const lines = text.split('\n').filter((l) => l.trim().startsWith('{'));
  const records = lines.map((l) => JSON.parse(l) as { peer?: string; device?: string; name?: string; ms?: number | null; note?: string });
  const header = records.find((r) => r.peer !== undefined && r.name === undefined);
  if (!header) throw new Error(`${source}: no header line {"peer": …, "device": …} (is it bench/pytorch_bench.py's output?)`);
  const names = new Set(measured.map((m) => m.name));
  const run: PeerRun = { id: 'pytorch', label: header.peer!, adapter: header.device ?? 'unknown device', results: {} };
  for (const r of records) {
    if (r.name === undefined || !names.has(r.name)) continue;
    run.results[r.name] = typeof r.ms === 'number' ? { ms: r.ms } : { ms: null, note: r.note ?? 'no result' };
  }
  return run;
}

export const readPytorch = (path: string, measured: readonly Named[]): PeerRun => parsePytorch(readFileSync(path, 'utf8'), path, measured);

/**
 * PyTorch on this machine's CPU, measured now, after dawnet's workloads (never beside them):
 * bench/pytorch_bench.py --device cpu under Debian's interpreter, which apt's python3-torch
 * installs into. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are dropped together, so that OpenBLAS
 * picks its kernels and blocking for this CPU.
 */
export function measurePytorchCpu(measured: readonly Named[], { quick, only }: { quick: boolean; only: string | null }): PeerRun {
  const python = process.env.DAWNET_PYTHON ?? '/usr/bin/python3';
  const script = join(dirname(fileURLToPath(import.meta.url)), 'pytorch_bench.py');
  const args = [script, '--device', 'cpu', ...(quick ? ['--quick'] : []), ...(only ? ['--only', only] : [])];
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  process.stderr.write(`pytorch: ${python} ${args.join(' ')}\n`);
  const run = spawnSync(python, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 });
  if (run.status !== 0) throw new Error(`bench/pytorch_bench.py failed (${run.status ?? run.signal}${run.error ? `: ${run.error.message}` : ''}); is python3-torch installed?`);
  return parsePytorch(run.stdout, 'bench/pytorch_bench.py', measured);
}
