// The trainers learn simple problems, honour the token window, and are deterministic for a seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng } from '../../src/datasets/split.js';
import { AdamW } from '../../src/training/adam.js';
import { createOnnxBackend, jsBackend } from '../../src/training/linalg.js';
import { predictLogits } from '../../src/training/model.js';
import { accuracy } from '../../src/training/metrics.js';
import { gaussian } from '../../src/training/random.js';
import { argmaxRows, trainClassifier, trainTokenClassifier } from '../../src/training/train.js';

/** Three Gaussian clusters in 8 dimensions (well separated). */
function clusters(count: number, seed: string) {
  const rng = createRng(seed);
  const normal = gaussian(rng);
  const centres = [0, 1, 2].map((c) => Float32Array.from({ length: 8 }, (_, i) => (i % 3 === c ? 3 : 0)));
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % 3;
    features.push(Float32Array.from(centres[label]!, (x) => x + normal()));
    labels.push(label);
  }
  return { features, labels };
}

test('trainClassifier learns separable clusters (linear and MLP) and is deterministic', async () => {
  const train = clusters(300, 'train');
  const held = clusters(150, 'test');
  for (const hidden of [0, 16]) {
    const options = { ...train, numLabels: 3, hidden, seed: 7, epochs: 30, lr: 1e-2, backend: jsBackend };
    const a = await trainClassifier(options);
    const b = await trainClassifier(options);
    assert.deepEqual(a.weights.w1, b.weights.w1, 'same seed, same weights');
    assert.deepEqual(a.history, b.history.map((h, i) => ({ ...h, ms: a.history[i]!.ms })));
    const logits = await predictLogits(a.weights, held.features, jsBackend);
    const flat = Float32Array.from(logits.flatMap((l) => [...l]));
    assert.ok(accuracy(argmaxRows(flat, 3), held.labels) > 0.95, `hidden ${hidden}: held-out accuracy`);
    const c = await trainClassifier({ ...options, seed: 8 });
    assert.notDeepEqual(a.weights.w1, c.weights.w1, 'another seed, other weights');
  }
});

test('the onnxruntime backend computes the same products as the TypeScript one', async () => {
  const rng = createRng('products');
  const a = Float32Array.from({ length: 7 * 5 }, () => rng() - 0.5);
  const b = Float32Array.from({ length: 5 * 3 }, () => rng() - 0.5);
  const c = Float32Array.from({ length: 7 * 3 }, () => rng() - 0.5);
  const ort = await createOnnxBackend();
  try {
    const close = (x: Float32Array, y: Float32Array) => x.forEach((v, i) => assert.ok(Math.abs(v - y[i]!) < 1e-5));
    close(await ort.matmul(a, 7, 5, b, 3), await jsBackend.matmul(a, 7, 5, b, 3));
    close(await ort.matmulTransA(a, 7, 5, c, 3), await jsBackend.matmulTransA(a, 7, 5, c, 3));
  } finally {
    await ort.release();
  }
});

test('trainTokenClassifier uses the neighbouring tokens (window 1)', async () => {
  // A token's label is 1 when the PREVIOUS token's first feature is positive: invisible without the window.
  const rng = createRng('tokens');
  const normal = gaussian(rng);
  const make = (count: number) => {
    const sequences: Float32Array[] = [];
    const tags: Int32Array[] = [];
    for (let s = 0; s < count; s++) {
      const length = 3 + Math.floor(rng() * 6);
      const states = Float32Array.from({ length: length * 4 }, () => normal());
      sequences.push(states);
      tags.push(Int32Array.from({ length }, (_, t) => (t > 0 && states[(t - 1) * 4]! > 0 ? 1 : 0)));
    }
    return { sequences, tags };
  };
  const train = make(300);
  const held = make(100);
  const score = async (window: number) => {
    const result = await trainTokenClassifier({ ...train, numLabels: 2, inputSize: 4, window, hidden: 8, seed: 1, epochs: 25, lr: 1e-2, classWeights: 'none', backend: jsBackend });
    const logits = await predictLogits(result.weights, held.sequences, jsBackend);
    const flat = Float32Array.from(logits.flatMap((l) => [...l]));
    return accuracy(argmaxRows(flat, 2), Int32Array.from(held.tags.flatMap((t) => [...t])));
  };
  assert.ok((await score(1)) > 0.95, 'window 1 sees the previous token');
  assert.ok((await score(0)) < 0.8, 'window 0 cannot');
});

test('AdamW minimises a quadratic', () => {
  const x = Float32Array.of(5, -3);
  const adam = new AdamW({ lr: 0.1 });
  adam.add('x', x, false);
  for (let i = 0; i < 500; i++) adam.update({ x: Float32Array.of(2 * (x[0]! - 1), 2 * (x[1]! + 2)) });
  assert.ok(Math.abs(x[0]! - 1) < 1e-2 && Math.abs(x[1]! + 2) < 1e-2, `converged to ${x[0]}, ${x[1]}`);
});
