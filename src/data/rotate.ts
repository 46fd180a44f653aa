// The K-way rotation pretext (kernels/rotate.wgsl): each image at k·360°/K for k < K, resampled
// bilinearly on the GPU, as the flowers tutorial's 3-way task (0°, 120°, 240°). K = 4 gives the
// same pixels as RotNet's quarter turns; K = 3 needs the resampling, and the corners that turn
// out of the image read `fill`.
import { launch } from '../gpu/launch.js';
import { backend } from '../runtime.js';
import { Tensor } from '../tensor.js';

/** cos and sin of k·360°/K as float32, snapped to exact 0 and ±1 at multiples of 90°. */
export function rotationAngles(copies: number): { cos: number[]; sin: number[] } {
  const snap = (v: number) => Math.fround(Math.abs(v) < 1e-12 ? 0 : Math.abs(Math.abs(v) - 1) < 1e-12 ? Math.sign(v) : v);
  const angles = Array.from({ length: copies }, (_, k) => (2 * Math.PI * k) / copies);
  return { cos: angles.map((a) => snap(Math.cos(a))), sin: angles.map((a) => snap(Math.sin(a))) };
}

/**
 * (N, C, S, S) → (N·K, C, S, S) ordered [img0 r0, …, img0 r(K−1), img1 r0, …] and the labels k,
 * each image rotated counter-clockwise by k·360°/K; `fill` per channel (default 0).
 */
export function rotateBatch(images: Tensor, copies: number, fill: readonly number[] = []): { images: Tensor; labels: Tensor } {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  if (images.ndim !== 4 || h !== w) throw new Error(`rotateBatch: needs square images (N, C, S, S), got [${images.shape.join(', ')}]`);
  if (!(Number.isInteger(copies) && copies >= 1 && copies <= 4)) throw new RangeError(`rotateBatch: 1 to 4 rotations, got ${copies}`);
  if (c > 4) throw new Error(`rotateBatch: up to 4 channels, got ${c}`);
  const out = Tensor.empty([n * copies, c, h, w]);
  const labels = Tensor.empty([n * copies], 'int32');
  backend().write(labels.view, Int32Array.from({ length: n * copies }, (_, i) => i % copies));
  const { cos, sin } = rotationAngles(copies);
  const lanes = (v: readonly number[]) => [0, 1, 2, 3].map((i) => v[i] ?? 0);
  const uniforms = { count: out.size, channels: c, size: h, copies, cos: lanes(cos), sin: lanes(sin), fill: lanes(fill) };
  if (out.size > 0) launch('rotate', 'rotate_bilinear', { out, src: images }, uniforms, [Math.ceil(out.size / 64)]);
  return { images: out, labels };
}

/** The float64 reference of rotateBatch (the same float32 cos and sin). */
export function rotateReference(src: Float32Array, shape: readonly [number, number, number, number], copies: number, fill: readonly number[] = []): Float64Array {
  const [n, c, s] = shape;
  const { cos, sin } = rotationAngles(copies);
  const out = new Float64Array(n * copies * c * s * s);
  const m = (s - 1) / 2;
  for (let i = 0; i < out.length; i++) {
    const [x, y, ch, sample] = [i % s, Math.floor(i / s) % s, Math.floor(i / (s * s)) % c, Math.floor(i / (s * s * c))];
    const k = sample % copies;
    const plane = (Math.floor(sample / copies) * c + ch) * s * s;
    const fx = m + (x - m) * cos[k]! - (y - m) * sin[k]!;
    const fy = m + (x - m) * sin[k]! + (y - m) * cos[k]!;
    const [x0, y0] = [Math.floor(fx), Math.floor(fy)];
    const [lx, ly] = [fx - x0, fy - y0];
    const tap = (yy: number, xx: number) => (yy < 0 || xx < 0 || yy >= s || xx >= s ? (fill[ch] ?? 0) : src[plane + yy * s + xx]!);
    out[i] = (1 - ly) * ((1 - lx) * tap(y0, x0) + lx * tap(y0, x0 + 1)) + ly * ((1 - lx) * tap(y0 + 1, x0) + lx * tap(y0 + 1, x0 + 1));
  }
  return out;
}
