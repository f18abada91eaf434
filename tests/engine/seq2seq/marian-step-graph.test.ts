import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildMarianCrossGraph, buildMarianStepGraph } from '../../../src/engine/seq2seq/marian-step-graph.js';
import { marianConfig, readMarianDecoderWeights } from '../../../src/engine/seq2seq/marian-weights.js';
import { mulberry32 } from '../../helpers/hf-fixtures.js';
import { marianTiny, OptimumReference, SENTENCES, tokenize, type Fixture } from './marian-reference.js';

const TOLERANCE = 1e-4;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

describe('Marian step and cross graphs', () => {
  let fixture: Fixture;
  let reference: OptimumReference;
  let step: ort.InferenceSession;
  let cross: ort.InferenceSession;
  let sources: Int32Array[];

  before(async () => {
    fixture = await marianTiny('unmerged');
    const config = marianConfig(JSON.parse(readFileSync(join(fixture.dir, 'config.json'), 'utf8')));
    // Read from the merged decoder of another folder with the same weights: the graphs must match decoder_model.onnx.
    const weights = await readMarianDecoderWeights(join((await marianTiny('merged')).dir, 'onnx', 'decoder_model_merged.onnx'), config);
    const options = { intraOpNumThreads: 1, interOpNumThreads: 1 };
    step = await ort.InferenceSession.create(buildMarianStepGraph(weights), options);
    cross = await ort.InferenceSession.create(buildMarianCrossGraph(weights), options);
    reference = await OptimumReference.load(fixture);
    sources = await tokenize(fixture.dir, SENTENCES.slice(0, 3));
  });

  after(async () => {
    await Promise.all([step.release(), cross.release(), reference.release()]);
  });

  it('declares the contract: inputs, outputs and their shapes', () => {
    const L = fixture.info.decoderLayers;
    const perLayer = (...names: string[]) => Array.from({ length: L }, (_, i) => names.map((n) => `${n}_${i}`)).flat();
    assert.deepEqual(
      [...step.inputNames].sort(),
      ['input_ids', 'positions', 'self_mask', 'cross_mask', ...perLayer('past_key', 'past_value', 'cross_key', 'cross_value')].sort(),
    );
    assert.deepEqual([...step.outputNames].sort(), ['logits', ...perLayer('new_key', 'new_value')].sort());
    assert.deepEqual([...cross.inputNames], ['encoder_hidden_states']);
    assert.deepEqual([...cross.outputNames].sort(), perLayer('cross_key', 'cross_value').sort());
  });

  it('cross graph = the cross-attention keys/values decoder_model.onnx computes', async () => {
    const { decoderLayers: L } = fixture.info;
    for (const source of sources.slice(0, 2)) {
      const hidden = await reference.encode(source);
      const ours = await cross.run({ encoder_hidden_states: hidden });
      const { outputs } = await reference.noCache(hidden, source.length, [[fixture.info.decoderStartId]]);
      for (let i = 0; i < L; i++) {
        for (const kv of ['key', 'value'] as const) {
          const theirs = outputs[`present.${i}.encoder.${kv}`]!;
          assert.deepEqual(ours[`cross_${kv}_${i}`]!.dims, theirs.dims);
          assert.ok(maxAbsDiff(ours[`cross_${kv}_${i}`]!.data as Float32Array, theirs.data as Float32Array) < 1e-5);
        }
      }
    }
  });

  it("rows at different positions in one run: each row's logits and new key/value = decoder_model.onnx's, masked past ignored", async () => {
    const { decoderLayers: L, heads: H, headDim: Dh, vocabSize: V, decoderStartId, padId } = fixture.info;
    const random = mulberry32(7);
    // Tokens each row has fed (teacher forcing with arbitrary ids, pad excepted), longest 14.
    const fed = sources.map(() => [decoderStartId, ...Array.from({ length: 14 }, () => Math.floor(random() * (V - 1)))]);
    assert.ok(fed.flat().every((t, i) => t !== padId || i % 15 === 0));
    const hidden = await Promise.all(sources.map((s) => reference.encode(s)));
    // Several steps, rows at their own lengths (0 = a row that has just joined), one step graph run each.
    const steps = [
      [0, 0, 0],
      [3, 0, 9],
      [1, 7, 2],
      [13, 5, 0],
      [14, 14, 14],
    ];
    let checked = 0;
    for (const positions of steps) {
      const B = positions.length;
      const P = Math.max(1, ...positions);
      const S = Math.max(...sources.map((s) => s.length));
      const expected = await Promise.all(positions.map((p, r) => reference.noCache(hidden[r]!, sources[r]!.length, [fed[r]!.slice(0, p + 1)])));
      // Masked positions hold garbage: the result must not depend on it.
      const garbage = () => (random() * 2 - 1) * 1e3;
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64(positions.map((p, r) => fed[r]![p]!), [B]),
        positions: int64(positions, [B]),
        self_mask: new ort.Tensor('float32', Float32Array.from({ length: B * P }, (_, j) => (j % P < positions[Math.floor(j / P)]! ? 1 : 0)), [B, P]),
        cross_mask: new ort.Tensor('float32', Float32Array.from({ length: B * S }, (_, j) => (j % S < sources[Math.floor(j / S)]!.length ? 1 : 0)), [B, S]),
      };
      for (let i = 0; i < L; i++) {
        for (const kv of ['key', 'value'] as const) {
          const past = Float32Array.from({ length: B * H * P * Dh }, garbage);
          const crossKv = Float32Array.from({ length: B * H * S * Dh }, garbage);
          positions.forEach((p, r) => {
            const present = expected[r]!.outputs[`present.${i}.decoder.${kv}`]!.data as Float32Array; // [1, H, p + 1, Dh]
            const encoder = expected[r]!.outputs[`present.${i}.encoder.${kv}`]!.data as Float32Array; // [1, H, S_r, Dh]
            const Sr = sources[r]!.length;
            for (let h = 0; h < H; h++) {
              past.set(present.subarray(h * (p + 1) * Dh, (h * (p + 1) + p) * Dh), (r * H + h) * P * Dh);
              crossKv.set(encoder.subarray(h * Sr * Dh, (h + 1) * Sr * Dh), (r * H + h) * S * Dh);
            }
          });
          feeds[`past_${kv}_${i}`] = new ort.Tensor('float32', past, [B, H, P, Dh]);
          feeds[`cross_${kv}_${i}`] = new ort.Tensor('float32', crossKv, [B, H, S, Dh]);
        }
      }
      const out = await step.run(feeds);
      assert.deepEqual(out.logits!.dims, [B, V]);
      const logits = out.logits!.data as Float32Array;
      positions.forEach((p, r) => {
        const diff = maxAbsDiff(logits.subarray(r * V, (r + 1) * V), expected[r]!.logits);
        assert.ok(diff < TOLERANCE, `positions ${positions}: row ${r} at ${p} differs by ${diff}`);
        for (let i = 0; i < L; i++) {
          for (const kv of ['key', 'value'] as const) {
            const present = expected[r]!.outputs[`present.${i}.decoder.${kv}`]!.data as Float32Array;
            const ours = out[`new_${kv}_${i}`]!;
            assert.deepEqual(ours.dims, [B, H, 1, Dh]);
            for (let h = 0; h < H; h++) {
              const theirs = present.subarray((h * (p + 1) + p) * Dh, (h * (p + 1) + p + 1) * Dh);
              assert.ok(maxAbsDiff((ours.data as Float32Array).subarray((r * H + h) * Dh, (r * H + h + 1) * Dh), theirs) < 1e-5);
            }
          }
        }
        checked++;
      });
    }
    assert.equal(checked, 15);
  });
});
