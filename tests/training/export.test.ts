// Served == trained: exported head files, loaded by the engine's own head loaders, compute what the
// TypeScript forward pass computes (within 1e-4), also inside padded batches.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BackboneOutput } from '../../src/engine/backbone.js';
import { runHead, type Classification, type Entity, type HeadRow, type HeadSpec } from '../../src/engine/heads/head.js';
import { iobTagSet } from '../../src/engine/heads/iob.js';
import { OnnxHeadSession } from '../../src/engine/heads/onnx-head.js';
import { headKinds } from '../../src/engine/heads/registry.js';
import { defaultSessionOptions } from '../../src/engine/onnx-runtime.js';
import { createRng } from '../../src/datasets/split.js';
import { exportClassifierOnnx, exportTokenClassifierOnnx } from '../../src/training/export.js';
import { predictEntities } from '../../src/training/heads.js';
import { jsBackend } from '../../src/training/linalg.js';
import { initHeadWeights, predictLogits, type HeadWeights } from '../../src/training/model.js';
import { gaussian } from '../../src/training/random.js';

const D = 24;
const dir = mkdtempSync(join(tmpdir(), 'polyhead-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function randomWeights(window: number, hidden: number, numLabels: number, seed: string): HeadWeights {
  const rng = createRng(seed);
  const normal = gaussian(rng);
  const w = initHeadWeights({ inputSize: D, window, hidden, numLabels }, rng);
  w.mean = Float32Array.from({ length: D }, () => normal() * 0.3);
  w.invStd = Float32Array.from({ length: D }, () => 0.5 + rng());
  w.b1 = Float32Array.from(w.b1, () => normal() * 0.1);
  w.b2 = Float32Array.from(w.b2, () => normal() * 0.1);
  return w;
}

function near(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= 1e-4, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

function softmax(row: Float32Array): number[] {
  const max = Math.max(...row);
  const e = Array.from(row, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** Text of `n` words "w0 w1 ..." with one token per word (offsets as the tokenizer would give them). */
function fakeRow(index: number, n: number): HeadRow {
  const words = Array.from({ length: n }, (_, i) => `Word${i}`);
  const text = words.join(' ');
  const offsets: Array<[number, number]> = [];
  let at = 0;
  for (const w of words) {
    offsets.push([at, at + w.length]);
    at += w.length + 1;
  }
  return { index, text, encoding: { ids: new Int32Array(n), offsets, tokenCount: n, truncated: false } };
}

test('classification heads: engine scores == softmax of the TypeScript logits', async () => {
  const rng = createRng('pooled');
  const normal = gaussian(rng);
  const pooled = Array.from({ length: 5 }, () => Float32Array.from({ length: D }, () => normal()));
  for (const hidden of [0, 16]) {
    const weights = randomWeights(0, hidden, 3, `cls${hidden}`);
    const file = join(dir, `cls${hidden}.onnx`);
    writeFileSync(file, exportClassifierOnnx(weights));
    const spec: HeadSpec = { name: 'cls', task: 'classification', reads: 'pooled', file, labels: ['a', 'b', 'c'] };
    const head = await headKinds.classification(spec, defaultSessionOptions);
    const features: BackboneOutput = { size: 5, tokens: 1, hidden: D, pooled: Float32Array.from(pooled.flatMap((p) => [...p])) };
    const rows = pooled.map((_, i) => fakeRow(i, 1));
    const served = (await runHead(head, features, rows)) as Classification[];
    const trained = await predictLogits(weights, pooled, jsBackend);
    served.forEach((result, i) => near(result.scores.map((s) => s.score), softmax(trained[i]!), `hidden ${hidden} row ${i}`));
    await head.release();
  }
});

test('token heads: raw logits and decoded entities match in a padded batch (window 0, 1, 2)', async () => {
  const rng = createRng('tokens');
  const normal = gaussian(rng);
  const lengths = [4, 1, 7, 3];
  const T = Math.max(...lengths);
  const tagSet = iobTagSet(['PER', 'LOC']);
  const sequences = lengths.map((n) => Float32Array.from({ length: n * D }, () => normal()));
  // The backbone's padded batch: zero states past each text's end.
  const tokenStates = new Float32Array(lengths.length * T * D);
  sequences.forEach((s, i) => tokenStates.set(s, i * T * D));
  const features: BackboneOutput = { size: lengths.length, tokens: T, hidden: D, pooled: new Float32Array(lengths.length * D), tokenStates };
  const rows = lengths.map((n, i) => fakeRow(i, n));
  for (const [window, hidden] of [[0, 0], [1, 12], [2, 0], [2, 12]] as const) {
    const weights = randomWeights(window, hidden, tagSet.length, `tok${window}-${hidden}`);
    const file = join(dir, `tok${window}-${hidden}.onnx`);
    writeFileSync(file, exportTokenClassifierOnnx(weights));
    const spec: HeadSpec = { name: 'ner', task: 'token_classification', reads: 'tokens', file, labels: tagSet };
    const trained = await predictLogits(weights, sequences, jsBackend);

    const raw = await OnnxHeadSession.load(spec, defaultSessionOptions);
    const { data, dims } = await raw.run(features, rows);
    assert.deepEqual([...dims], [lengths.length, T, tagSet.length]);
    lengths.forEach((n, i) => near(data.subarray(i * T * tagSet.length, (i * T + n) * tagSet.length), trained[i]!, `window ${window} hidden ${hidden} text ${i}`));
    await raw.release();

    const head = await headKinds.token_classification(spec, defaultSessionOptions);
    const served = (await runHead(head, features, rows)) as Entity[][];
    const expected = await predictEntities(
      weights,
      tagSet,
      rows.map((r, i) => ({ text: r.text, states: sequences[i]!, offsets: r.encoding.offsets, tokens: lengths[i]!, truncated: false })),
      jsBackend,
    );
    served.forEach((entities, i) => {
      assert.deepEqual(entities.map(({ score, ...e }) => e), expected[i]!.map(({ score, ...e }) => e), `entities of text ${i}`);
      near(entities.map((e) => e.score), expected[i]!.map((e) => e.score), `entity scores of text ${i}`);
    });
    await head.release();
  }
});
