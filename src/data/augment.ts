// GPU data augmentation (kernels/augment.wgsl): the rotation batch of RotNet, random crop with
// padding, random-resized-crop, horizontal flip, gamma and per-channel normalisation, composed
// into one dispatch per batch. Random choices are drawn on the CPU from a dawnet Generator, per
// source image in batch order, and uploaded as one 32-byte record per output sample; the same
// records drive the float64 CPU reference (augmentReference) that the tests compare against.
//
// Draws for each source image, in this order: the crop (RandomCrop: top then left; or
// RandomResizedCrop's scale/ratio tries then top and left), the flip (one uniform), the gamma
// (one uniform), the rotation ('random': one integer in 0…3). With rotation 'all', the four
// copies of an image share its crop, flip and gamma, as RotNet rotates an augmented image.
import { backend } from '../runtime.js';
import { defaultGenerator, type Generator } from '../random.js';
import { Tensor } from '../tensor.js';
import { launch } from '../gpu/launch.js';

/** kernels/augment.wgsl's workgroup (WX × WY) and the outputs each invocation writes along x. */
const WX = 8;
const WY = 8;
const RUN = 4;
const MAX_PLANES = 65535;
/** 32-bit words of one Sample record in kernels/augment.wgsl. */
const SAMPLE_WORDS = 8;
/** f32(1/255): what a uint8 byte is multiplied by (see kernels/augment.wgsl). */
export const INV255 = Math.fround(1 / 255);

export interface AugmentOptions {
  /** torchvision RandomCrop(size, padding) with zero padding; size defaults to the input's. */
  crop?: { size?: number; padding: number };
  /** torchvision RandomResizedCrop(size, scale, ratio), bilinear; size defaults to the input's. */
  resizedCrop?: { size?: number; scale: readonly [number, number]; ratio?: readonly [number, number] };
  /** RandomHorizontalFlip(p): the probability of a flip (0.5 in torchvision). */
  hflip?: number;
  /** Gamma correction with gamma uniform in [lo, hi] per image (adjust_gamma, gain 1). */
  gamma?: readonly [number, number];
  /**
   * 'all': each image becomes 4 consecutive samples rotated 0, 90, 180, 270 degrees counter-
   * clockwise (torch.rot90(x, k, dims=(2, 3))), ordered [img0 r0, img0 r1, img0 r2, img0 r3,
   * img1 r0, …], labels k, as RotNet builds its batches; 'random': one rotation per image.
   */
  rotation?: 'all' | 'random';
  /** Per-channel (x − mean[c]) / std[c], torchvision Normalize; applied last. */
  normalize?: { mean: readonly number[]; std: readonly number[] };
}

/** One output sample's source image and random choices (kernels/augment.wgsl's Sample). */
export interface SampleParams {
  src: number;
  rot: number;
  flip: boolean;
  top: number;
  left: number;
  cropH: number;
  cropW: number;
  gamma: number;
}

/** The shape-level settings every sample of one dispatch shares. */
export interface AugmentLayout {
  channels: number;
  srcH: number;
  srcW: number;
  outH: number;
  outW: number;
  bilinear: boolean;
  gamma: boolean;
  normalize: { mean: readonly number[]; std: readonly number[] } | null;
}

export interface AugmentResult {
  /** (N', C, H', W') float32; the caller owns it. */
  images: Tensor;
  /** Rotation label (0…3) of each output sample, on the GPU (int32); null without rotation. */
  rotationLabels: Tensor | null;
  /** The same on the host. */
  rotations: Int32Array | null;
  /** Which source image each output sample came from. */
  sources: Int32Array;
}

/** Python's round(): halves go to the even neighbour (torchvision computes crop sizes with it). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkRange(name: string, range: readonly [number, number], min: number): void {
  if (!(range[0] >= min && range[1] >= range[0] && Number.isFinite(range[1]))) throw new RangeError(`Augment: ${name} must be [lo, hi] with ${min} <= lo <= hi, got [${range.join(', ')}]`);
}

/** torchvision RandomResizedCrop.get_params: (top, left, height, width) of the crop box. */
export function resizedCropBox(height: number, width: number, scale: readonly [number, number], ratio: readonly [number, number], g: Generator): [number, number, number, number] {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * g.uniform());
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * g.uniform());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = g.integer(height - h + 1);
      const left = g.integer(width - w + 1);
      return [top, left, h, w];
    }
  }
  // Fallback to a central crop, as torchvision.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return [Math.trunc((height - h) / 2), Math.trunc((width - w) / 2), h, w];
}

/** A composed augmentation, run as one kernel dispatch per batch. */
export class Augment {
  constructor(readonly options: AugmentOptions = {}) {
    const { crop, resizedCrop, hflip, gamma, normalize } = options;
    if (crop && resizedCrop) throw new Error('Augment: choose crop or resizedCrop, not both');
    if (crop && !(Number.isInteger(crop.padding) && crop.padding >= 0)) throw new RangeError(`Augment: crop padding must be a non-negative integer, got ${crop.padding}`);
    if (resizedCrop) {
      checkRange('resizedCrop.scale', resizedCrop.scale, Number.MIN_VALUE);
      if (resizedCrop.scale[1] > 1) throw new RangeError('Augment: resizedCrop.scale must lie in (0, 1]');
      checkRange('resizedCrop.ratio', resizedCrop.ratio ?? [3 / 4, 4 / 3], Number.MIN_VALUE);
    }
    if (hflip !== undefined && !(hflip >= 0 && hflip <= 1)) throw new RangeError(`Augment: hflip is a probability, got ${hflip}`);
    if (gamma) checkRange('gamma', gamma, Number.MIN_VALUE);
    if (normalize && (normalize.mean.length !== normalize.std.length || normalize.std.some((s) => s === 0))) {
      throw new RangeError('Augment: normalize needs one non-zero std per mean');
    }
  }

  /** Whether the output keeps the input unchanged apart from the uint8 → float conversion. */
  get isIdentity(): boolean {
    const o = this.options;
    return !o.crop && !o.resizedCrop && !o.hflip && !o.gamma && !o.rotation && !o.normalize;
  }

  /** Output samples per source image. */
  get copies(): number {
    return this.options.rotation === 'all' ? 4 : 1;
  }

  /** The output side for a square input of side `size`. */
  outputSize(size: number): number {
    return this.options.crop?.size ?? this.options.resizedCrop?.size ?? size;
  }

  layout(channels: number, srcH: number, srcW: number): AugmentLayout {
    const o = this.options;
    const outH = o.crop?.size ?? o.resizedCrop?.size ?? srcH;
    const outW = o.crop?.size ?? o.resizedCrop?.size ?? srcW;
    if (o.rotation && outH !== outW) throw new Error(`Augment: rotations need square images, got ${outH}×${outW}`);
    if (o.normalize && o.normalize.mean.length !== channels) {
      throw new Error(`Augment: normalize has ${o.normalize.mean.length} means for ${channels}-channel images`);
    }
    if (channels > 4 && o.normalize) throw new Error('Augment: normalize supports up to 4 channels');
    if (o.crop && (outH > srcH + 2 * o.crop.padding || outW > srcW + 2 * o.crop.padding)) {
      throw new Error(`Augment: crop size ${outH} is larger than the padded ${srcH}×${srcW} input`);
    }
    return { channels, srcH, srcW, outH, outW, bilinear: Boolean(o.resizedCrop), gamma: Boolean(o.gamma), normalize: o.normalize ?? null };
  }

  /** Draws the per-sample records for n source images of srcH × srcW (see the file comment). */
  draw(n: number, srcH: number, srcW: number, g: Generator): SampleParams[] {
    const o = this.options;
    const out: SampleParams[] = [];
    for (let src = 0; src < n; src++) {
      let top = 0;
      let left = 0;
      let cropH = srcH;
      let cropW = srcW;
      if (o.crop) {
        const size = o.crop.size ?? srcH;
        const sizeW = o.crop.size ?? srcW;
        // torchvision pads first, then draws i in [0, H + 2p − size], j likewise.
        top = g.integer(srcH + 2 * o.crop.padding - size + 1) - o.crop.padding;
        left = g.integer(srcW + 2 * o.crop.padding - sizeW + 1) - o.crop.padding;
      } else if (o.resizedCrop) {
        [top, left, cropH, cropW] = resizedCropBox(srcH, srcW, o.resizedCrop.scale, o.resizedCrop.ratio ?? [3 / 4, 4 / 3], g);
      }
      const flip = o.hflip ? g.uniform() < o.hflip : false;
      const gamma = o.gamma ? o.gamma[0] + (o.gamma[1] - o.gamma[0]) * g.uniform() : 1;
      const base = { src, flip, top, left, cropH, cropW, gamma: Math.fround(gamma) };
      if (o.rotation === 'all') for (let rot = 0; rot < 4; rot++) out.push({ ...base, rot });
      else out.push({ ...base, rot: o.rotation === 'random' ? g.integer(4) : 0 });
    }
    return out;
  }

  /** Augments float32 images (N, C, H, W) on the GPU. */
  apply(images: Tensor, generator: Generator = defaultGenerator): AugmentResult {
    if (images.ndim !== 4 || images.dtype !== 'float32') throw new Error(`Augment: expected float32 images (N, C, H, W), got ${images.dtype} [${images.shape.join(', ')}]`);
    const [n, c, h, w] = images.shape as [number, number, number, number];
    return this.run(images, 'f32', this.layout(c, h, w), this.draw(n, h, w, generator));
  }

  /**
   * Augments uint8 images (n, c, size, size) uploaded as packed words (an int32 tensor of
   * ceil(n·c·size² / 4) elements): the upload path of the DataLoader, conversion included.
   */
  applyPacked(words: Tensor, n: number, channels: number, size: number, generator: Generator = defaultGenerator): AugmentResult {
    if (words.size * 4 < n * channels * size * size) throw new Error(`Augment: ${words.size} words cannot hold ${n}×${channels}×${size}×${size} bytes`);
    return this.run(words, 'u8', this.layout(channels, size, size), this.draw(n, size, size, generator));
  }

  /** Encodes one dispatch for explicit records (also what the tests drive directly). */
  run(source: Tensor, kind: 'u8' | 'f32', layout: AugmentLayout, samples: readonly SampleParams[]): AugmentResult {
    const count = samples.length;
    const images = Tensor.empty([count, layout.channels, layout.outH, layout.outW]);
    const records = Tensor.empty([Math.max(1, count) * SAMPLE_WORDS], 'int32');
    // Uploads go before the dispatch: a write submits the work encoded so far.
    backend().write(records.view, encodeSamples(samples));
    const rotations = this.options.rotation !== undefined ? Int32Array.from(samples, (s) => s.rot) : null;
    const rotationLabels = rotations ? Tensor.empty([count], 'int32') : null;
    if (rotationLabels && rotations && count > 0) backend().write(rotationLabels.view, rotations);
    const mean = [0, 0, 0, 0];
    const std = [1, 1, 1, 1];
    layout.normalize?.mean.forEach((m, i) => (mean[i] = m));
    layout.normalize?.std.forEach((s, i) => (std[i] = s));
    const bindings: Record<string, Tensor> = { out: images, samples: records, [kind === 'u8' ? 'src_u8' : 'src_f32']: source };
    const uniforms = {
      sample_base: 0,
      channels: layout.channels,
      src_h: layout.srcH,
      src_w: layout.srcW,
      out_h: layout.outH,
      out_w: layout.outW,
      bilinear: layout.bilinear,
      use_gamma: layout.gamma,
      normalize: layout.normalize !== null,
      mean,
      stdev: std,
    };
    if (kind === 'u8' && this.isIdentity && images.size % 4 === 0) {
      // The plain conversion: one 32-bit word in, one vec4 out, several times faster on lavapipe.
      launch('augment', 'convert_u8', { out4: images, src_u8: source }, { ...uniforms, vec4s: images.size / 4 }, [Math.ceil(images.size / 4 / (WX * WY))]);
    } else {
      // One plane (a channel of a sample) per z; a grid holds at most 65,535 of them.
      const perDispatch = Math.floor(MAX_PLANES / layout.channels);
      const [gx, gy] = [Math.ceil(layout.outW / (RUN * WX)), Math.ceil(layout.outH / WY)];
      for (let base = 0; base < count; base += perDispatch) {
        const planes = Math.min(perDispatch, count - base) * layout.channels;
        launch('augment', kind === 'u8' ? 'augment_u8' : 'augment_f32', bindings, { ...uniforms, sample_base: base }, [gx, gy, planes]);
      }
    }
    records.dispose();
    return { images, rotationLabels, rotations, sources: Int32Array.from(samples, (s) => s.src) };
  }
}

/** Packs records as kernels/augment.wgsl's Sample: 8 little-endian 32-bit words each. */
export function encodeSamples(samples: readonly SampleParams[]): Uint32Array {
  const words = new Uint32Array(Math.max(1, samples.length) * SAMPLE_WORDS);
  const view = new DataView(words.buffer);
  samples.forEach((s, k) => {
    const at = k * SAMPLE_WORDS * 4;
    view.setUint32(at, s.src, true);
    view.setUint32(at + 4, s.rot, true);
    view.setUint32(at + 8, s.flip ? 1 : 0, true);
    view.setInt32(at + 12, s.top, true);
    view.setInt32(at + 16, s.left, true);
    view.setUint32(at + 20, s.cropH, true);
    view.setUint32(at + 24, s.cropW, true);
    view.setFloat32(at + 28, s.gamma, true);
  });
  return words;
}

/**
 * The float64 CPU reference of kernels/augment.wgsl. uint8 sources are converted as the kernel
 * does (byte · f32(1/255)); in exact mode without gamma or normalisation every output is one
 * source value, so the result equals the kernel's bit for bit.
 */
export function augmentReference(source: Uint8Array | Float32Array, layout: AugmentLayout, samples: readonly SampleParams[]): Float64Array {
  const { channels: C, srcH, srcW, outH: oh, outW: ow } = layout;
  const load = (i: number): number => (source instanceof Uint8Array ? Math.fround(source[i]! * INV255) : source[i]!);
  const out = new Float64Array(samples.length * C * oh * ow);
  samples.forEach((s, n) => {
    for (let c = 0; c < C; c++) {
      const plane = (s.src * C + c) * srcH;
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          let [py, px] = [y, x];
          if (s.rot === 1) [py, px] = [x, ow - 1 - y];
          else if (s.rot === 2) [py, px] = [oh - 1 - y, ow - 1 - x];
          else if (s.rot === 3) [py, px] = [oh - 1 - x, y];
          if (s.flip) px = ow - 1 - px;
          let v = 0;
          if (!layout.bilinear) {
            const sy = s.top + py;
            const sx = s.left + px;
            if (sy >= 0 && sx >= 0 && sy < srcH && sx < srcW) v = load((plane + sy) * srcW + sx);
          } else {
            const fy = Math.max((py + 0.5) * (s.cropH / oh) - 0.5, 0);
            const fx = Math.max((px + 0.5) * (s.cropW / ow) - 0.5, 0);
            const y0 = Math.min(Math.floor(fy), s.cropH - 1);
            const x0 = Math.min(Math.floor(fx), s.cropW - 1);
            const y1 = Math.min(y0 + 1, s.cropH - 1);
            const x1 = Math.min(x0 + 1, s.cropW - 1);
            const ly = fy - y0;
            const lx = fx - x0;
            const at = (yy: number, xx: number): number => load((plane + s.top + yy) * srcW + s.left + xx);
            v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
          }
          if (layout.gamma) v = v > 0 ? Math.min(1, Math.max(0, v ** s.gamma)) : 0;
          if (layout.normalize) v = (v - layout.normalize.mean[c]!) / layout.normalize.std[c]!;
          out[((n * C + c) * oh + y) * ow + x] = v;
        }
      }
    }
  });
  return out;
}

// ---- single augmentations, as torchvision transforms on a batch ----

/** RotNet's rotation batch: (N, C, S, S) → (4N, C, S, S) ordered [img0 r0…r3, img1 r0…], labels 0…3. */
export function rotationBatch(images: Tensor): { images: Tensor; labels: Tensor } {
  const r = new Augment({ rotation: 'all' }).apply(images);
  return { images: r.images, labels: r.rotationLabels! };
}

/** One rotation per image, uniform in {0, 90, 180, 270} degrees; labels are the quarter turns. */
export function randomRotation(images: Tensor, generator?: Generator): { images: Tensor; labels: Tensor } {
  const r = new Augment({ rotation: 'random' }).apply(images, generator);
  return { images: r.images, labels: r.rotationLabels! };
}

/** torchvision RandomCrop(size, padding) with zero padding. */
export function randomCrop(images: Tensor, size: number, padding = 0, generator?: Generator): Tensor {
  return new Augment({ crop: { size, padding } }).apply(images, generator).images;
}

/** torchvision RandomResizedCrop(size, scale, ratio), bilinear. */
export function randomResizedCrop(
  images: Tensor,
  size: number,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
  generator?: Generator,
): Tensor {
  return new Augment({ resizedCrop: { size, scale, ratio } }).apply(images, generator).images;
}

/** torchvision RandomHorizontalFlip(p). */
export function randomHorizontalFlip(images: Tensor, p = 0.5, generator?: Generator): Tensor {
  return new Augment({ hflip: p }).apply(images, generator).images;
}

/** Gamma correction with gamma uniform in [lo, hi] per image. */
export function randomGamma(images: Tensor, range: readonly [number, number], generator?: Generator): Tensor {
  return new Augment({ gamma: range }).apply(images, generator).images;
}

/** torchvision Normalize(mean, std) on (N, C, H, W). */
export function normalize(images: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  return new Augment({ normalize: { mean, std } }).apply(images).images;
}
