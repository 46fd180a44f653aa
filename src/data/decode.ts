// Image decoding for the data pipeline: PNG through pngjs, JPEG through jpeg-js, chosen by the
// file's first bytes (not its extension). Every image becomes a square uint8 sample in CHW order
// with 1 (grayscale) or 3 (RGB) channels, as torchvision's loaders produce before ToTensor:
//
// - RGB → grayscale is PIL's convert('L'): L = (19595·R + 38470·G + 7471·B + 2^15) >> 16;
//   grayscale → RGB repeats the plane; an alpha channel is dropped (PIL's convert('RGB')).
// - Resizing is torchvision's Resize(s) followed by CenterCrop(s): the shorter side becomes s
//   (the longer one int(s·long/short)), then the centre s×s is kept. The filter is PIL's BILINEAR
//   as torchvision applies it to PIL images: antialiased, i.e. a triangle filter widened by the
//   scale factor when downscaling (every source pixel under the output pixel contributes), and
//   plain bilinear with half-pixel centres when upscaling. It is PIL's own fixed-point algorithm
//   (22-bit weights, a horizontal pass rounded to bytes, then a vertical one), so the bytes are
//   the ones Pillow's Image.resize(…, BILINEAR) gives.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** File name endings read as images (case-insensitive), as torchvision's IMG_EXTENSIONS subset we decode. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

export function isImagePath(path: string): boolean {
  const lower = path.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

export type Channels = 1 | 3;

/** A decoded image, pixels interleaved (HWC). */
export interface DecodedImage {
  width: number;
  height: number;
  channels: Channels;
  data: Uint8Array;
}

export type ImageFormat = 'png' | 'jpeg';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** The channel count an image will decode to, read from its header only; null when unreadable. */
export function headerChannels(bytes: Uint8Array): Channels | null {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), bit depth (1), colour type.
    if (bytes.length < 26) return null;
    const colorType = bytes[25]!;
    return colorType === 0 || colorType === 4 ? 1 : 3;
  }
  if (format === 'jpeg') {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1]!;
      const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      // A frame header: FF Cx, length (2), precision (1), height (2), width (2), components (1).
      if (isFrame) return bytes[at + 9] === 1 ? 1 : 3;
      at += 2 + length;
    }
  }
  return null;
}

/** Decodes a PNG or JPEG file's bytes; throws with a short reason when it cannot. */
export function decodeImage(bytes: Uint8Array): DecodedImage {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const { width, height } = png;
    const gray = png.colorType === 0 || png.colorType === 4;
    // pngjs always hands back 8-bit RGBA (16-bit samples rescaled, palettes expanded).
    const rgba = png.data;
    const channels: Channels = gray ? 1 : 3;
    const data = new Uint8Array(width * height * channels);
    for (let p = 0, q = 0; p < width * height; p++, q += 4) {
      if (gray) data[p] = rgba[q]!;
      else {
        data[3 * p] = rgba[q]!;
        data[3 * p + 1] = rgba[q + 1]!;
        data[3 * p + 2] = rgba[q + 2]!;
      }
    }
    return { width, height, channels, data };
  }
  if (format === 'jpeg') {
    const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 200, maxMemoryUsageInMB: 1024 });
    const { width, height } = image;
    // jpeg-js expands one-component (grayscale) JPEGs to RGB; keep them as one plane.
    if (headerChannels(bytes) === 1) {
      const data = new Uint8Array(width * height);
      for (let p = 0; p < width * height; p++) data[p] = image.data[3 * p]!;
      return { width, height, channels: 1, data };
    }
    return { width, height, channels: 3, data: image.data };
  }
  throw new Error('not a PNG or JPEG file');
}

/** The image with `channels` channels: PIL's convert('L') or convert('RGB'). */
export function convertChannels(image: DecodedImage, channels: Channels): DecodedImage {
  if (image.channels === channels) return image;
  const n = image.width * image.height;
  const data = new Uint8Array(n * channels);
  const src = image.data;
  if (channels === 1) {
    for (let p = 0; p < n; p++) {
      data[p] = (src[3 * p]! * 19595 + src[3 * p + 1]! * 38470 + src[3 * p + 2]! * 7471 + 0x8000) >>> 16;
    }
  } else {
    for (let p = 0; p < n; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = src[p]!;
  }
  return { ...image, channels, data };
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Where torchvision's Resize(size) + CenterCrop(size) takes an image of w × h from. */
export function resizeGeometry(width: number, height: number, size: number): { resizedW: number; resizedH: number; top: number; left: number } {
  // torchvision: the shorter side becomes size, the longer int(size · long / short).
  const resizedW = width <= height ? size : Math.trunc((size * width) / height);
  const resizedH = height <= width ? size : Math.trunc((size * height) / width);
  return { resizedW, resizedH, top: roundHalfEven((resizedH - size) / 2), left: roundHalfEven((resizedW - size) / 2) };
}

/** Filter taps for `count` outputs starting at output `first` of a resize from inSize to outSize. */
interface Taps {
  start: Int32Array;
  length: Int32Array;
  /** Fixed-point weights (PRECISION_BITS), `stride` per output. */
  weights: Int32Array;
  stride: number;
}

/** PIL's fixed-point precision for 8-bit images: 32 − 8 − 2 bits. */
const PRECISION_BITS = 22;
const tapCache = new Map<string, Taps>();

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter. */
function taps(inSize: number, outSize: number, first: number, count: number): Taps {
  const key = `${inSize}:${outSize}:${first}:${count}`;
  const cached = tapCache.get(key);
  if (cached) return cached;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const t: Taps = { start: new Int32Array(count), length: new Int32Array(count), weights: new Int32Array(count * stride), stride };
  const k = new Float64Array(stride);
  for (let o = 0; o < count; o++) {
    const center = (first + o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      k[j] = Math.max(0, 1 - Math.abs((j + lo - center + 0.5) / filterScale));
      total += k[j]!;
    }
    for (let j = 0; j < n; j++) t.weights[o * stride + j] = Math.trunc(0.5 + (total === 0 ? k[j]! : k[j]! / total) * 2 ** PRECISION_BITS);
    t.start[o] = lo;
    t.length[o] = n;
  }
  if (tapCache.size > 64) tapCache.clear();
  tapCache.set(key, t);
  return t;
}

/** PIL's clip8: a fixed-point sum (with its rounding half already added) back to a byte. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Writes the image as a size × size CHW sample into out (at `offset`), converting channels and
 * resizing as described at the top of this file.
 */
export function writeSample(image: DecodedImage, size: number, channels: Channels, out: Uint8Array, offset = 0): void {
  const img = convertChannels(image, channels);
  const { width, height, data } = img;
  const plane = size * size;
  if (width === size && height === size) {
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) out[offset + c * plane + p] = data[p * channels + c]!;
    }
    return;
  }
  const g = resizeGeometry(width, height, size);
  const tx = taps(width, g.resizedW, g.left, size);
  const ty = taps(height, g.resizedH, g.top, size);
  const half = 1 << (PRECISION_BITS - 1);
  // PIL resamples horizontally into bytes, then vertically; only the rows the second pass reads.
  const rowFirst = ty.start[0]!;
  const rowLast = ty.start[size - 1]! + ty.length[size - 1]!;
  const rows = new Uint8Array((rowLast - rowFirst) * size * channels);
  for (let y = rowFirst; y < rowLast; y++) {
    for (let x = 0; x < size; x++) {
      const start = tx.start[x]!;
      const n = tx.length[x]!;
      for (let c = 0; c < channels; c++) {
        let acc = half;
        for (let j = 0; j < n; j++) acc += tx.weights[x * tx.stride + j]! * data[(y * width + start + j) * channels + c]!;
        rows[((y - rowFirst) * size + x) * channels + c] = clip8(acc);
      }
    }
  }
  for (let y = 0; y < size; y++) {
    const start = ty.start[y]! - rowFirst;
    const n = ty.length[y]!;
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < channels; c++) {
        let acc = half;
        for (let j = 0; j < n; j++) acc += ty.weights[y * ty.stride + j]! * rows[((start + j) * size + x) * channels + c]!;
        out[offset + c * plane + y * size + x] = clip8(acc);
      }
    }
  }
}

/** Decodes bytes straight into a size × size CHW sample; returns the source's width and height. */
export function decodeSample(bytes: Uint8Array, size: number, channels: Channels, out: Uint8Array, offset = 0): { width: number; height: number } {
  const image = decodeImage(bytes);
  writeSample(image, size, channels, out, offset);
  return { width: image.width, height: image.height };
}

/**
 * Converts n CHW samples of c0 × h0 × w0 into n CHW samples of channels × size × size, with the
 * same channel conversion and resizing as decoded files (used by the IDX and CIFAR readers).
 */
export function convertSamples(pixels: Uint8Array, n: number, c0: Channels, h0: number, w0: number, size: number, channels: Channels): Uint8Array {
  if (c0 === channels && h0 === size && w0 === size) return pixels;
  const inBytes = c0 * h0 * w0;
  const outBytes = channels * size * size;
  const out = new Uint8Array(n * outBytes);
  const hwc = new Uint8Array(inBytes);
  const plane = h0 * w0;
  for (let i = 0; i < n; i++) {
    const sample = pixels.subarray(i * inBytes, (i + 1) * inBytes);
    for (let c = 0; c < c0; c++) for (let p = 0; p < plane; p++) hwc[p * c0 + c] = sample[c * plane + p]!;
    writeSample({ width: w0, height: h0, channels: c0, data: hwc }, size, channels, out, i * outBytes);
  }
  return out;
}
