// The linear evaluation the flowers tutorial reports: a frozen network's features of one block,
// averaged over space to one value per channel, standardised with the labelled images'
// statistics, projected on their first principal components, then a multinomial logistic
// regression, scored on held-out images. The covariance is C × C (C ≤ a few hundred), so its
// eigen-decomposition runs in float64 on the CPU; the regression trains on the GPU.
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../creation.js';
import type { DataLoader } from '../data/loader.js';
import * as F from '../functional.js';
import type { FeatureNet } from '../nn/feature-net.js';
import { Adam } from '../optim/adam.js';
import { scope } from '../scope.js';
import type { Tensor } from '../tensor.js';

/** n rows of d features, row-major, and their labels. */
export interface FeatureRows {
  x: Float64Array;
  labels: Int32Array;
  n: number;
  d: number;
}

/** The block's features of every image of one epoch of the loader, averaged over space. */
export async function collectFeatures(net: FeatureNet, block: string, loader: DataLoader): Promise<FeatureRows> {
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  let d = 0;
  for await (const batch of loader) {
    const f = noGrad(() =>
      scope(() => {
        const out = net.features(batch.images, [block])[block]!;
        return (out.ndim === 4 ? F.mean(F.flatten(out, 2), 2) : F.flatten(out, 1)).keep();
      }),
    );
    d = f.shape[1]!;
    parts.push((await f.toArray()) as Float32Array);
    f.dispose();
    labels.push(...batch.hostLabels);
    batch.dispose();
  }
  const x = new Float64Array(labels.length * d);
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  return { x, labels: Int32Array.from(labels), n: labels.length, d };
}

/** Per-feature mean and standard deviation of `rows` (features of zero spread keep std 1). */
export function featureStats({ x, n, d }: FeatureRows): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = std[j]! > 1e-24 ? Math.sqrt(std[j]!) : 1;
  return { mean, std };
}

/**
 * Eigenvalues (descending) and unit eigenvectors (columns of `vectors`, d × d row-major) of a
 * symmetric d × d matrix, by cyclic Jacobi rotations.
 */
export function symmetricEigen(matrix: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * d + q]! - a[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const [akp, akq] = [a[k * d + p]!, a[k * d + q]!];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const [apk, aqk] = [a[p * d + k]!, a[q * d + k]!];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const [vkp, vkq] = [v[k * d + p]!, v[k * d + q]!];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => a[j * d + j]! - a[i * d + i]!);
  const values = Float64Array.from(order, (i) => a[i * d + i]!);
  const vectors = new Float64Array(d * d);
  order.forEach((from, to) => {
    for (let k = 0; k < d; k++) vectors[k * d + to] = v[k * d + from]!;
  });
  return { values, vectors };
}

/**
 * Fits standardisation and a k-component PCA on `train` (sklearn StandardScaler then PCA:
 * covariance with n − 1) and returns the projection of any rows, with the variance it keeps.
 */
export function fitPca(train: FeatureRows, k: number): { project: (rows: FeatureRows) => FeatureRows; explained: number } {
  const { n, d } = train;
  const { mean, std } = featureStats(train);
  const z = (rows: FeatureRows) => Float64Array.from(rows.x, (v, i) => (v - mean[i % d]!) / std[i % d]!);
  const zt = z(train);
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < d; p++) {
      const zp = zt[i * d + p]!;
      for (let q = p; q < d; q++) cov[p * d + q]! += (zp * zt[i * d + q]!) / Math.max(1, n - 1);
    }
  }
  for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) cov[p * d + q] = cov[q * d + p]!;
  const { values, vectors } = symmetricEigen(cov, d);
  const kk = Math.min(k, d);
  const total = values.reduce((s, v) => s + Math.max(0, v), 0);
  const explained = total > 0 ? values.subarray(0, kk).reduce((s, v) => s + Math.max(0, v), 0) / total : 0;
  const project = (rows: FeatureRows): FeatureRows => {
    const zr = z(rows);
    const out = new Float64Array(rows.n * kk);
    for (let i = 0; i < rows.n; i++) for (let c = 0; c < kk; c++) for (let j = 0; j < d; j++) out[i * kk + c]! += zr[i * d + j]! * vectors[j * d + c]!;
    return { x: out, labels: rows.labels, n: rows.n, d: kk };
  };
  return { project, explained };
}

/**
 * Multinomial logistic regression as sklearn's LogisticRegression(C = 1): mean cross-entropy
 * plus ||W||² / (2n) (the bias not penalised), full batch on the GPU with Adam. Returns the
 * top-1 of `train` and `test` under the fitted weights.
 */
export async function logisticRegression(train: FeatureRows, test: FeatureRows, classes: number, { iterations = 500, lr = 0.05 } = {}): Promise<{ trainTop1: number; testTop1: number }> {
  const rows = (r: FeatureRows) => tensor(Float32Array.from(r.x), [r.n, r.d]).keep();
  const [xTrain, xTest] = [rows(train), rows(test)];
  const [yTrain, yTest] = [tensor(train.labels, [train.n], { dtype: 'int32' }).keep(), tensor(test.labels, [test.n], { dtype: 'int32' }).keep()];
  const w = tensor(new Float32Array(classes * train.d), [classes, train.d]).keep().requiresGrad_();
  const b = tensor(new Float32Array(classes), [classes]).keep().requiresGrad_();
  // Adam's weight decay adds λ·w to the gradient: the gradient of λ/2·||w||², so λ = 1 / n.
  const optimizer = new Adam([{ params: [w], weightDecay: 1 / train.n }, { params: [b], weightDecay: 0 }], { lr });
  try {
    for (let i = 0; i < iterations; i++) {
      scope(() => {
        optimizer.zeroGrad();
        F.crossEntropy(F.linear(xTrain, w, b), yTrain).backward();
        optimizer.step();
      });
    }
    const top1 = (x: Tensor, y: Tensor) => noGrad(() => scope(() => F.topkAccuracy(F.linear(x, w, b), y, 1).keep()));
    const [a, t] = [top1(xTrain, yTrain), top1(xTest, yTest)];
    const result = { trainTop1: await a.item(), testTop1: await t.item() };
    a.dispose();
    t.dispose();
    return result;
  } finally {
    optimizer.dispose();
    for (const t of [xTrain, xTest, yTrain, yTest, w, b]) t.dispose();
  }
}

export interface LinearEvalResult {
  block: string;
  components: number;
  /** Share of the standardised features' variance the components keep. */
  explainedVariance: number;
  trainTop1: number;
  testTop1: number;
}

/** features → standardise → PCA(components) → logistic regression, fitted on `train`, scored on `test`. */
export async function linearEvaluation(net: FeatureNet, block: string, train: DataLoader, test: DataLoader, classes: number, components = 64): Promise<LinearEvalResult> {
  net.eval();
  const [fTrain, fTest] = [await collectFeatures(net, block, train), await collectFeatures(net, block, test)];
  const pca = fitPca(fTrain, components);
  const fit = await logisticRegression(pca.project(fTrain), pca.project(fTest), classes);
  return { block, components: Math.min(components, fTrain.d), explainedVariance: pca.explained, ...fit };
}
