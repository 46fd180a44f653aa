// GPU augmentation (kernels/augment.wgsl) against its CPU reference: rotations, flips and crops
// bit for bit, bilinear resized crops, gamma and normalisation within float32 tolerances; and the
// reference itself against torch.rot90 / torchvision definitions written out by hand.
import { describe, expect, it } from 'vitest';
import { backend, tensor, type Tensor } from '../src/index.js';
import { Generator } from '../src/random.js';
import { Tensor as TensorClass } from '../src/tensor.js';
import {
  Augment,
  augmentReference,
  INV255,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
  randomRotation,
  resizedCropBox,
  rotationBatch,
  type AugmentOptions,
  type SampleParams,
} from '../src/data/augment.js';

/** Bytes of (n, c, s, s) uint8 images with every value distinct enough to catch index errors. */
function bytesOf(n: number, c: number, s: number, seed = 1): Uint8Array {
  const g = new Generator(seed);
  return Uint8Array.from({ length: n * c * s * s }, () => g.integer(256));
}

/** Uploads bytes as the loader does: packed 4 per 32-bit word. */
function packed(bytes: Uint8Array): Tensor {
  const words = TensorClass.empty([Math.max(1, Math.ceil(bytes.length / 4))], 'int32');
  const padded = new Uint8Array(words.size * 4);
  padded.set(bytes);
  backend().write(words.view, padded);
  return words;
}

function floatsOf(bytes: Uint8Array): Float32Array {
  return Float32Array.from(bytes, (b) => Math.fround(b * INV255));
}

/** Runs options on bytes through both entry points and returns GPU outputs and the reference. */
async function runBoth(options: AugmentOptions, n: number, c: number, s: number, seed: number) {
  const aug = new Augment(options);
  const bytes = bytesOf(n, c, s, seed);
  const layout = aug.layout(c, s, s);
  const samples = aug.draw(n, s, s, new Generator(seed));
  const words = packed(bytes);
  const fromU8 = aug.run(words, 'u8', layout, samples);
  const images = tensor(floatsOf(bytes), [n, c, s, s]);
  const fromF32 = aug.run(images, 'f32', layout, samples);
  const result = {
    u8: (await fromU8.images.toArray()) as Float32Array,
    f32: (await fromF32.images.toArray()) as Float32Array,
    reference: augmentReference(bytes, layout, samples),
    samples,
    shape: fromU8.images.shape,
    rotations: fromU8.rotations,
  };
  for (const t of [words, images, fromU8.images, fromF32.images, fromU8.rotationLabels, fromF32.rotationLabels]) t?.dispose();
  return result;
}

function expectExact(actual: Float32Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  let mismatches = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) mismatches++;
  expect(mismatches).toBe(0);
}

/** torch.rot90(x, k, dims=(0, 1)) of one s × s plane, written from its definition: rot90 = flip(1) then transpose. */
function rot90(plane: number[][], k: number): number[][] {
  let p = plane;
  for (let t = 0; t < k; t++) {
    const s = p.length;
    p = Array.from({ length: s }, (_, i) => Array.from({ length: s }, (_, j) => p[j]![s - 1 - i]!));
  }
  return p;
}

describe('conversion', () => {
  for (const [n, c, s] of [[2, 3, 4], [1, 1, 3], [3, 1, 5]] as const) {
    it(`uint8 (${n}, ${c}, ${s}, ${s}) becomes byte · f32(1/255) exactly${(n * c * s * s) % 4 === 0 ? ' (vec4 path)' : ''}`, async () => {
      const r = await runBoth({}, n, c, s, 3);
      expectExact(r.u8, r.reference);
      expectExact(r.f32, r.reference);
      expect(r.reference[0]).toBe(Math.fround(bytesOf(n, c, s, 3)[0]! * INV255));
    });
  }

  it('f32(1/255) keeps 0 and 255 at exactly 0 and 1, within one ulp of torch.float32 byte / 255', () => {
    expect(Math.fround(255 * INV255)).toBe(1);
    for (let b = 0; b < 256; b++) {
      const ulp = 2 ** (Math.floor(Math.log2(Math.max(b / 255, 2 ** -126))) - 23);
      expect(Math.abs(Math.fround(b * INV255) - Math.fround(b / 255))).toBeLessThanOrEqual(ulp);
    }
  });
});

describe('rotation batch', () => {
  it('rot90 counter-clockwise as torch.rot90: [[a, b], [c, d]] → [[b, d], [a, c]]', () => {
    expect(rot90([[1, 2], [3, 4]], 1)).toEqual([[2, 4], [1, 3]]);
    expect(rot90([[1, 2], [3, 4]], 2)).toEqual([[4, 3], [2, 1]]);
    expect(rot90([[1, 2], [3, 4]], 3)).toEqual([[3, 1], [4, 2]]);
  });

  for (const [n, c, s] of [[1, 1, 1], [3, 3, 5], [2, 1, 17], [1, 3, 4]] as const) {
    it(`all four rotations of (${n}, ${c}, ${s}, ${s}) are bit-exact, ordered [img r0…r3, …]`, async () => {
      const r = await runBoth({ rotation: 'all' }, n, c, s, 7 + s);
      expect(r.shape).toEqual([4 * n, c, s, s]);
      expectExact(r.u8, r.reference);
      expectExact(r.f32, r.reference);
      expect([...r.rotations!]).toEqual(Array.from({ length: 4 * n }, (_, i) => i % 4));
      // The reference against the definition, plane by plane.
      const bytes = bytesOf(n, c, s, 7 + s);
      for (let img = 0; img < n; img++) {
        for (let ch = 0; ch < c; ch++) {
          const plane = Array.from({ length: s }, (_, y) => Array.from({ length: s }, (_, x) => Math.fround(bytes[((img * c + ch) * s + y) * s + x]! * INV255)));
          for (let k = 0; k < 4; k++) {
            const at = ((4 * img + k) * c + ch) * s * s;
            const got = Array.from({ length: s }, (_, y) => Array.from(r.u8.subarray(at + y * s, at + (y + 1) * s)));
            expect(got).toEqual(rot90(plane, k));
          }
        }
      }
    });
  }

  it('rotationBatch on float images gives 4N images and labels 0…3', async () => {
    const bytes = bytesOf(2, 3, 6, 3);
    const x = tensor(floatsOf(bytes), [2, 3, 6, 6]);
    const { images, labels } = rotationBatch(x);
    expect(images.shape).toEqual([8, 3, 6, 6]);
    expect([...(await labels.toArray())]).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const first = (await images.toArray()).subarray(0, 3 * 36);
    expect([...first]).toEqual([...floatsOf(bytes).subarray(0, 3 * 36)]);
    for (const t of [x, images, labels]) t.dispose();
  });

  it('one random rotation per image: bit-exact, labels from the seeded generator', async () => {
    const r = await runBoth({ rotation: 'random' }, 16, 1, 5, 11);
    expectExact(r.u8, r.reference);
    const expected = new Generator(11);
    expect([...r.rotations!]).toEqual(Array.from({ length: 16 }, () => expected.integer(4)));
    expect(new Set(r.rotations).size).toBeGreaterThan(1);
    const x = tensor(floatsOf(bytesOf(3, 1, 4)), [3, 1, 4, 4]);
    const out = randomRotation(x, new Generator(2));
    expect(out.images.shape).toEqual([3, 1, 4, 4]);
    expect(out.labels.shape).toEqual([3]);
    for (const t of [x, out.images, out.labels]) t.dispose();
  });

  it('rotations refuse non-square outputs', () => {
    expect(() => new Augment({ rotation: 'all' }).layout(1, 4, 5)).toThrow(/square/);
  });
});

describe('crops and flips', () => {
  it('random crop with zero padding (torchvision RandomCrop) is bit-exact', async () => {
    const r = await runBoth({ crop: { size: 5, padding: 2 } }, 9, 3, 6, 5);
    expect(r.shape).toEqual([9, 3, 5, 5]);
    expectExact(r.u8, r.reference);
    expectExact(r.f32, r.reference);
    // Offsets lie in [−padding, H + padding − size].
    for (const s of r.samples) {
      expect(s.top).toBeGreaterThanOrEqual(-2);
      expect(s.top).toBeLessThanOrEqual(3);
    }
  });

  it('the crop reference is a slice of the zero-padded image', () => {
    const aug = new Augment({ crop: { size: 3, padding: 1 } });
    const layout = aug.layout(1, 3, 3);
    const image = Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const sample: SampleParams = { src: 0, rot: 0, flip: false, top: -1, left: 0, cropH: 3, cropW: 3, gamma: 1 };
    const out = augmentReference(image, layout, [sample]);
    expect([...out].map((v) => Math.round(v / INV255))).toEqual([0, 0, 0, 10, 20, 30, 40, 50, 60]);
  });

  it('horizontal flip with p = 0.5 is bit-exact and mirrors columns', async () => {
    const r = await runBoth({ hflip: 0.5 }, 12, 2, 4, 9);
    expectExact(r.u8, r.reference);
    const flips = r.samples.map((s) => s.flip);
    expect(flips).toContain(true);
    expect(flips).toContain(false);
    const bytes = bytesOf(12, 2, 4, 9);
    const k = flips.indexOf(true);
    const row = Array.from(r.u8.subarray(k * 32, k * 32 + 4));
    expect(row).toEqual([3, 2, 1, 0].map((x) => Math.fround(bytes[k * 32 + x]! * INV255)));
    const x = tensor(floatsOf(bytes), [12, 2, 4, 4]);
    const y = randomHorizontalFlip(x, 1);
    const z = randomCrop(x, 4, 0, new Generator(1));
    expect(Array.from((await y.toArray()).subarray(0, 4))).toEqual([3, 2, 1, 0].map((i) => Math.fround(bytes[i]! * INV255)));
    expect([...(await z.toArray())]).toEqual([...floatsOf(bytes)]);
    for (const t of [x, y, z]) t.dispose();
  });

  it('random-resized-crop matches the bilinear reference (scale 0.2–1, ratio 3/4–4/3)', async () => {
    for (const [s, out] of [[8, 8], [7, 5], [5, 9]] as const) {
      const r = await runBoth({ resizedCrop: { size: out, scale: [0.2, 1] } }, 6, 3, s, s);
      expect(r.shape).toEqual([6, 3, out, out]);
      expect(r.u8).toBeAllClose(r.reference, { rtol: 1e-5, atol: 1e-6 });
      expect(r.f32).toBeAllClose(r.reference, { rtol: 1e-5, atol: 1e-6 });
      for (const p of r.samples) {
        expect(p.top + p.cropH).toBeLessThanOrEqual(s);
        expect(p.left + p.cropW).toBeLessThanOrEqual(s);
      }
    }
  });

  it('resized-crop boxes follow torchvision: area fraction and aspect within range', () => {
    const g = new Generator(3);
    for (let i = 0; i < 200; i++) {
      const [top, left, h, w] = resizedCropBox(96, 96, [0.08, 1], [3 / 4, 4 / 3], g);
      expect(top).toBeGreaterThanOrEqual(0);
      expect(left).toBeGreaterThanOrEqual(0);
      expect(top + h).toBeLessThanOrEqual(96);
      expect(left + w).toBeLessThanOrEqual(96);
      // Rounding h and w to integers moves the fraction a little outside [0.08, 1].
      expect((h * w) / 96 ** 2).toBeGreaterThan(0.06);
    }
    // An impossible ratio falls back to the central crop.
    expect(resizedCropBox(10, 40, [0.9, 1], [1, 1], new Generator(1))).toEqual([0, 15, 10, 10]);
    const x = tensor(floatsOf(bytesOf(2, 1, 6)), [2, 1, 6, 6]);
    const y = randomResizedCrop(x, 4, [0.5, 1], [3 / 4, 4 / 3], new Generator(5));
    expect(y.shape).toEqual([2, 1, 4, 4]);
    x.dispose();
    y.dispose();
  });
});

describe('gamma and normalisation', () => {
  it('gamma uniform in a range, clamped to [0, 1], matches the reference', async () => {
    const r = await runBoth({ gamma: [0.5, 2] }, 5, 3, 4, 13);
    expect(r.u8).toBeAllClose(r.reference, { rtol: 1e-5, atol: 1e-6 });
    for (const s of r.samples) {
      expect(s.gamma).toBeGreaterThanOrEqual(0.5);
      expect(s.gamma).toBeLessThanOrEqual(2);
    }
  });

  it('per-channel normalisation (x − mean) / std', async () => {
    const options: AugmentOptions = { normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } };
    const r = await runBoth(options, 2, 3, 5, 17);
    expect(r.u8).toBeAllClose(r.reference, { rtol: 1e-5, atol: 1e-6 });
    const bytes = bytesOf(2, 3, 5, 17);
    const x = tensor(floatsOf(bytes), [2, 3, 5, 5]);
    const y = normalize(x, [0.5, 0.5, 0.5], [0.25, 0.5, 1]);
    const got = await y.toArray();
    const expected = Array.from(floatsOf(bytes), (v, i) => (v - 0.5) / [0.25, 0.5, 1][Math.floor(i / 25) % 3]!);
    expect(got).toBeAllClose(expected, { rtol: 1e-6, atol: 1e-6 });
    x.dispose();
    y.dispose();
  });

  it('everything at once: crop, flip, gamma, normalise and the rotation batch', async () => {
    const options: AugmentOptions = { crop: { size: 6, padding: 1 }, hflip: 0.5, gamma: [0.8, 1.25], rotation: 'all', normalize: { mean: [0.5], std: [0.5] } };
    const r = await runBoth(options, 3, 1, 6, 21);
    expect(r.shape).toEqual([12, 1, 6, 6]);
    expect(r.u8).toBeAllClose(r.reference, { rtol: 1e-5, atol: 1e-5 });
    // The four copies of an image share its crop, flip and gamma.
    for (let i = 0; i < 3; i++) {
      const group = r.samples.slice(4 * i, 4 * i + 4);
      expect(new Set(group.map((s) => `${s.top},${s.left},${s.flip},${s.gamma}`)).size).toBe(1);
    }
  });

  it('draws are reproducible from the seed', () => {
    const aug = new Augment({ crop: { size: 28, padding: 4 }, hflip: 0.5, gamma: [0.7, 1.5], rotation: 'random' });
    expect(aug.draw(10, 28, 28, new Generator(42))).toEqual(aug.draw(10, 28, 28, new Generator(42)));
    expect(aug.draw(10, 28, 28, new Generator(42))).not.toEqual(aug.draw(10, 28, 28, new Generator(43)));
  });

  it('rejects inconsistent options', () => {
    expect(() => new Augment({ crop: { padding: 1 }, resizedCrop: { scale: [0.5, 1] } })).toThrow(/crop or resizedCrop/);
    expect(() => new Augment({ hflip: 2 })).toThrow(/probability/);
    expect(() => new Augment({ normalize: { mean: [0.5], std: [0] } })).toThrow(/std/);
    expect(() => new Augment({ normalize: { mean: [0.5], std: [1] } }).layout(3, 4, 4)).toThrow(/3-channel/);
  });
});
