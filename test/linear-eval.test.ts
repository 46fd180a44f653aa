// The linear evaluation head (src/train/linear-eval.ts): Jacobi eigen-decomposition against the
// matrix it decomposes, PCA keeping the direction of largest spread, and the GPU logistic
// regression separating separable classes and matching sklearn's optimum on a 1-D case.
import { describe, expect, it } from 'vitest';
import { featureStats, fitPca, logisticRegression, symmetricEigen, type FeatureRows } from '../src/train/linear-eval.js';
import { Generator } from '../src/random.js';

describe('linear evaluation', () => {
  it('symmetricEigen: V Λ Vᵀ rebuilds the matrix, V is orthonormal, values descend', () => {
    const d = 7;
    const g = new Generator(3);
    const m = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) m[i * d + j] = m[j * d + i] = g.uniform() - 0.5;
    const { values, vectors } = symmetricEigen(m, d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let rebuilt = 0;
        let dot = 0;
        for (let k = 0; k < d; k++) {
          rebuilt += vectors[i * d + k]! * values[k]! * vectors[j * d + k]!;
          dot += vectors[k * d + i]! * vectors[k * d + j]!;
        }
        expect(rebuilt).toBeCloseTo(m[i * d + j]!, 10);
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
    for (let k = 1; k < d; k++) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
  });

  it('standardises with the training rows and keeps the correlated direction first', () => {
    const g = new Generator(5);
    const n = 200;
    const x = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const t = g.normal();
      // Features 0 and 1 move together; feature 2 is independent noise on another scale.
      [x[i * 3], x[i * 3 + 1], x[i * 3 + 2]] = [10 + 3 * t, -2 * t + 0.01 * g.normal(), 100 * g.normal()];
    }
    const rows: FeatureRows = { x, labels: new Int32Array(n), n, d: 3 };
    const { mean, std } = featureStats(rows);
    expect(mean[0]!).toBeCloseTo(10, 0);
    expect(std[2]!).toBeGreaterThan(50);
    const pca = fitPca(rows, 1);
    // Standardised, two of three unit variances lie on one axis: about 2/3 of the variance.
    expect(pca.explained).toBeCloseTo(2 / 3, 1);
    const p = pca.project(rows);
    // The component follows feature 0 (and 1), not the noise: correlation ±1 with it, 0 with feature 2.
    const corr = (j: number) => {
      let [sxy, sxx, syy] = [0, 0, 0];
      for (let i = 0; i < n; i++) {
        const [a, b] = [p.x[i]!, x[i * 3 + j]! - mean[j]!];
        [sxy, sxx, syy] = [sxy + a * b, sxx + a * a, syy + b * b];
      }
      return sxy / Math.sqrt(sxx * syy);
    };
    expect(p.d).toBe(1);
    expect(Math.abs(corr(0))).toBeGreaterThan(0.99);
    expect(Math.abs(corr(2))).toBeLessThan(0.2);
  });

  it('logistic regression on the GPU separates three separable classes', async () => {
    const g = new Generator(9);
    const make = (n: number): FeatureRows => {
      const x = new Float64Array(n * 2);
      const labels = new Int32Array(n);
      const centres = [[4, 0], [-4, 0], [0, 4]];
      for (let i = 0; i < n; i++) {
        labels[i] = i % 3;
        x[i * 2] = centres[i % 3]![0]! + 0.5 * g.normal();
        x[i * 2 + 1] = centres[i % 3]![1]! + 0.5 * g.normal();
      }
      return { x, labels, n, d: 2 };
    };
    const r = await logisticRegression(make(60), make(31), 3, { iterations: 200 });
    expect(r.trainTop1).toBe(1);
    expect(r.testTop1).toBe(1);
  });
});
