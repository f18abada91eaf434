import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { marianConfig, marianDecoderWeights, readMarianDecoderWeights, type MarianDecoderWeights } from '../../../src/engine/seq2seq/marian-weights.js';
import { marianTiny } from './marian-reference.js';

const { onnx } = onnxProto;

async function folder() {
  const fixture = await marianTiny('both');
  const config = marianConfig(JSON.parse(readFileSync(join(fixture.dir, 'config.json'), 'utf8')));
  return { ...fixture, config, file: (name: string) => join(fixture.dir, 'onnx', name) };
}

/** The decoder file without some initializers, serialized. */
function without(file: string, drop: (name: string) => boolean): Uint8Array {
  const model = onnx.ModelProto.decode(readFileSync(file));
  const graph = model.graph as onnxProto.onnx.GraphProto;
  graph.initializer = graph.initializer.filter((t) => !drop(t.name ?? ''));
  return onnx.ModelProto.encode(model).finish();
}

function initializer(file: string, name: string): Float32Array {
  const graph = onnx.ModelProto.decode(readFileSync(file)).graph as onnxProto.onnx.GraphProto;
  const t = graph.initializer.find((i) => i.name === name)!;
  return new Float32Array(Uint8Array.from(t.rawData!).buffer);
}

describe('Marian decoder weights', () => {
  it('reads config.json', async () => {
    const { config, info } = await folder();
    assert.deepEqual(config, {
      dModel: info.dModel,
      decoderLayers: info.decoderLayers,
      decoderHeads: info.heads,
      activation: 'swish',
      scaleEmbedding: true,
      vocabSize: info.vocabSize,
      maxPositions: info.maxPositionEmbeddings,
      padTokenId: info.padId,
      eosTokenId: info.eosId,
      decoderStartTokenId: info.decoderStartId,
    });
  });

  it('finds every weight in the merged decoder and in decoder_model.onnx, the same in both', async () => {
    const { config, info, file } = await folder();
    const merged = await readMarianDecoderWeights(file('decoder_model_merged.onnx'), config);
    const plain = await readMarianDecoderWeights(file('decoder_model.onnx'), config);
    const d = info.dModel;
    for (const w of [merged, plain]) {
      assert.equal(w.layers.length, info.decoderLayers);
      assert.deepEqual([w.dModel, w.heads, w.headDim, w.ffnDim, w.vocabSize, w.maxPositions], [d, info.heads, info.headDim, info.decoderFfn, info.vocabSize, info.maxPositionEmbeddings]);
      assert.equal(w.embedTokens.length, info.vocabSize * d);
      assert.equal(w.outputProjection.length, d * info.vocabSize);
      assert.equal(w.layers[0]!.fc1.weight.length, d * info.decoderFfn);
      assert.equal(w.layers[1]!.fc2.inFeatures, info.decoderFfn);
      assert.equal(w.layers[0]!.selfAttnLayerNorm.epsilon, Math.fround(1e-5));
    }
    const flat = (w: MarianDecoderWeights) => [
      w.embedTokens,
      w.embedPositions,
      w.outputProjection,
      w.finalLogitsBias,
      ...w.layers.flatMap((l) => [l.selfAttn, l.crossAttn].flatMap((a) => [a.q, a.k, a.v, a.out]).concat([l.fc1, l.fc2]).flatMap((x) => [x.weight, x.bias])),
    ];
    flat(merged).forEach((array, i) => assert.deepEqual(array, flat(plain)[i], `tensor ${i}`));
    // Distinct linear layers get distinct matrices (the MatMul beside each named bias, not one found for all).
    const layer = plain.layers[1]!;
    assert.notDeepEqual(layer.selfAttn.q.weight, layer.selfAttn.k.weight);
    assert.notDeepEqual(layer.crossAttn.v.weight, layer.selfAttn.v.weight);
  });

  it('scales the token embedding by sqrt(d_model) only with scale_embedding, and reads the output projection apart', async () => {
    const { config, file, info } = await folder();
    const shared = initializer(file('decoder_model.onnx'), 'model.shared.weight');
    const scaled = await readMarianDecoderWeights(file('decoder_model.onnx'), config);
    const unscaled = await readMarianDecoderWeights(file('decoder_model.onnx'), { ...config, scaleEmbedding: false });
    assert.deepEqual(unscaled.embedTokens, shared);
    const scale = Math.fround(Math.sqrt(info.dModel));
    assert.deepEqual(scaled.embedTokens, shared.map((x) => Math.fround(x * scale)));
    // The tied projection is the shared table transposed: [d, V].
    const V = info.vocabSize;
    for (const [v, j] of [[0, 0], [5, 3], [V - 2, info.dModel - 1]] as const) assert.equal(scaled.outputProjection[j * V + v], shared[v * info.dModel + j]);
  });

  it('refuses decoder_with_past_model.onnx alone: it has no cross-attention key/value projections', async () => {
    const { config, file } = await folder();
    await assert.rejects(readMarianDecoderWeights(file('decoder_with_past_model.onnx'), config), (error: Error) => {
      assert.match(error.message, /decoder_with_past_model\.onnx/);
      assert.match(error.message, /model\.decoder\.layers\.0\.encoder_attn\.k_proj/);
      return true;
    });
  });

  it('names the file and the missing tensor', async () => {
    const { config, file } = await folder();
    const source = file('decoder_model.onnx');
    const cases: Array<[(name: string) => boolean, RegExp]> = [
      [(name) => name === 'model.decoder.layers.1.fc2.bias', /broken\.onnx: cannot find the decoder weight model\.decoder\.layers\.1\.fc2\.bias/],
      [(name) => name === 'final_logits_bias', /broken\.onnx: cannot find the decoder weight final_logits_bias/],
      [(name) => name === 'model.decoder.embed_positions.weight', /broken\.onnx: .*model\.decoder\.embed_positions\.weight/],
      [(name) => name === 'model.decoder.layers.0.encoder_attn_layer_norm.weight', /broken\.onnx: .*encoder_attn_layer_norm\.weight/],
    ];
    for (const [drop, message] of cases) assert.throws(() => marianDecoderWeights(without(source, drop), config, 'broken.onnx'), message);
    // The MatMul initializer beside a bias, found by structure: without it the Linear's weight is missing.
    const nodes = (onnx.ModelProto.decode(readFileSync(source)).graph as onnxProto.onnx.GraphProto).node as onnxProto.onnx.NodeProto[];
    const add = nodes.find((n) => n.opType === 'Add' && n.input.includes('model.decoder.layers.0.fc1.bias'))!;
    const matmul = nodes.find((n) => n.output[0] === add.input.find((i) => i !== 'model.decoder.layers.0.fc1.bias'))!;
    assert.throws(() => marianDecoderWeights(without(source, (name) => name === matmul.input[1]), config, 'broken.onnx'), /broken\.onnx: cannot find the decoder weight model\.decoder\.layers\.0\.fc1\.weight \(the MatMul feeding the Add with model\.decoder\.layers\.0\.fc1\.bias\)/);
    // Shapes that do not match config.json.
    await assert.rejects(readMarianDecoderWeights(source, { ...config, vocabSize: config.vocabSize + 1 }), /model\.shared\.weight has shape \[\d+, \d+\], expected/);
    assert.throws(() => marianDecoderWeights(Uint8Array.from([1, 2, 3]), config, 'junk.onnx'), /junk\.onnx/);
  });

  it('refuses configs it cannot build: pre-norm layers, unknown activations, heads not dividing d_model', () => {
    const base = { d_model: 32, decoder_layers: 2, decoder_attention_heads: 4, vocab_size: 10, max_position_embeddings: 8, pad_token_id: 9, eos_token_id: 0 };
    assert.equal(marianConfig(base).activation, 'swish');
    assert.equal(marianConfig(base).decoderStartTokenId, 9);
    assert.throws(() => marianConfig({ ...base, normalize_before: true }), /post-norm/);
    assert.throws(() => marianConfig({ ...base, activation_function: 'tanh' }), /activation_function "tanh"/);
    assert.throws(() => marianConfig({ ...base, decoder_attention_heads: 5 }), /multiple of decoder_attention_heads/);
    assert.throws(() => marianConfig({ ...base, d_model: undefined }, 'x/config.json'), /x\/config\.json: d_model/);
  });
});
