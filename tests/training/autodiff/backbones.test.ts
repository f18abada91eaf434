// Whole backbones: a small random USE-lite graph (the converter's own emitter) and small Hugging Face encoders
// (the import fixtures): forward() against a plain onnxruntime session, gradients against finite differences,
// toModelBytes() after an edit.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { Dense, LayerNormParams, TransformerLayer, UseLiteArchitecture } from '../../../src/convert/use-lite-architecture.js';
import { buildUseLiteOnnx } from '../../../src/convert/use-lite-onnx.js';
import { DifferentiableGraph, type Gradient, type Param } from '../../../src/training/autodiff/index.js';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { mulberry32, writeHfFixture } from '../../helpers/hf-fixtures.js';
import { centralDifference, compareWithFiniteDifferences, describe, mismatches, objective, uniform, type Feeds } from './finite-differences.js';

// ---------------------------------------------------------------------------------------------------------------
// A USE-lite-shaped backbone: embeddings 8 wide, hidden 12, 2 heads of 6, FFN 16, two layers (the first widens
// through a residual projection, as USE-lite's does from 256 to 512), 6 positions at most.

function tinyUseLite(seed: number): UseLiteArchitecture {
  const random = mulberry32(seed);
  const values = (n: number, scale: number) => uniform(n, random, -scale, scale);
  const dense = (inSize: number, outSize: number): Dense => ({ inSize, outSize, weight: values(inSize * outSize, 1 / Math.sqrt(inSize)), bias: values(outSize, 0.1) });
  const norm = (n: number): LayerNormParams => ({ scale: Float32Array.from(values(n, 0.2), (v) => 1 + v), bias: values(n, 0.1) });
  const layer = (inputSize: number): TransformerLayer => ({
    inputSize,
    attentionNorm: norm(inputSize),
    qkv: dense(inputSize, 36),
    heads: 2,
    headSize: 6,
    queryScale: 1 / Math.sqrt(6),
    attentionOutput: dense(12, 12),
    residualProjection: inputSize === 12 ? null : dense(inputSize, 12),
    ffnNorm: norm(12),
    ffnIn: dense(12, 16),
    ffnOut: dense(16, 12),
  });
  return {
    vocabSize: 30,
    embeddingSize: 8,
    embeddings: values(30 * 8, 1),
    embeddingMultiplier: 2,
    inverseTimescales: Float32Array.from([1, 0.3, 0.1, 0.03]),
    maxTokens: 6,
    layerNormEpsilon: 1e-6,
    paddingBias: -1e9,
    layers: [layer(8), layer(12)],
    hiddenSize: 12,
    poolingDense: dense(12, 12),
    l2Epsilon: 1e-12,
  };
}

/** Three texts of 7 positions: lengths 7 (past maxTokens), 4 and 2, ids repeating within and across texts. */
function useLiteFeeds(): Feeds {
  const ids = [5, 9, 5, 1, 28, 3, 9, 2, 5, 7, 11, 0, 0, 0, 9, 4, 0, 0, 0, 0, 0];
  const lengths = [7, 4, 2];
  const mask = lengths.flatMap((n) => Array.from({ length: 7 }, (_, i) => (i < n ? 1 : 0)));
  return {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [3, 7]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [3, 7]),
  };
}

const USE_LITE_CONSTANTS = new Set(['inverse_timescales', 'padding_bias', 'one_f', 'l2_epsilon']);
const useLiteTrainable = (name: string) => !USE_LITE_CONSTANTS.has(name);

async function plainOutputs(bytes: Uint8Array, feeds: Feeds, names: string[]): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const result = await session.run(feeds, names);
  await session.release();
  return Object.fromEntries(names.map((n) => [n, result[n]!.data as Float32Array]));
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The derivative of f along a random direction over every parameter, by finite differences, and <g, v>. */
async function directional(graph: DifferentiableGraph, feeds: Feeds, seeds: Record<string, Float32Array>, gradients: Map<string, Gradient>, step: number) {
  const random = mulberry32(99);
  const directions = graph.params.map((p) => uniform(p.data.length, random));
  let analytic = 0;
  graph.params.forEach((p, k) => {
    const g = gradients.get(p.name)!;
    const v = directions[k]!;
    if (g.kind === 'dense') for (let i = 0; i < v.length; i++) analytic += g.data[i]! * v[i]!;
    else {
      const width = p.data.length / p.dims[0]!;
      g.rows.forEach((row, r) => {
        for (let j = 0; j < width; j++) analytic += g.values[r * width + j]! * v[row * width + j]!;
      });
    }
  });
  const originals = graph.params.map((p) => p.data.slice());
  const shift = (sign: number) => graph.params.forEach((p, k) => p.data.set(Float32Array.from(originals[k]!, (x, i) => x + sign * step * directions[k]![i]!)));
  shift(1);
  const up = await objective(graph, feeds, seeds);
  shift(-1);
  const down = await objective(graph, feeds, seeds);
  graph.params.forEach((p, k) => p.data.set(originals[k]!));
  return { analytic, numeric: (up - down) / (2 * step) };
}

interface BackboneCase {
  name: string;
  bytes: () => Uint8Array;
  feeds: () => Feeds;
  outputs: string[];
  trainable: (name: string, dims: readonly number[]) => boolean;
  /** Parameters checked entry by entry (a sample of each). */
  sampled: RegExp;
  /** The row-gathered tables. */
  tables: string[];
  step: number;
}

let hfDir: string;
const hfBytes = new Map<string, Uint8Array>();
before(async () => {
  hfDir = tempDir('polyhead-autodiff-');
  for (const kind of ['bert', 'distilbert-sst2'] as const) {
    await writeHfFixture(kind, join(hfDir, kind));
    hfBytes.set(kind, readFileSync(join(hfDir, kind, 'onnx', 'model.onnx')));
  }
});

function hfFeeds(withTypes: boolean): Feeds {
  const ids = [101, 2054, 2003, 1996, 2171, 102, 101, 7592, 102, 0, 0, 0];
  const mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
  const types = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0];
  const t = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [2, 6]);
  return { input_ids: t(ids.map((id) => id % 500)), attention_mask: t(mask), ...(withTypes ? { token_type_ids: t(types) } : {}) };
}

const BACKBONES: BackboneCase[] = [
  {
    name: 'USE-lite-shaped backbone (token_states and pooled)',
    bytes: () => buildUseLiteOnnx(tinyUseLite(5)),
    feeds: useLiteFeeds,
    outputs: ['token_states', 'pooled'],
    trainable: useLiteTrainable,
    sampled: /^(embeddings|layer_0_attention_norm\.scale|layer_0_qkv\.weight|layer_1_attention_output\.weight|layer_1_ffn_norm\.bias|layer_0_residual\.weight|layer_1_ffn_in\.weight|pooling_dense\.(weight|bias))$/,
    tables: ['embeddings'],
    step: 1e-2,
  },
  {
    name: 'Hugging Face BERT fixture (last_hidden_state)',
    bytes: () => hfBytes.get('bert')!,
    feeds: () => hfFeeds(true),
    outputs: ['last_hidden_state'],
    trainable: (_, dims) => dims.length > 0,
    sampled: /word_embeddings|position_embeddings|token_type_embeddings|embeddings\.LayerNorm\.weight|layer\.0\.attention\.self\.query\.bias|layer\.1\.output\.LayerNorm\.weight|intermediate\.dense\.bias|^onnx::MatMul_100[0-3]$/,
    tables: ['embeddings.word_embeddings.weight', 'embeddings.position_embeddings.weight', 'embeddings.token_type_embeddings.weight'],
    step: 1e-2,
  },
  {
    name: 'Hugging Face DistilBERT classifier fixture (logits: Gather on the first token, Relu)',
    bytes: () => hfBytes.get('distilbert-sst2')!,
    feeds: () => hfFeeds(false),
    outputs: ['logits'],
    trainable: (_, dims) => dims.length > 0,
    sampled: /word_embeddings|pre_classifier|classifier|layer\.1\.sa_layer_norm/,
    tables: ['distilbert.embeddings.word_embeddings.weight'],
    // A step of 1e-2 moves some pre-classifier ReLUs across their kink; 1e-3 does not.
    step: 1e-3,
  },
];

for (const c of BACKBONES) {
  for (const mode of ['stored', 'recomputed'] as const) {
    test(`${c.name} (${mode}): forward matches onnxruntime, gradients match finite differences`, async () => {
      const bytes = c.bytes();
      const feeds = c.feeds();
      const graph = await DifferentiableGraph.create(bytes, { outputs: c.outputs, trainable: c.trainable, intermediates: mode });
      const reference = await plainOutputs(bytes, feeds, c.outputs);
      const outputs = await graph.forward(feeds);
      for (const name of c.outputs) assert.ok(maxDifference(outputs[name]!.data, reference[name]!) <= 1e-5, `${name} differs from onnxruntime's`);

      const { comparisons, seeds, gradients } = await compareWithFiniteDifferences(graph, feeds, { params: (n) => c.sampled.test(n), maxEntries: 6, step: c.step });
      const bad = mismatches(comparisons, 2e-2, 2e-4);
      assert.deepEqual(bad, [], describe(bad));
      const checkedParams = new Set(comparisons.map((x) => x.param));
      assert.ok(checkedParams.size >= 4, `only ${[...checkedParams].join(', ')} checked`);

      for (const table of c.tables) {
        const gradient = gradients.get(table)!;
        assert.equal(gradient.kind, 'rows', `${table} has a rows gradient`);
        if (gradient.kind !== 'rows') continue;
        const param = graph.params.find((p) => p.name === table)!;
        // A row no text uses: not listed, and finite differences agree that it is zero.
        const width = param.data.length / param.dims[0]!;
        const unused = Array.from({ length: param.dims[0]! }, (_, i) => i).find((i) => !gradient.rows.includes(i));
        if (unused !== undefined) assert.ok(Math.abs(await centralDifference(graph, feeds, seeds, param, unused * width, c.step)) < 1e-4);
        assert.ok(gradient.rows.every((r, i) => i === 0 || r > gradient.rows[i - 1]!), 'rows ascending and unique');
      }

      const { analytic, numeric } = await directional(graph, feeds, seeds, gradients, c.step / 10);
      assert.ok(Math.abs(analytic - numeric) <= 2e-2 * Math.abs(analytic) + 1e-3, `directional derivative: analytic ${analytic}, numeric ${numeric}`);
      await graph.release();
    });
  }
}

test('both modes give the same gradients on the USE-lite-shaped backbone', async () => {
  const bytes = buildUseLiteOnnx(tinyUseLite(5));
  const feeds = useLiteFeeds();
  const seeds = { token_states: uniform(3 * 7 * 12, mulberry32(1)), pooled: uniform(3 * 12, mulberry32(2)) };
  const results: Array<Map<string, Gradient>> = [];
  for (const mode of ['stored', 'recomputed'] as const) {
    const graph = await DifferentiableGraph.create(bytes, { outputs: ['token_states', 'pooled'], trainable: useLiteTrainable, intermediates: mode });
    await graph.forward(feeds);
    results.push(await graph.backward(seeds));
    await graph.release();
  }
  for (const [name, a] of results[0]!) {
    const b = results[1]!.get(name)!;
    assert.equal(a.kind, b.kind);
    const da = a.kind === 'dense' ? a.data : a.values;
    const db = b.kind === 'dense' ? b.data : b.values;
    let scale = 1e-6;
    for (const v of da) scale = Math.max(scale, Math.abs(v));
    assert.ok(maxDifference(da, db) <= 1e-4 * scale, name);
  }
});

test('toModelBytes() after editing a parameter loads in onnxruntime and gives the edited outputs', async () => {
  const bytes = buildUseLiteOnnx(tinyUseLite(5));
  const feeds = useLiteFeeds();
  const graph = await DifferentiableGraph.create(bytes, { outputs: ['token_states', 'pooled'], trainable: useLiteTrainable });
  const before = await graph.forward(feeds);
  const edit = (p: Param) => p.data.forEach((v, i) => (p.data[i] = v * 1.5 + 0.01 * (i % 7)));
  edit(graph.params.find((p) => p.name === 'layer_1_ffn_out.weight')!);
  edit(graph.params.find((p) => p.name === 'embeddings')!);
  const edited = await graph.forward(feeds);
  assert.ok(maxDifference(edited.pooled!.data, before.pooled!.data) > 1e-3, 'the edit changes the outputs');
  const saved = await plainOutputs(graph.toModelBytes(), feeds, ['token_states', 'pooled']);
  assert.ok(maxDifference(saved.token_states!, edited.token_states!.data) <= 1e-5);
  assert.ok(maxDifference(saved.pooled!, edited.pooled!.data) <= 1e-5);
  await graph.release();
});
