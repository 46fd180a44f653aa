// The implicit-GEMM convolution kernels (kernels/conv2d_gemm.wgsl, the GPU path) forced on
// whatever adapter runs the suite, against a float64 reference of all three passes, on the op
// table's shapes and on awkward ones: batch 1, stride 2, padding, dilation, groups, channel and
// pixel counts that are not multiples of the tile, a split-K weight gradient, the large tile.
import { describe, expect, it } from 'vitest';
import { backend, scope, tensor } from '../src/index.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dGeometry, convOps, type Conv2dAttrs, type ConvGeometry } from '../src/ops/conv.js';
import { convPath, planConvGemm, type ConvOptions } from '../src/ops/conv-plan.js';
import { H200, lavapipe } from './devices.js';
import { Generator } from '../src/random.js';

function draw(shape: readonly number[], seed: number): Float32Array {
  const rng = new Generator(seed);
  return Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.normal());
}

/** y = conv2d(x, w) + b, dx and dw for an upstream dy, in float64, from one loop nest (torch.nn.functional.conv2d). */
function reference(x: Float32Array, w: Float32Array, b: Float32Array, dy: Float32Array, g: ConvGeometry): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const y = new Float64Array(g.N * g.Co * g.Ho * g.Wo);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const cin = g.Ci / g.groups;
  const cout = g.Co / g.groups;
  for (let n = 0; n < g.N; n++) {
    for (let co = 0; co < g.Co; co++) {
      for (let oh = 0; oh < g.Ho; oh++) {
        for (let ow = 0; ow < g.Wo; ow++) {
          const at = ((n * g.Co + co) * g.Ho + oh) * g.Wo + ow;
          let acc = b[co]!;
          for (let c = 0; c < cin; c++) {
            const ci = Math.floor(co / cout) * cin + c;
            for (let kh = 0; kh < g.KH; kh++) {
              const ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.KW; kw++) {
                const iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iw < 0 || iw >= g.W) continue;
                const xi = ((n * g.Ci + ci) * g.H + ih) * g.W + iw;
                const wi = ((co * cin + c) * g.KH + kh) * g.KW + kw;
                acc += w[wi]! * x[xi]!;
                dx[xi]! += dy[at]! * w[wi]!;
                dw[wi]! += dy[at]! * x[xi]!;
              }
            }
          }
          y[at] = acc;
        }
      }
    }
  }
  return { y, dx, dw };
}

const conv = (a: Partial<Conv2dAttrs>): Conv2dAttrs => ({ stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, ...a });

const CASES: [number[], number[], Conv2dAttrs][] = [
  ...convOps.conv2d.cases.map((c): [number[], number[], Conv2dAttrs] => [c.shapes[0]!, c.shapes[1]!, c.attrs]),
  [[1, 20, 9, 7], [19, 20, 3, 3], conv({ padding: [1, 1] })],
  [[2, 6, 11, 10], [12, 3, 5, 5], conv({ padding: [2, 1], groups: 2 })],
  [[1, 5, 13, 9], [70, 5, 3, 3], conv({ stride: [2, 2], padding: [1, 1] })],
  [[1, 8, 10, 10], [33, 8, 3, 2], conv({ padding: [3, 0], dilation: [2, 3] })],
  // 2·17·17 = 578 output pixels: a split-K weight gradient of several chunks.
  [[2, 3, 17, 17], [5, 3, 3, 3], conv({ padding: [1, 1] })],
  // 16·18 pixels an image, whole vec4s of dy: the vec4 weight gradient, split in 2 chunks.
  [[2, 3, 16, 18], [5, 3, 3, 3], conv({ padding: [1, 1] })],
];

// Float32 sums of up to a few hundred products (dw: up to 578) of unit normals.
const TOLERANCE = { rtol: 1e-4, atol: 1e-3 };

async function check(xs: number[], ws: number[], attrs: Conv2dAttrs, options: ConvOptions): Promise<void> {
  const g = conv2dGeometry(xs, ws, [ws[0]!], attrs);
  const dyShape = [g.N, g.Co, g.Ho, g.Wo];
  const [x, w, b, dy] = [draw(xs, 1), draw(ws, 2), draw([ws[0]!], 3), draw(dyShape, 4)];
  const want = reference(x, w, b, dy, g);
  await scope(async () => {
    const [tx, tw, tdy] = [tensor(x, xs), tensor(w, ws), tensor(dy, dyShape)];
    expect(await conv2dForward(tx, tw, tensor(b, [ws[0]!]), g, options).toArray()).toBeAllClose(want.y, TOLERANCE);
    // The fused epilogue: relu(conv2d(x, w) + b).
    const relu = want.y.map((v) => Math.max(v, 0));
    expect(await conv2dForward(tx, tw, tensor(b, [ws[0]!]), g, options, true).toArray()).toBeAllClose(relu, TOLERANCE);
    expect(await conv2dBackwardInput(tdy, tw, g, null, options).toArray()).toBeAllClose(want.dx, TOLERANCE);
    expect(await conv2dBackwardWeight(tx, tdy, g, options).toArray()).toBeAllClose(want.dw, TOLERANCE);
  });
}

const label = (xs: number[], ws: number[], a: Conv2dAttrs): string => `x [${xs.join('x')}] w [${ws.join('x')}] stride ${a.stride} pad ${a.padding} dil ${a.dilation} groups ${a.groups}`;

describe('conv2d GEMM kernels', () => {
  for (const [xs, ws, attrs] of CASES) {
    it(`match the float64 reference: ${label(xs, ws, attrs)}`, () => check(xs, ws, attrs, { path: 'gemm' }));
  }

  it('match it with the 128 × 128 tile and an 8 × 8 register block', () =>
    check([1, 6, 15, 13], [130, 6, 3, 3], conv({ padding: [1, 1] }), { path: 'gemm', gemmTile: { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 8 } }));

  it('split the weight gradient into several chunks, summed in a fixed order', () => {
    const g = conv2dGeometry([2, 3, 17, 17], [5, 3, 3, 3], null, conv({ padding: [1, 1] }));
    const plan = planConvGemm('backward_weight', g, backend().caps, backend().bindingLimit);
    expect(plan?.chunks).toBeGreaterThan(1);
    const whole = conv2dGeometry([2, 3, 16, 18], [5, 3, 3, 3], null, conv({ padding: [1, 1] }));
    expect(planConvGemm('backward_weight', whole, backend().caps, backend().bindingLimit)).toMatchObject({ entry: 'conv2d_backward_weight_vec4', chunks: 2, rowsPerChunk: 288 });
  });

  it('refuse a fused ReLU off the GEMM kernels', () =>
    scope(() => {
      const g = conv2dGeometry([1, 2, 4, 4], [3, 2, 3, 3], null, conv({}));
      const [x, w] = [tensor(new Float32Array(32), [1, 2, 4, 4]), tensor(new Float32Array(54), [3, 2, 3, 3])];
      expect(() => conv2dForward(x, w, null, g, { path: 'direct' }, true)).toThrow(/fused ReLU needs the GEMM kernel/);
    }));
});

describe('the adapter under test', () => {
  // CI runs the GEMM tests at LP_NATIVE_VECTOR_WIDTH = 128, 256 and 512: lavapipe's subgroups
  // must then really be 4, 8 and 16 lanes wide, or those runs test less than they claim.
  it('has the subgroup width LP_NATIVE_VECTOR_WIDTH asks of lavapipe', (context) => {
    const width = Number(process.env.LP_NATIVE_VECTOR_WIDTH);
    const caps = backend().caps;
    if (!caps.software || !width) context.skip();
    expect([caps.subgroupMin, caps.subgroupMax]).toEqual([width / 32, width / 32]);
  });
});

describe('conv2d planner (pure: no device)', () => {
  // ResNet-18's CIFAR layer2 3×3 convolution at batch 128.
  const g = conv2dGeometry([128, 128, 16, 16], [128, 128, 3, 3], null, conv({ padding: [1, 1] }));

  it('takes the GEMMs on a GPU or when forced, and today\'s CPU paths on lavapipe', () => {
    expect(convPath(H200, 'default', false, {})).toBe('gemm');
    expect(convPath(lavapipe(8), 'default', true, {})).toBe('simd');
    expect(convPath(lavapipe(4), 'default', false, {})).toBe('direct');
    expect(convPath(lavapipe(16), 'gemm', false, {})).toBe('gemm');
    expect(convPath(H200, 'default', false, { path: 'direct' })).toBe('direct');
  });

  it('tiles each pass as a GEMM of its own rows, columns and depth', () => {
    const limit = H200.maxStorageBufferBindingSize;
    // 128 channels × 32,768 pixels: 128 × 128 tiles, 256 along the pixels.
    expect(planConvGemm('forward', g, H200, limit)).toMatchObject({ entry: 'conv2d_forward_vec4', overrides: { TM: 8, TN4: 2 }, grid: [256, 1, 1], chunks: 1, scratchBytes: 0 });
    expect(planConvGemm('backward_input', g, H200, limit)).toMatchObject({ entry: 'conv2d_backward_input', grid: [256, 1, 1] });
    // 128 × 1,152 taps is only 9 tiles of 128: 64 × 64 tiles, split over the 32,768 pixels.
    const dw = planConvGemm('backward_weight', g, H200, limit)!;
    // 16 × 16 pixels an image: dy loads as vec4s, and chunks hold whole vec4s.
    expect(dw).toMatchObject({ entry: 'conv2d_backward_weight_vec4', overrides: { TM: 4, TN4: 1 }, chunks: 29, rowsPerChunk: 1132 });
    expect(dw.grid).toEqual([18, 2, 29]);
    expect(dw.scratchBytes).toBe(4 * 29 * 128 * 1152);
  });

  it('keeps the partial sums inside one binding and the grid inside the device\'s', () => {
    const dw = planConvGemm('backward_weight', g, H200, 4 * 128 * 1152 * 3)!;
    expect(dw.chunks).toBe(3);
    const huge = conv2dGeometry([1, 1, 1, 2 ** 23], [1, 1, 1, 1], null, conv({}));
    expect(planConvGemm('forward', huge, H200, H200.maxStorageBufferBindingSize)).toBeNull();
  });

  it('loads the weight as vec4s only when the taps are whole vec4s (not the 3-channel stem)', () => {
    const stem = conv2dGeometry([128, 3, 32, 32], [64, 3, 3, 3], null, conv({ padding: [1, 1] }));
    expect(planConvGemm('forward', stem, H200, H200.maxStorageBufferBindingSize)?.entry).toBe('conv2d_forward');
    expect(planConvGemm('backward_input', g, H200, H200.maxStorageBufferBindingSize)?.entry).toBe('conv2d_backward_input');
    expect(() => planConvGemm('forward', g, H200, H200.maxStorageBufferBindingSize, { WG_X: 16, WG_Y: 16, TM: 8, TN4: 2, BK: 32 })).toThrow(/at most 8 per invocation/);
  });
});
