// The pieces the learning-curve scripts share (scripts/transfer-curve.ts: frozen, random weights, bag of words;
// scripts/fine-tune-curve.ts: the same plus the fine-tuned backbone): the label-balanced samples, the linear probe
// that reads every representation, the mean ± std of a point, and the SVG plot.
import { rename, writeFile } from 'node:fs/promises';
import type { SentimentExample } from '../src/datasets/pang-lee.js';
import { Backbone, type BackboneSpec } from '../src/engine/backbone.js';
import { defaultSessionOptions } from '../src/engine/onnx-runtime.js';
import { extractPooled } from '../src/training/features.js';
import { createProgressBar } from '../src/training/progress.js';
import { createRng, shuffle } from '../src/datasets/split.js';
import type { MatMulBackend } from '../src/training/linalg.js';
import { accuracy } from '../src/training/metrics.js';
import { predictLogits } from '../src/training/model.js';
import { argmaxRows, trainClassifier } from '../src/training/train.js';

/** The probe on every representation: a linear head (multinomial logistic regression), same settings. */
export const PROBE = { hidden: 0, lr: 3e-3, weightDecay: 1e-2, dropout: 0, validationFraction: 0.2, batchSize: 16 } as const;

export interface CurveMethod {
  id: string;
  name: string;
  colour: string;
}

export interface CurvePoint {
  method: string;
  n: number;
  runs: number[];
  mean: number;
  std: number;
}

export const label = (e: SentimentExample) => (e.label === 'positive' ? 1 : 0);

/** n examples from the pool, balanced by label, drawn with a seed. */
export function sample(pool: readonly SentimentExample[], n: number, seed: string): SentimentExample[] {
  if (n >= pool.length) return [...pool];
  const rng = createRng(seed);
  const pos = shuffle(pool.filter((e) => e.label === 'positive'), rng);
  const neg = shuffle(pool.filter((e) => e.label === 'negative'), rng);
  return shuffle([...pos.slice(0, Math.ceil(n / 2)), ...neg.slice(0, Math.floor(n / 2))], rng);
}

/**
 * Test accuracy of the linear probe trained on `train`. Early stopping reads `validation` when given, else a seeded
 * `PROBE.validationFraction` of `train` that the trainer holds out itself.
 */
export async function probe(
  train: Float32Array[],
  labels: number[],
  test: Float32Array[],
  testLabels: number[],
  seed: string,
  backend: MatMulBackend,
  standardise: boolean,
  validation?: { features: Float32Array[]; labels: number[] },
): Promise<number> {
  const trained = validation ? train.length : train.length * (1 - PROBE.validationFraction);
  const batchesPerEpoch = Math.ceil(trained / PROBE.batchSize);
  // At least ~400 updates whatever the size; early stopping on the held-out 20% picks the epoch.
  const epochs = Math.min(200, Math.max(20, Math.ceil(400 / batchesPerEpoch)));
  const result = await trainClassifier({ ...PROBE, features: train, labels, numLabels: 2, seed, epochs, earlyStoppingPatience: Math.max(5, Math.round(epochs / 5)), backend, standardise, ...(validation ? { validation } : {}) });
  const logits = await predictLogits(result.weights, test, backend);
  const flat = new Float32Array(test.length * 2);
  logits.forEach((l, i) => flat.set(l, i * 2));
  return accuracy(argmaxRows(flat, 2), testLabels);
}

/** A point from its runs: mean and sample standard deviation (0 for one run). */
export function summarise(method: string, n: number, runs: number[]): CurvePoint {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const std = runs.length > 1 ? Math.sqrt(runs.reduce((a, b) => a + (b - mean) ** 2, 0) / (runs.length - 1)) : 0;
  return { method, n, runs, mean, std };
}

/** A small SVG line plot: log-x axis of training sentences, accuracy on y, ±1 std bars, legend. */
export function renderSvg(points: CurvePoint[], sizes: number[], methods: readonly CurveMethod[], title = 'Sentiment accuracy vs labelled training sentences (Pang &amp; Lee test split)'): string {
  const W = 720;
  const H = 440;
  const m = { left: 64, right: 24, top: 40, bottom: 56 };
  const xMin = Math.log10(sizes[0]! * 0.85);
  const xMax = Math.log10(sizes.at(-1)! * 1.15);
  const lows = points.map((p) => p.mean - p.std);
  const highs = points.map((p) => p.mean + p.std);
  const yMin = Math.floor(Math.min(...lows) * 20) / 20;
  const yMax = Math.ceil(Math.max(...highs) * 20) / 20;
  const x = (n: number) => m.left + ((Math.log10(n) - xMin) / (xMax - xMin)) * (W - m.left - m.right);
  const y = (v: number) => H - m.bottom - ((v - yMin) / (yMax - yMin)) * (H - m.top - m.bottom);
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${title}</text>`);
  for (let v = yMin; v <= yMax + 1e-9; v += 0.05) {
    out.push(`<line x1="${m.left}" y1="${f(y(v))}" x2="${W - m.right}" y2="${f(y(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${f(y(v) + 4)}" text-anchor="end">${Math.round(v * 100)}%</text>`);
  }
  for (const n of sizes) {
    out.push(`<line x1="${f(x(n))}" y1="${m.top}" x2="${f(x(n))}" y2="${H - m.bottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${f(x(n))}" y="${H - m.bottom + 18}" text-anchor="middle">${n}</text>`);
  }
  out.push(`<line x1="${m.left}" y1="${H - m.bottom}" x2="${W - m.right}" y2="${H - m.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${H - m.bottom}" stroke="#333"/>`);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 14}" text-anchor="middle">labelled training sentences (log scale)</text>`);
  out.push(`<text transform="translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">test accuracy</text>`);
  methods.forEach((method) => {
    const series = points.filter((p) => p.method === method.id).sort((a, b) => a.n - b.n);
    out.push(`<polyline fill="none" stroke="${method.colour}" stroke-width="2.5" points="${series.map((p) => `${f(x(p.n))},${f(y(p.mean))}`).join(' ')}"/>`);
    for (const p of series) {
      if (p.std > 0) out.push(`<line x1="${f(x(p.n))}" y1="${f(y(p.mean - p.std))}" x2="${f(x(p.n))}" y2="${f(y(p.mean + p.std))}" stroke="${method.colour}" stroke-width="1.5"/>`);
      out.push(`<circle cx="${f(x(p.n))}" cy="${f(y(p.mean))}" r="4" fill="${method.colour}"><title>${method.name}: n=${p.n}, ${(100 * p.mean).toFixed(1)}% ± ${(100 * p.std).toFixed(1)}</title></circle>`);
    }
  });
  // Legend in the lower right, where the curves (rising to the right) leave room.
  const lx = W - m.right - 300;
  let ly = H - m.bottom - methods.length * 20 - 10;
  out.push(`<rect x="${lx - 8}" y="${ly - 8}" width="300" height="${methods.length * 20 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
  for (const method of methods) {
    out.push(`<line x1="${lx}" y1="${ly + 6}" x2="${lx + 24}" y2="${ly + 6}" stroke="${method.colour}" stroke-width="2.5"/>`);
    out.push(`<text x="${lx + 32}" y="${ly + 10}">${method.name}</text>`);
    ly += 20;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The pooled embedding of every text under each of `files` (the same spec with another ONNX graph), once per graph. */
export async function pooledFeatures<Id extends string>(spec: BackboneSpec, files: Record<Id, string>, texts: readonly string[]): Promise<Record<Id, Map<string, Float32Array>>> {
  const features = {} as Record<Id, Map<string, Float32Array>>;
  for (const [id, file] of Object.entries(files) as Array<[Id, string]>) {
    const backbone = await Backbone.load({ ...spec, file }, defaultSessionOptions);
    const bar = createProgressBar(`features (${id})`.padEnd(24));
    const pooled = await extractPooled(backbone, texts, { onProgress: (e) => bar.update(e.done, e.total) });
    bar.finish();
    features[id] = new Map(texts.map((t, i) => [t, pooled[i]!]));
    await backbone.release();
  }
  return features;
}

export async function writeAtomically(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
