// The tape: accumulation, shared inputs, noGrad, graph release, and scope ownership.
import { describe, expect, it } from 'vitest';
import { F, memory, noGrad, ones, scope, tensor, zeros } from '../src/index.js';

describe('autograd tape', () => {
  it('accumulates gradients of an input used twice and across backward calls', async () => {
    const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
    scope(() => F.sum(F.mul(x, x)).backward());
    expect(await x.grad!.toArray()).toBeAllClose([2, 4, 6], { rtol: 0, atol: 0 });
    scope(() => F.sum(F.add(x, x)).backward());
    expect(await x.grad!.toArray()).toBeAllClose([4, 6, 8], { rtol: 0, atol: 0 });
    x.grad!.dispose();
    x.dispose();
  });

  it('backpropagates through reshape, broadcasting and a chain of ops', async () => {
    const w = tensor([[1, -1], [2, 0.5]], undefined, { requiresGrad: true });
    const b = tensor([0.1, -0.2], undefined, { requiresGrad: true });
    const loss = scope(() => {
      const x = tensor([[1, 2], [3, 4], [5, 6]]);
      const y = F.tanh(F.linear(x, w, b));
      const l = F.mean(F.pow(y.reshape(-1), 2));
      l.backward();
      return l.item();
    });
    // d/dW mean(tanh(xWᵀ+b)²) by hand in float64.
    const X = [[1, 2], [3, 4], [5, 6]];
    const W = [[1, -1], [2, 0.5]];
    const B = [0.1, -0.2];
    const gW = [[0, 0], [0, 0]];
    const gB = [0, 0];
    let total = 0;
    for (const row of X) {
      for (let o = 0; o < 2; o++) {
        const z = row[0]! * W[o]![0]! + row[1]! * W[o]![1]! + B[o]!;
        const y = Math.tanh(z);
        total += (y * y) / 6;
        const dz = ((2 * y) / 6) * (1 - y * y);
        gW[o]![0]! += dz * row[0]!;
        gW[o]![1]! += dz * row[1]!;
        gB[o]! += dz;
      }
    }
    expect(await loss).toBeCloseTo(total, 5);
    expect(await w.grad!.toArray()).toBeAllClose(gW.flat(), { rtol: 1e-5, atol: 1e-6 });
    expect(await b.grad!.toArray()).toBeAllClose(gB, { rtol: 1e-5, atol: 1e-6 });
  });

  it('records nothing under noGrad', () => {
    const x = ones([2], { requiresGrad: true });
    const y = noGrad(() => F.exp(x));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(() => y.backward()).toThrow(/does not require grad/);
  });

  it('refuses a second backward through a released graph', () => {
    const x = ones([3], { requiresGrad: true });
    scope(() => {
      const y = F.exp(x);
      const a = F.sum(y);
      const b = F.mean(y);
      a.backward();
      expect(() => b.backward()).toThrow(/already released/);
    });
  });

  it('a non-scalar output needs an explicit gradient', () => {
    const x = ones([2, 2], { requiresGrad: true });
    expect(() => scope(() => F.exp(x).backward())).toThrow(/one-element output/);
  });

  it('frees every intermediate when the scope ends', () => {
    const x = ones([64, 64], { requiresGrad: true });
    const before = memory().bytesInUse;
    scope(() => {
      const y = F.relu(F.matmul(x, x));
      F.sum(F.softmax(y)).backward();
    });
    x.grad!.dispose();
    x.grad = null;
    expect(memory().bytesInUse).toBe(before);
  });

  it('keeps what a scope returns and what is marked keep()', async () => {
    let kept = zeros([1]);
    const returned = scope(() => {
      kept = ones([2]).keep();
      ones([3]);
      return F.add(ones([2]), 1);
    });
    expect(await returned.toArray()).toBeAllClose([2, 2], { rtol: 0, atol: 0 });
    expect(await kept.toArray()).toBeAllClose([1, 1], { rtol: 0, atol: 0 });
    expect(() => scope(() => ones([1])).dispose()).not.toThrow();
  });

  it('rejects use of a disposed tensor with a clear message', () => {
    const x = ones([2]);
    x.dispose();
    expect(() => F.exp(x)).toThrow(/already disposed/);
  });
});
