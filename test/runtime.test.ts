// The GPU runtime: pooling, submits, dispatch folding, binding checks and error reports.
import { describe, expect, it } from 'vitest';
import { backend, F, memory, noGrad, randn, scope, tensor, zeros } from '../src/index.js';
import { sizeClass } from '../src/gpu/pool.js';
import { Tensor } from '../src/tensor.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('buffer pool', () => {
  it('size classes waste at most a fifth', () => {
    for (const bytes of [1, 255, 256, 257, 1000, 4096, 5000, 123457, 1 << 24]) {
      const size = sizeClass(bytes);
      expect(size).toBeGreaterThanOrEqual(bytes);
      if (bytes > 256) expect(size / bytes).toBeLessThanOrEqual(1.25);
    }
  });

  it('50 training steps of a small MLP create no GPU buffers after the first', async () => {
    const w1 = randn([16, 8]).mul(0.3).keep().requiresGrad_();
    const w2 = randn([3, 16]).mul(0.3).keep().requiresGrad_();
    const params = [w1, w2];
    const x = randn([32, 8]).keep();
    const labels = tensor(Int32Array.from({ length: 32 }, (_, i) => i % 3), [32]).keep();
    const step = (): void =>
      scope(() => {
        const loss = F.crossEntropy(F.linear(F.relu(F.linear(x, params[0]!)), params[1]!), labels);
        loss.backward();
        for (let i = 0; i < params.length; i++) {
          const p = params[i]!;
          const updated = noGrad(() => F.sub(p, F.mul(p.grad!, 0.1))).keep().requiresGrad_();
          p.grad!.dispose();
          p.dispose();
          params[i] = updated;
        }
        backend().flush();
      });
    step();
    step();
    const warm = memory();
    const submitsBefore = backend().submits;
    for (let i = 0; i < 50; i++) step();
    const after = memory();
    expect(after.buffersCreated).toBe(warm.buffersCreated);
    expect(after.bytesHeld).toBe(warm.bytesHeld);
    expect(after.bytesInUse).toBe(warm.bytesInUse);
    // One submit per step: the whole step's dispatches share a command buffer.
    expect(backend().submits - submitsBefore).toBe(50);
    const loss = scope(() => F.crossEntropy(F.linear(F.relu(F.linear(x, params[0]!)), params[1]!), labels).item());
    expect(await loss).toBeLessThan(1.0);
    for (const t of [...params, x, labels]) t.dispose();
  });
});

describe('dispatch', () => {
  it('folds grids over 65,535 workgroups into two dimensions', async () => {
    // 256 · 70,000 elements need 70,000 workgroups of 256.
    const n = 256 * 70_000;
    const out = scope(() => F.sum(F.add(zeros([n]), 1)));
    expect(await out.item()).toBe(n);
    out.dispose();
  });

  it('checks each binding against the kernel and the device limits', () => {
    const gpu = backend();
    const kernel = gpu.kernel('unary', 'unary_forward');
    const x = zeros([4]);
    expect(() => gpu.dispatch(kernel, { out: x.view }, {}, [1])).toThrow(/binding 'x' was not given/);
    expect(() => gpu.dispatch(kernel, { out: x.view, x: x.view, y: x.view }, {}, [1])).toThrow(/no storage binding named 'y'/);
    expect(() => gpu.dispatch(kernel, { out: x.view, x: { ...x.view, size: 6 } }, {}, [1])).toThrow(/not a whole number/);
    expect(() => gpu.dispatch(kernel, { out: x.view, x: x.view }, { nope: 1 }, [1])).toThrow(/no field 'nope'/);
    x.dispose();
  });

  it('names the op and both shapes on a shape mismatch', () => {
    scope(() => {
      expect(() => F.add(zeros([2, 3]), zeros([4]))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
      expect(() => F.matmul(zeros([2, 3]), zeros([4, 5]))).toThrow(/matmul: cannot multiply \[2, 3\] by \[4, 5\]/);
      expect(() => zeros([2, 3]).reshape(4, 2)).toThrow(/reshape: cannot view a tensor of shape \[2, 3\] as \[4, 2\]/);
    });
  });
});

describe('held work (hold, point, advance: --syncBN)', () => {
  it('queues held work in order, hands over each point’s values and lands the host’s writes there', async () => {
    const b = backend();
    const x = tensor([1, 2, 3, 4]).keep();
    const host = Tensor.empty([4]).keep();
    b.hold();
    const doubled = F.add(x, x).keep();
    // A held write comes after the dispatch before it, as it would unheld.
    b.write(x.view, new Float32Array([10, 20, 30, 40]));
    b.point([doubled.view, x.view]);
    const sum = F.add(x, host).keep();
    await expect(sum.toArray()).rejects.toThrow(/while a step's work is held back/);
    const seen = await b.advance();
    expect(seen!.map((a) => [...new Float32Array(a)])).toEqual([[2, 4, 6, 8], [10, 20, 30, 40]]);
    // Written at the point: the addition after it sees it.
    b.write(host.view, new Float32Array([1, 1, 1, 1]));
    expect(await b.advance()).toBeNull();
    expect([...(await sum.toArray())]).toEqual([11, 21, 31, 41]);
    for (const t of [x, host, doubled, sum]) t.dispose();
  });
});

describe('kernel library', () => {
  it('reports a WGSL syntax error with the file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dawnet-kernels-'));
    writeFileSync(join(dir, 'broken.wgsl'), '// a kernel\n\nfn oops( {\n}\n');
    const library = backend().library(dir);
    expect(() => library.get('broken', 'main')).toThrow(/kernels\/broken\.wgsl:3/);
  });

  it('reports a type error found by Dawn with the file and line at the next sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dawnet-kernels-'));
    writeFileSync(
      join(dir, 'typed.wgsl'),
      '@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n@compute @workgroup_size(1)\nfn main() {\n  out[0] = 1u;\n}\n',
    );
    const gpu = backend();
    const library = gpu.library(dir);
    library.get('typed', 'main');
    const messages = (await Promise.all(library.compileErrors)).filter(Boolean).join('\n');
    expect(messages).toMatch(/kernels\/typed\.wgsl:4:/);
    // The invalid pipeline also raised a validation error on the device; drain it here.
    await gpu.sync().catch(() => undefined);
  });

  it('names a missing kernel file or entry point', () => {
    expect(() => backend().kernel('no-such-family', 'main')).toThrow(/kernels\/no-such-family\.wgsl/);
    expect(() => backend().kernel('unary', 'nope')).toThrow(/has no compute entry point 'nope'/);
  });
});
