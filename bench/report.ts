// Turns measurements into figures and files: GFLOP/s, GB/s, images/s and peakFraction (against the
// FMA peak for FLOP-counted work, the copy bandwidth for byte-counted work, both measured in the
// same run), peerRatio per peer, a markdown table on stdout, and bench/results/<name>.{json,md}.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PeerRun } from './compare.js';
import type { Measurement } from './harness.js';

/** The device's ceilings, each from the fastest of its runs. */
export interface Ceilings {
  fmaPeakGflops: number;
  /** The faster of the two copies: what the GB/s workloads are compared with. */
  copyGBs: number;
  copyBufferGBs: number;
  copyKernelGBs: number;
}

export interface Report {
  adapter: string;
  software: boolean;
  date: string;
  host: string;
  quick: boolean;
  ceilings: Ceilings;
  peers: PeerRun[];
  measurements: Measurement[];
}

interface Figures {
  gflops?: number;
  gbps?: number;
  imagesPerSecond?: number;
  peakFraction?: number;
}

function figures(m: Measurement, ceilings: Ceilings): Figures {
  const out: Figures = {};
  if (m.flops !== undefined) out.gflops = m.flops / m.ms / 1e6;
  if (m.bytes !== undefined) out.gbps = m.bytes / m.ms / 1e6;
  if (m.images !== undefined) out.imagesPerSecond = (1000 * m.images) / m.ms;
  if (out.gflops !== undefined) out.peakFraction = out.gflops / ceilings.fmaPeakGflops;
  else if (out.gbps !== undefined) out.peakFraction = out.gbps / ceilings.copyGBs;
  return out;
}

const fixed = (x: number | undefined, digits: number): string => (x === undefined ? '' : x.toFixed(digits));
const count = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2));
const percent = (x: number | undefined): string => (x === undefined ? '' : `${(100 * x).toFixed(1)} %`);

/** One stderr line as each workload finishes. */
export function printProgress(m: Measurement, ceilings: Ceilings): void {
  const f = figures(m, ceilings);
  const rates = [
    f.gflops !== undefined ? `${f.gflops.toFixed(2)} GFLOP/s` : '',
    f.gbps !== undefined ? `${f.gbps.toFixed(2)} GB/s` : '',
    f.imagesPerSecond !== undefined ? `${count(f.imagesPerSecond)} images/s` : '',
    f.peakFraction !== undefined ? `${percent(f.peakFraction)} of peak` : '',
  ].filter(Boolean);
  process.stderr.write(`  ${m.name}: ${m.ms.toFixed(2)} ms${rates.length ? `, ${rates.join(', ')}` : ''}\n`);
}

/** The JSON form: one object per workload, with every peer's ms and ratio. */
function toJson(report: Report): object {
  return {
    adapter: report.adapter,
    software: report.software,
    date: report.date,
    host: report.host,
    quick: report.quick,
    fmaPeakGflops: report.ceilings.fmaPeakGflops,
    copyBandwidthGBs: report.ceilings.copyGBs,
    copyBufferToBufferGBs: report.ceilings.copyBufferGBs,
    copyKernelGBs: report.ceilings.copyKernelGBs,
    peers: report.peers.map(({ id, label, adapter }) => ({ id, name: label, adapter })),
    workloads: report.measurements.map((m) => ({
      name: m.name,
      family: m.family,
      shape: m.shape,
      ms: m.ms,
      samples: m.samples.map((s) => Number(s.toFixed(3))),
      ...figures(m, report.ceilings),
      ...(m.note ? { note: m.note } : {}),
      adapter: report.adapter,
      peers: report.peers.flatMap((p) => {
        const r = p.results[m.name];
        if (!r) return [];
        return [{ peer: p.label, id: p.id, ms: r.ms, peerRatio: r.ms === null ? null : r.ms / m.ms, ...(r.note ? { note: r.note } : {}) }];
      }),
    })),
  };
}

function markdownTable(header: string[], rows: string[][], leftColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function toMarkdown(report: Report): string {
  const { ceilings, peers } = report;
  const lines = [
    `# dawnet benchmarks${report.quick ? ' (quick: one timed run each, not a measurement)' : ''}`,
    '',
    `- adapter: **${report.adapter}**${report.software ? ' (software)' : ''}; ${report.host}; ${report.date}`,
    `- FMA peak: **${ceilings.fmaPeakGflops.toFixed(1)} GFLOP/s** (kernels/peak.wgsl); copy bandwidth: **${ceilings.copyGBs.toFixed(2)} GB/s** ` +
      `(bytes read + written, the faster of copyBufferToBuffer, ${ceilings.copyBufferGBs.toFixed(2)} GB/s, and a copy kernel, ${ceilings.copyKernelGBs.toFixed(2)} GB/s)`,
    '- peakFraction: GFLOP/s over the FMA peak, or GB/s over the copy bandwidth, both measured in this run (fastest of 10 runs)',
    '- median of the timed runs after one untimed warm-up; each timed run ends when the GPU has finished',
  ];
  if (peers.length > 0) {
    lines.push(`- peers: ${peers.map((p) => `${p.label} on ${p.adapter}`).join('; ')}; each cell is the peer's ms (peerRatio = peer ms / dawnet ms, above 1 when dawnet is faster)`);
  }
  const header = ['workload', 'shape', 'median ms', 'GFLOP/s', 'GB/s', 'images/s', 'peakFraction', ...peers.map((p) => p.label)];
  // Workloads that share a note are listed together under it.
  const notes = new Map<string, string[]>();
  const note = (text: string, name: string) => notes.set(text, [...(notes.get(text) ?? []), name]);
  const rows = report.measurements.map((m) => {
    const f = figures(m, ceilings);
    if (m.note) note(m.note, m.name);
    const peerCells = peers.map((p) => {
      const r = p.results[m.name];
      if (!r) return '';
      if (r.ms === null) {
        note(`${p.label}: ${r.note}`, m.name);
        return r.note?.startsWith('unsupported') ? 'unsupported' : 'failed';
      }
      return `${r.ms.toFixed(1)} (${(r.ms / m.ms).toFixed(2)}×)`;
    });
    return [m.name, m.shape, fixed(m.ms, 2), fixed(f.gflops, 2), fixed(f.gbps, 2), count(f.imagesPerSecond), fixed(f.peakFraction, 3), ...peerCells];
  });
  lines.push('', markdownTable(header, rows, 2));
  if (notes.size > 0) lines.push('', ...[...notes].map(([text, names]) => `- ${names.join(', ')}: ${text}`));
  return `${lines.join('\n')}\n`;
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Through a temporary file and a rename (bench/results/*.tmp is git-ignored). */
function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Prints the markdown table; with a name, writes bench/results/<name>.json and .md as well. */
export function writeReport(report: Report, name: string | null): void {
  const markdown = toMarkdown(report);
  console.log(`\n${markdown}`);
  if (name === null) return;
  mkdirSync(RESULTS, { recursive: true });
  const base = join(RESULTS, name);
  writeAtomic(`${base}.json`, `${JSON.stringify(toJson(report), null, 2)}\n`);
  writeAtomic(`${base}.md`, markdown);
  process.stderr.write(`wrote ${relative(process.cwd(), base)}.json and .md\n`);
}
