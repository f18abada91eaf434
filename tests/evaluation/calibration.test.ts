// Temperature scaling: ECE by hand, the fit on logits with a known overconfidence, the temperature inside the
// exported head (served scores == softmax(logits / T)), and the trainer fitting it on validation only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createRng } from '../../src/datasets/split.js';
import type { BackboneOutput } from '../../src/engine/backbone.js';
import { runHead, type Classification, type HeadRow, type HeadSpec } from '../../src/engine/heads/head.js';
import { headKinds } from '../../src/engine/heads/registry.js';
import { defaultSessionOptions } from '../../src/engine/onnx-runtime.js';
import {
  calibrationBins,
  expectedCalibrationError,
  fitTemperature,
  logitsFromProbabilities,
  softmaxWithTemperature,
  temperatureNll,
  topClass,
} from '../../src/evaluation/calibration.js';
import { exportClassifierOnnx } from '../../src/training/export.js';
import { FeatureCache } from '../../src/training/features.js';
import { trainClassificationHead, type ClassificationExample } from '../../src/training/heads.js';
import { jsBackend } from '../../src/training/linalg.js';
import { initHeadWeights, predictLogits } from '../../src/training/model.js';
import { gaussian } from '../../src/training/random.js';
import { tempDir } from '../helpers/bundle-fixture.js';

const dir = tempDir('polyhead-calibration-');

test('ECE: 15 equal-width bins over the top-class score, weighted by their share of examples', () => {
  // Bin (0.6, 0.667]: scores 0.62, 0.64, one right -> |0.5 - 0.63| = 0.13, weight 2/5.
  // Bin (0.933, 1]: scores 0.95, 1.0, 0.97, all right -> |1 - 0.9733| = 0.0267, weight 3/5.
  const scores = [0.62, 0.95, 0.64, 1.0, 0.97];
  const correct = [true, true, false, true, true];
  const expected = (2 / 5) * Math.abs(0.5 - 0.63) + (3 / 5) * Math.abs(1 - (0.95 + 1 + 0.97) / 3);
  assert.ok(Math.abs(expectedCalibrationError(scores, correct) - expected) < 1e-12);
  const { bins } = calibrationBins(scores, correct);
  assert.equal(bins.length, 15);
  assert.deepEqual(bins.map((b) => b.count), [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3]);
  // A score on a bin edge belongs to the bin below it (intervals are open on the left).
  assert.equal(calibrationBins([10 / 15], [true]).bins[9]!.count, 1);
  assert.equal(expectedCalibrationError([0.8, 0.8, 0.8, 0.8, 0.8], [true, true, true, true, false]), 0, 'perfectly calibrated');
  assert.throws(() => expectedCalibrationError([1.2], [true]), /outside \[0, 1\]/);
});

/** Three-class logits whose softmax is the true probability, multiplied by `overconfidence`; labels drawn from the true probabilities. */
function overconfidentLogits(n: number, overconfidence: number, seed: string) {
  const rng = createRng(seed);
  const normal = gaussian(rng);
  const L = 3;
  const logits = new Float64Array(n * L);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const truth = Array.from({ length: L }, () => 1.2 * normal());
    const p = softmaxWithTemperature(truth, L);
    const u = rng();
    targets[i] = u < p[0]! ? 0 : u < p[0]! + p[1]! ? 1 : 2;
    truth.forEach((z, c) => (logits[i * L + c] = overconfidence * z));
  }
  return { logits, targets, L };
}

test('fitTemperature recovers a known overconfidence: T > 1, ECE drops, argmax unchanged; deterministic', () => {
  const { logits, targets, L } = overconfidentLogits(4000, 3, 'overconfident');
  const fit = fitTemperature(logits, targets, L);
  assert.ok(fit.temperature > 2.6 && fit.temperature < 3.4, `T = ${fit.temperature} (the logits are 3x the true ones)`);
  assert.ok(fit.nllAfter < fit.nllBefore);
  // The fit is the minimum: nudging T either way does not lower the NLL.
  for (const factor of [0.98, 1.02]) assert.ok(temperatureNll(logits, targets, L, fit.temperature * factor) >= fit.nllAfter - 1e-12);
  const before = topClass(softmaxWithTemperature(logits, L, 1), L, targets);
  const after = topClass(softmaxWithTemperature(logits, L, fit.temperature), L, targets);
  assert.deepEqual(after.predicted, before.predicted, 'argmax unchanged');
  const eceBefore = expectedCalibrationError(before.scores, before.correct);
  const eceAfter = expectedCalibrationError(after.scores, after.correct);
  assert.ok(eceBefore > 0.1, `ECE before ${eceBefore}`);
  assert.ok(eceAfter < eceBefore / 3, `ECE ${eceBefore} -> ${eceAfter}`);
  assert.equal(fitTemperature(logits, targets, L).temperature, fit.temperature, 'same input, same T');

  // Underconfident logits (a third of the true ones) give T < 1.
  const under = overconfidentLogits(4000, 1 / 3, 'underconfident');
  assert.ok(fitTemperature(under.logits, under.targets, under.L).temperature < 0.5);
  // Served probabilities stand in for logits: the fit is the same.
  const fromScores = fitTemperature(logitsFromProbabilities(softmaxWithTemperature(logits, L)), targets, L);
  assert.ok(Math.abs(fromScores.temperature - fit.temperature) < 1e-6);
});

test('the exported head divides its logits by T: the engine serves softmax(logits / T) with the same argmax', async () => {
  const D = 16;
  const rng = createRng('export-temperature');
  const normal = gaussian(rng);
  const weights = initHeadWeights({ inputSize: D, window: 0, hidden: 0, numLabels: 3 }, rng);
  weights.w1 = Float32Array.from(weights.w1, (w) => 4 * w);
  const pooled = Array.from({ length: 6 }, () => Float32Array.from({ length: D }, () => normal()));
  const logits = await predictLogits(weights, pooled, jsBackend);
  const T = Math.fround(2.5);
  const serve = async (file: string) => {
    const spec: HeadSpec = { name: 'cls', task: 'classification', reads: 'pooled', file, labels: ['a', 'b', 'c'] };
    const head = await headKinds.classification(spec, defaultSessionOptions);
    const features: BackboneOutput = { size: pooled.length, tokens: 1, hidden: D, pooled: Float32Array.from(pooled.flatMap((p) => [...p])) };
    const rows: HeadRow[] = pooled.map((_, index) => ({ index, text: `t${index}`, encoding: { ids: new Int32Array(1), offsets: [[0, 2]], tokenCount: 1, truncated: false } }));
    const out = (await runHead(head, features, rows)) as Classification[];
    await head.release();
    return out;
  };
  writeFileSync(join(dir, 'scaled.onnx'), exportClassifierOnnx(weights, { temperature: T }));
  writeFileSync(join(dir, 'plain.onnx'), exportClassifierOnnx(weights));
  const scaled = await serve(join(dir, 'scaled.onnx'));
  const plain = await serve(join(dir, 'plain.onnx'));
  scaled.forEach((c, i) => {
    const expected = softmaxWithTemperature(logits[i]!, 3, T);
    c.scores.forEach((s, k) => assert.ok(Math.abs(s.score - expected[k]!) < 1e-5, `row ${i} label ${k}: ${s.score} vs ${expected[k]}`));
    assert.equal(c.label, plain[i]!.label, 'argmax unchanged');
    assert.ok(c.score < plain[i]!.score, 'T > 1 lowers the top score');
  });
  assert.deepEqual(exportClassifierOnnx(weights, { temperature: 1 }), exportClassifierOnnx(weights), 'T = 1 exports the graph as before');
  assert.throws(() => exportClassifierOnnx(weights, { temperature: 0 }), /positive/);
});

/** Features from a table instead of a backbone. */
class TableFeatures extends FeatureCache {
  constructor(private readonly table: ReadonlyMap<string, Float32Array>) {
    super(undefined as never);
  }
  override async pooled(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.table.get(t)!);
  }
}

test('trainClassificationHead fits T on the validation set only and exports it; ECE before and after per evaluation set', async () => {
  // Few training examples in many dimensions with noisy labels: the unregularised head overfits and is overconfident.
  const D = 40;
  const rng = createRng('overfit');
  const normal = gaussian(rng);
  const table = new Map<string, Float32Array>();
  const make = (prefix: string, n: number): ClassificationExample[] =>
    Array.from({ length: n }, (_, i) => {
      const label = i % 2 === 0 ? 'yes' : 'no';
      const noisy = rng() < 0.25 ? (label === 'yes' ? 'no' : 'yes') : label;
      const text = `${prefix} ${i}`;
      table.set(text, Float32Array.from({ length: D }, (_, d) => (d === 0 ? (label === 'yes' ? 1 : -1) : 0) + normal()));
      return { text, label: noisy };
    });
  const train = make('train', 60);
  const validation = make('validation', 300);
  const test_ = make('test', 300);
  const trained = await trainClassificationHead({
    features: new TableFeatures(table),
    labels: ['no', 'yes'],
    train,
    validation,
    evaluate: { test: test_ },
    seed: 1,
    hidden: 0,
    lr: 0.05,
    weightDecay: 0,
    dropout: 0,
    epochs: 200,
    earlyStoppingPatience: 200,
    backend: jsBackend,
  });
  const c = trained.calibration!;
  const valLogits = await predictLogits(trained.weights, validation.map((e) => table.get(e.text)!), jsBackend);
  const flat = Float64Array.from(valLogits.flatMap((l) => [...l]));
  const targets = validation.map((e) => (e.label === 'yes' ? 1 : 0));
  assert.equal(c.temperature, Math.fround(fitTemperature(flat, targets, 2).temperature), 'fitted on the validation logits');
  assert.equal(c.validationSamples, validation.length);
  assert.ok(c.temperature > 1, `an overfitted head is overconfident: T = ${c.temperature}`);
  const e = trained.evaluations.test!;
  assert.ok(e.expectedCalibrationError < e.uncalibratedExpectedCalibrationError, `ECE ${e.uncalibratedExpectedCalibrationError} -> ${e.expectedCalibrationError}`);

  // The exported file serves softmax(logits / T).
  const file = join(dir, 'trained.onnx');
  writeFileSync(file, trained.onnx);
  const head = await headKinds.classification({ name: 'h', task: 'classification', reads: 'pooled', file, labels: ['no', 'yes'] }, defaultSessionOptions);
  const some = test_.slice(0, 8);
  const features: BackboneOutput = { size: some.length, tokens: 1, hidden: D, pooled: Float32Array.from(some.flatMap((x) => [...table.get(x.text)!])) };
  const rows: HeadRow[] = some.map((x, index) => ({ index, text: x.text, encoding: { ids: new Int32Array(1), offsets: [[0, 1]], tokenCount: 1, truncated: false } }));
  const served = (await runHead(head, features, rows)) as Classification[];
  await head.release();
  const raw = await predictLogits(trained.weights, some.map((x) => table.get(x.text)!), jsBackend);
  served.forEach((s, i) => {
    const expected = softmaxWithTemperature(raw[i]!, 2, c.temperature);
    assert.ok(Math.abs(s.scores[1]!.score - expected[1]!) < 1e-5, `row ${i}: ${s.scores[1]!.score} vs ${expected[1]}`);
  });
});
