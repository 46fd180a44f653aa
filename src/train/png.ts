// Pictures a training run leaves behind: line plots of its curves and grids of images (as
// torchvision.utils.save_image), drawn into RGBA pixels and written as PNG with pngjs. Text is a
// built-in 3×5 pixel font (digits, capitals, a little punctuation), so no font files are needed.
import { PNG } from 'pngjs';

type RGB = readonly [number, number, number];

/** 3×5 glyphs, five rows of three bits each, most significant bit on the left. */
const GLYPHS: Record<string, readonly number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 2, 2], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  A: [2, 5, 7, 5, 5], B: [6, 5, 6, 5, 6], C: [3, 4, 4, 4, 3], D: [6, 5, 5, 5, 6], E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4], G: [3, 4, 5, 5, 3], H: [5, 5, 7, 5, 5], I: [7, 2, 2, 2, 7], J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5], L: [4, 4, 4, 4, 7], M: [5, 7, 7, 5, 5], N: [6, 5, 5, 5, 5], O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4], Q: [2, 5, 5, 6, 3], R: [6, 5, 6, 5, 5], S: [3, 4, 2, 1, 6], T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7], V: [5, 5, 5, 5, 2], W: [5, 5, 7, 7, 5], X: [5, 5, 2, 5, 5], Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7], '.': [0, 0, 0, 0, 2], '-': [0, 0, 7, 0, 0], '%': [5, 1, 2, 4, 5], ':': [0, 2, 0, 2, 0],
  '/': [1, 1, 2, 4, 4], _: [0, 0, 0, 0, 7], '(': [1, 2, 2, 2, 1], ')': [4, 2, 2, 2, 4], '+': [0, 2, 7, 2, 0],
  '=': [0, 7, 0, 7, 0], ' ': [0, 0, 0, 0, 0],
};

/** Distinct colours for series (Tableau 10). */
export const PALETTE: readonly RGB[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

/** An RGBA canvas with the few drawing operations plots need. */
export class Canvas {
  readonly pixels: Buffer;

  constructor(readonly width: number, readonly height: number, background: RGB = [255, 255, 255]) {
    this.pixels = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) this.pixels.set([...background, 255], i * 4);
  }

  set(x: number, y: number, [r, g, b]: RGB): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    const i = (yi * this.width + xi) * 4;
    this.pixels[i] = r;
    this.pixels[i + 1] = g;
    this.pixels[i + 2] = b;
    this.pixels[i + 3] = 255;
  }

  rect(x0: number, y0: number, w: number, h: number, color: RGB): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.set(x, y, color);
  }

  /** A line `thickness` pixels wide (Bresenham-like steps along the longer axis). */
  line(x0: number, y0: number, x1: number, y1: number, color: RGB, thickness = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const half = Math.floor(thickness / 2);
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      for (let dy = -half; dy < thickness - half; dy++) for (let dx = -half; dx < thickness - half; dx++) this.set(x + dx, y + dy, color);
    }
  }

  /** Upper-cased text with its top-left corner at (x, y); returns the width drawn. */
  text(x: number, y: number, text: string, color: RGB, scale = 2): number {
    let cx = x;
    for (const ch of text.toUpperCase()) {
      const rows = GLYPHS[ch] ?? GLYPHS[' ']!;
      rows.forEach((bits, row) => {
        for (let col = 0; col < 3; col++) if (bits & (4 >> col)) this.rect(cx + col * scale, y + row * scale, scale, scale, color);
      });
      cx += 4 * scale;
    }
    return cx - x;
  }

  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    this.pixels.copy(png.data);
    return PNG.sync.write(png);
  }
}

export const textWidth = (text: string, scale = 2): number => text.length * 4 * scale;

export interface Series {
  name: string;
  /** [x, y] points; non-finite y values are left out. */
  points: readonly (readonly [number, number])[];
}

export interface Panel {
  title: string;
  series: readonly Series[];
  /** Fixed y range (accuracies in [0, 1]); by default the data's, padded. */
  yRange?: readonly [number, number];
  xLabel?: string;
}

/** A readable tick value: few digits, a unit when large. */
function tick(v: number): string {
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}K`;
  return String(Number(v.toPrecision(3)));
}

function drawPanel(c: Canvas, x0: number, y0: number, w: number, h: number, panel: Panel): void {
  const black: RGB = [40, 40, 40];
  const grid: RGB = [225, 225, 225];
  const points = panel.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const left = x0 + 64;
  const top = y0 + 40 + 14 * Math.ceil(panel.series.length / 3);
  const right = x0 + w - 16;
  const bottom = y0 + h - 36;
  c.text(x0 + (w - textWidth(panel.title)) / 2, y0 + 8, panel.title, black);
  panel.series.forEach((s, i) => {
    const lx = x0 + 16 + (i % 3) * Math.floor((w - 32) / 3);
    const ly = y0 + 28 + 14 * Math.floor(i / 3);
    c.rect(lx, ly + 3, 12, 4, PALETTE[i % PALETTE.length]!);
    c.text(lx + 16, ly, s.name, black);
  });
  if (points.length === 0) {
    c.text(left + 8, (top + bottom) / 2, 'NO DATA YET', black);
    return;
  }
  let [ylo, yhi] = panel.yRange ?? [Math.min(...points.map(([, y]) => y)), Math.max(...points.map(([, y]) => y))];
  if (!panel.yRange) {
    const pad = (yhi - ylo) * 0.05 || Math.abs(yhi) * 0.05 || 1;
    ylo -= pad;
    yhi += pad;
  }
  let xlo = Math.min(...points.map(([x]) => x));
  let xhi = Math.max(...points.map(([x]) => x));
  if (xhi === xlo) [xlo, xhi] = [xlo - 1, xhi + 1];
  const px = (x: number) => left + ((x - xlo) / (xhi - xlo)) * (right - left);
  const py = (y: number) => bottom - ((y - ylo) / (yhi - ylo)) * (bottom - top);
  for (let k = 0; k <= 4; k++) {
    const v = ylo + ((yhi - ylo) * k) / 4;
    c.line(left, py(v), right, py(v), grid);
    const label = tick(v);
    c.text(left - 6 - textWidth(label), py(v) - 5, label, black);
  }
  for (let k = 0; k <= 4; k++) {
    const v = xlo + ((xhi - xlo) * k) / 4;
    c.line(px(v), bottom, px(v), bottom + 4, black);
    const label = tick(v);
    c.text(px(v) - textWidth(label) / 2, bottom + 8, label, black);
  }
  c.line(left, top, left, bottom, black);
  c.line(left, bottom, right, bottom, black);
  if (panel.xLabel) c.text(right - textWidth(panel.xLabel), bottom + 22, panel.xLabel, black);
  panel.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter(([, y]) => Number.isFinite(y));
    for (let k = 1; k < pts.length; k++) c.line(px(pts[k - 1]![0]), py(pts[k - 1]![1]), px(pts[k]![0]), py(pts[k]![1]), color, 2);
    if (pts.length === 1) c.rect(px(pts[0]![0]) - 2, py(pts[0]![1]) - 2, 5, 5, color);
  });
}

/** Panels side by side, each 480 × 360, as one PNG. */
export function plotPng(panels: readonly Panel[]): Buffer {
  const w = 480;
  const h = 360;
  const c = new Canvas(w * panels.length, h);
  panels.forEach((p, i) => drawPanel(c, i * w, 0, w, h, p));
  return c.toPng();
}

export interface GridOptions {
  /** Images per row (torchvision's nrow). Default 8. */
  nrow?: number;
  padding?: number;
  /** Pixel values mapped to 0…255: [lo, hi]; default the batch's own min and max (normalize=True). */
  range?: readonly [number, number];
}

/** An (N, C, H, W) float batch (C = 1 or 3) as a grid of images, like torchvision's make_grid. */
export function imageGridPng(data: Float32Array, shape: readonly number[], { nrow = 8, padding = 2, range }: GridOptions = {}): Buffer {
  const [n, ch, h, w] = shape as [number, number, number, number];
  if (shape.length !== 4 || (ch !== 1 && ch !== 3)) throw new Error(`imageGridPng: expected (N, 1 or 3, H, W), got [${shape.join(', ')}]`);
  let [lo, hi] = range ?? [Infinity, -Infinity];
  if (!range) for (const v of data) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const cols = Math.min(nrow, n);
  const rows = Math.ceil(n / cols);
  const c = new Canvas(cols * (w + padding) + padding, rows * (h + padding) + padding, [0, 0, 0]);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const ox = padding + (i % cols) * (w + padding);
    const oy = padding + Math.floor(i / cols) * (h + padding);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = (k: number) => Math.max(0, Math.min(255, Math.round(((data[(i * ch + k) * plane + y * w + x] ?? 0) - lo) * scale)));
        const g = v(0);
        c.set(ox + x, oy + y, ch === 3 ? [g, v(1), v(2)] : [g, g, g]);
      }
    }
  }
  return c.toPng();
}
