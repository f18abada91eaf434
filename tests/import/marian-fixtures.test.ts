// The Marian fixture folders (tests/helpers/marian-fixtures.ts), checked independently of the generator: the files and
// config fields Optimum / transformers.js use, the graphs' inputs, outputs and initializer naming read back from the
// .onnx files, and greedy translation run three ways with onnxruntime-node directly (the merged decoder with its cache,
// decoder_model.onnx on the full prefix every step, decoder_model + decoder_with_past_model), which must agree token by
// token, and agree with transformers.js. Outputs must vary across texts and end with </s>.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { Tokenizer } from '@huggingface/tokenizers';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { tempDir } from '../helpers/bundle-fixture.js';
import { marianCacheNames, writeMarianFixture, type MarianFixtureInfo } from '../helpers/marian-fixtures.js';
import { referenceTranslate } from '../helpers/transformers-reference.js';

const { onnx } = onnxProto;

const TEXTS = [
  'The jury said it did find that many of the registration laws are outmoded.',
  'Hello world!',
  'She sold her old car and bought a bicycle.',
  'Prices rose sharply in 1960, and the market fell.',
  'Is this the way to the station?',
  'I love this movie, it was wonderful.',
  'This was the worst meal I have ever eaten.',
  'John Smith moved from Boston to Paris last year.',
  'The committee will meet again on Monday morning.',
  'Water boils at one hundred degrees.',
  'Why did the children run away from home?',
  'A small dog barked at the mailman.',
  'The president spoke to the nation about the economy.',
  'Scientists discovered a new species of frog.',
  'He scored two goals in the final game of the season.',
  'Please send me the report by Friday.',
  'Nothing happened.',
  'The river flows slowly through the quiet valley toward the sea.',
  'They argued for hours but never reached an agreement.',
  'Music was playing somewhere in the house.',
];

const root = tempDir('polyhead-marian-fixtures-');
const dir = join(root, 'both');
let info: MarianFixtureInfo;
let generationMs = 0;
let tokenizer: Tokenizer;
const sessions: Record<'encoder' | 'merged' | 'decoder' | 'withPast', ort.InferenceSession> = {} as never;
const SESSION = { intraOpNumThreads: 1, interOpNumThreads: 1 };

before(async () => {
  const start = performance.now();
  info = await writeMarianFixture('marian-tiny', dir);
  generationMs = performance.now() - start;
  const readJson = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
  tokenizer = new Tokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
  const open = (file: string) => ort.InferenceSession.create(join(dir, 'onnx', file), SESSION);
  sessions.encoder = await open('encoder_model.onnx');
  sessions.merged = await open('decoder_model_merged.onnx');
  sessions.decoder = await open('decoder_model.onnx');
  sessions.withPast = await open('decoder_with_past_model.onnx');
});

after(async () => {
  for (const session of Object.values(sessions)) await session?.release();
  rmSync(root, { recursive: true, force: true });
});

const readJson = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
const loadModel = (file: string, folder = dir) => onnx.ModelProto.decode(readFileSync(join(folder, 'onnx', file)));

function floats(tensor: proto.ITensorProto): Float32Array {
  const raw = tensor.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

function dimsOf(value: proto.IValueInfoProto): (string | number)[] {
  return value.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

// ---------------------------------------------------------------------------------------------------------------
// Greedy decoding with onnxruntime, as transformers.js does it: start with the decoder start token, the pad token
// suppressed, </s> forced at max_length - 1; rows go on after their </s> (cut there).

interface Encoded {
  rows: number;
  mask: ort.Tensor;
  hidden: ort.Tensor;
}

async function encode(texts: string[]): Promise<Encoded> {
  const encodings = texts.map((t) => tokenizer.encode(t).ids as number[]);
  const S = Math.max(...encodings.map((e) => e.length));
  const ids = new BigInt64Array(texts.length * S).fill(BigInt(info.padId));
  const mask = new BigInt64Array(texts.length * S);
  encodings.forEach((e, row) =>
    e.forEach((id, i) => {
      ids[row * S + i] = BigInt(id);
      mask[row * S + i] = 1n;
    }),
  );
  const maskTensor = new ort.Tensor('int64', mask, [texts.length, S]);
  const out = await sessions.encoder.run({ input_ids: new ort.Tensor('int64', ids, [texts.length, S]), attention_mask: maskTensor });
  return { rows: texts.length, mask: maskTensor, hidden: out.last_hidden_state! };
}

type Step = (step: number, sequences: number[][]) => Promise<Float32Array>;

/** Runs `step` (the last position's logits [rows, V] for the sequences so far) until every row has emitted </s>. */
async function greedy(rows: number, step: Step, steps: Float32Array[] = []): Promise<number[][]> {
  const sequences = Array.from({ length: rows }, () => [info.decoderStartId]);
  const V = info.vocabSize;
  while (sequences.some((s) => !s.slice(1).includes(info.eosId)) && sequences[0]!.length < info.maxLength) {
    const logits = await step(sequences[0]!.length - 1, sequences);
    steps.push(logits);
    for (let row = 0; row < rows; row++) {
      let best = -1;
      for (let v = 0; v < V; v++) {
        if (v === info.padId) continue;
        if (best < 0 || logits[row * V + v]! > logits[row * V + best]!) best = v;
      }
      if (sequences[row]!.length === info.maxLength - 1) best = info.eosId;
      sequences[row]!.push(best);
    }
  }
  return sequences.map((s) => s.slice(0, s.indexOf(info.eosId, 1) + 1 || undefined));
}

const lastTokens = (sequences: number[][]) => new ort.Tensor('int64', BigInt64Array.from(sequences.map((s) => BigInt(s.at(-1)!))), [sequences.length, 1]);

function lastPosition(logits: ort.Tensor): Float32Array {
  const [rows, length, V] = logits.dims as number[];
  const data = logits.data as Float32Array;
  const out = new Float32Array(rows! * V!);
  for (let row = 0; row < rows!; row++) out.set(data.subarray((row * length! + length! - 1) * V!, (row * length! + length!) * V!), row * V!);
  return out;
}

/** decoder_model_merged.onnx with its cache: step 0 without (empty past), then the last token and the past. */
function mergedStep(encoded: Encoded, session = sessions.merged, checkPassthrough = false): Step {
  const k = info.headDim;
  let past: Record<string, ort.Tensor> = {};
  for (const name of marianCacheNames(info.decoderLayers, 'past_key_values')) past[name] = new ort.Tensor('float32', new Float32Array(0), [encoded.rows, info.heads, 0, k]);
  return async (step, sequences) => {
    const out = await session.run({
      encoder_attention_mask: encoded.mask,
      input_ids: lastTokens(sequences),
      encoder_hidden_states: encoded.hidden,
      use_cache_branch: new ort.Tensor('bool', [step > 0], [1]),
      ...past,
    });
    const next: Record<string, ort.Tensor> = {};
    for (const name of marianCacheNames(info.decoderLayers, 'past_key_values')) {
      const present = out[name.replace('past_key_values', 'present')]!;
      if (name.includes('.encoder.') && step > 0) {
        if (checkPassthrough) assert.deepEqual(present.data, past[name]!.data, `${name}: the cache branch passes the encoder past through`);
        next[name] = past[name]!;
      } else {
        next[name] = present;
      }
    }
    past = next;
    return lastPosition(out.logits!);
  };
}

/** decoder_model.onnx on the whole prefix every step, no cache. */
function noCacheStep(encoded: Encoded): Step {
  return async (_step, sequences) => {
    const T = sequences[0]!.length;
    const ids = new ort.Tensor('int64', BigInt64Array.from(sequences.flat().map(BigInt)), [sequences.length, T]);
    const out = await sessions.decoder.run({ encoder_attention_mask: encoded.mask, input_ids: ids, encoder_hidden_states: encoded.hidden });
    return lastPosition(out.logits!);
  };
}

/** decoder_model.onnx for the start token, then decoder_with_past_model.onnx with the cache (its encoder part from step 0). */
function pairStep(encoded: Encoded): Step {
  let past: Record<string, ort.Tensor> = {};
  return async (step, sequences) => {
    const out =
      step === 0
        ? await sessions.decoder.run({ encoder_attention_mask: encoded.mask, input_ids: lastTokens(sequences), encoder_hidden_states: encoded.hidden })
        : await sessions.withPast.run({ encoder_attention_mask: encoded.mask, input_ids: lastTokens(sequences), ...past });
    const next: Record<string, ort.Tensor> = {};
    for (const name of marianCacheNames(info.decoderLayers, 'past_key_values')) {
      next[name] = name.includes('.encoder.') && step > 0 ? past[name]! : out[name.replace('past_key_values', 'present')]!;
    }
    past = next;
    return lastPosition(out.logits!);
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

const single = new Map<string, number[]>();

// ---------------------------------------------------------------------------------------------------------------

test('marian-tiny is generated in about a second, with the files and config fields transformers.js reads', (t) => {
  t.diagnostic(`marian-tiny (layout both) in ${generationMs.toFixed(0)} ms; onnx bytes ${JSON.stringify(info.onnxBytes)}; eos bias ${info.calibration.eosBias}`);
  assert.ok(generationMs < 10_000, `${generationMs} ms`);
  assert.deepEqual(info.files, [
    'config.json',
    'generation_config.json',
    'onnx/decoder_model.onnx',
    'onnx/decoder_model_merged.onnx',
    'onnx/decoder_with_past_model.onnx',
    'onnx/encoder_model.onnx',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'vocab.json',
  ]);
  for (const file of info.files) assert.ok(existsSync(join(dir, file)), file);
  assert.ok(info.vocabSize >= 1000 && info.vocabSize <= 3000, `${info.vocabSize} pieces`);

  const config = readJson('config.json');
  assert.equal(config.model_type, 'marian');
  assert.equal(config.is_encoder_decoder, true);
  assert.deepEqual(config.architectures, ['MarianMTModel']);
  assert.deepEqual(
    [config.d_model, config.encoder_layers, config.decoder_layers, config.encoder_attention_heads, config.decoder_attention_heads, config.encoder_ffn_dim, config.decoder_ffn_dim],
    [32, 2, 2, 4, 4, 64, 64],
  );
  assert.equal(config.activation_function, 'swish');
  assert.equal(config.scale_embedding, true);
  assert.equal(config.share_encoder_decoder_embeddings, true);
  assert.equal(config.max_position_embeddings, 64);
  assert.equal(config.vocab_size, info.vocabSize);
  const pad = info.vocabSize - 1;
  assert.deepEqual([config.eos_token_id, config.pad_token_id, config.decoder_start_token_id, config.forced_eos_token_id], [0, pad, pad, 0]);
  assert.deepEqual(config.bad_words_ids, [[pad]]);
  const generation = readJson('generation_config.json');
  assert.deepEqual(
    [generation.decoder_start_token_id, generation.eos_token_id, generation.pad_token_id, generation.forced_eos_token_id, generation.max_length, generation.num_beams],
    [pad, 0, pad, 0, 64, 1],
  );
  assert.deepEqual(generation.bad_words_ids, [[pad]]);
  const tokenizerConfig = readJson('tokenizer_config.json');
  assert.equal(tokenizerConfig.tokenizer_class, 'MarianTokenizer');
  assert.equal(tokenizerConfig.model_max_length, 64);
  assert.deepEqual([tokenizerConfig.source_lang, tokenizerConfig.target_lang], ['en', 'de']);
  assert.deepEqual(readJson('special_tokens_map.json'), { eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' });
});

test('tokenizer.json: Unigram with Metaspace, </s> appended, </s> 0, <unk> 1, <pad> last; both tokenizer libraries agree', async () => {
  const json = readJson('tokenizer.json');
  assert.equal(json.model.type, 'Unigram');
  assert.equal(json.model.unk_id, 1);
  assert.equal(json.pre_tokenizer.type, 'Metaspace');
  assert.equal(json.post_processor.type, 'TemplateProcessing');
  const pieces = json.model.vocab.map(([piece]: [string, number]) => piece);
  assert.equal(pieces.length, info.vocabSize);
  assert.deepEqual([pieces[0], pieces[1], pieces.at(-1)], ['</s>', '<unk>', '<pad>']);
  assert.deepEqual(readJson('vocab.json'), Object.fromEntries(pieces.map((p: string, i: number) => [p, i])));
  const native = NativeTokenizer.fromFile(join(dir, 'tokenizer.json'));
  for (const text of TEXTS) {
    const ids: number[] = tokenizer.encode(text).ids;
    assert.equal(ids.at(-1), 0, text);
    assert.ok(!ids.slice(0, -1).includes(0) && !ids.includes(1) && !ids.includes(info.padId), `${text}: ${ids}`);
    assert.ok(ids.length <= info.modelMaxLength);
    assert.deepEqual((await native.encode(text)).getIds(), ids, `tokenizers: ${text}`);
  }
});

test('graph inputs and outputs are the ones Optimum exports', async () => {
  const { heads, headDim: k, dModel: d, vocabSize: V, decoderLayers: L } = info;
  const io = (file: string) => {
    const graph = loadModel(file).graph!;
    return {
      inputs: Object.fromEntries(graph.input!.map((i) => [i.name!, dimsOf(i)])),
      outputs: Object.fromEntries(graph.output!.map((o) => [o.name!, dimsOf(o)])),
    };
  };
  assert.deepEqual(io('encoder_model.onnx'), {
    inputs: { input_ids: ['batch_size', 'encoder_sequence_length'], attention_mask: ['batch_size', 'encoder_sequence_length'] },
    outputs: { last_hidden_state: ['batch_size', 'encoder_sequence_length', d] },
  });
  const past = Object.fromEntries(
    marianCacheNames(L, 'past_key_values').map((n) => [n, ['batch_size', heads, n.includes('.decoder.') ? 'past_decoder_sequence_length' : 'encoder_sequence_length_out', k]]),
  );
  const presentNoPast = Object.fromEntries(
    marianCacheNames(L, 'present').map((n) => [n, ['batch_size', heads, n.includes('.decoder.') ? 'decoder_sequence_length' : 'encoder_sequence_length', k]]),
  );
  const common = { encoder_attention_mask: ['batch_size', 'encoder_sequence_length'], input_ids: ['batch_size', 'decoder_sequence_length'] };
  const logits = { logits: ['batch_size', 'decoder_sequence_length', V] };
  assert.deepEqual(io('decoder_model.onnx'), {
    inputs: { ...common, encoder_hidden_states: ['batch_size', 'encoder_sequence_length', d] },
    outputs: { ...logits, ...presentNoPast },
  });
  assert.deepEqual(io('decoder_with_past_model.onnx'), {
    inputs: { ...common, ...past },
    outputs: { ...logits, ...Object.fromEntries(marianCacheNames(L, 'present', 'decoder').map((n) => [n, ['batch_size', heads, 'past_decoder_sequence_length + 1', k]])) },
  });
  assert.deepEqual(io('decoder_model_merged.onnx'), {
    inputs: { ...common, encoder_hidden_states: ['batch_size', 'encoder_sequence_length', d], ...past, use_cache_branch: [1] },
    outputs: { ...logits, ...presentNoPast },
  });
  // The order too (present per layer: decoder key, value, encoder key, value).
  assert.deepEqual(sessions.merged.outputNames, ['logits', ...marianCacheNames(L, 'present')]);
  assert.deepEqual(sessions.merged.inputNames, ['encoder_attention_mask', 'input_ids', 'encoder_hidden_states', ...marianCacheNames(L, 'past_key_values'), 'use_cache_branch']);
});

test("initializers: PyTorch names for biases, LayerNorms, embeddings; each Linear an onnx::MatMul_<n> [in, out] into an Add with its bias", () => {
  const { dModel: d, vocabSize: V, encoderFfn, maxPositionEmbeddings: P } = info;
  const byFile = new Map<string, Map<string, proto.ITensorProto>>();
  for (const file of ['encoder_model.onnx', 'decoder_model.onnx', 'decoder_with_past_model.onnx', 'decoder_model_merged.onnx']) {
    const model = loadModel(file);
    const graph = model.graph!;
    const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
    byFile.set(file, initializers);
    // Every node, the If branches' too (whose weights are the outer graph's initializers).
    const graphs: proto.IGraphProto[] = [graph];
    for (const node of graph.node!) for (const attr of node.attribute ?? []) if (attr.g) graphs.push(attr.g);
    if (file === 'decoder_model_merged.onnx') {
      assert.equal(graph.node!.length, 1);
      const ifNode = graph.node![0]!;
      assert.equal(ifNode.opType, 'If');
      assert.deepEqual(ifNode.input, ['use_cache_branch']);
      assert.deepEqual(ifNode.attribute!.map((a) => a.name).sort(), ['else_branch', 'then_branch']);
      for (const branch of graphs.slice(1)) {
        assert.equal(branch.input!.length, 0);
        assert.ok(branch.initializer!.every((t) => (t.dims ?? []).length <= 1 && !t.name!.startsWith('model.')), 'weights live in the outer graph');
      }
    }
    let linears = 0;
    for (const g of graphs) {
      const local = new Map(g.initializer!.map((t) => [t.name!, t]));
      const find = (name: string) => local.get(name) ?? initializers.get(name);
      const consumers = new Map<string, proto.INodeProto[]>();
      for (const node of g.node!) for (const input of node.input!) consumers.set(input, [...(consumers.get(input) ?? []), node]);
      for (const node of g.node!) {
        if (node.opType !== 'MatMul' || !node.input![1]!.startsWith('onnx::MatMul_')) continue;
        linears++;
        const weight = find(node.input![1]!)!;
        const [add] = consumers.get(node.output![0]!)!;
        assert.equal(add!.opType, 'Add', `${file}: ${node.name}`);
        const biasName = add!.input!.find((i) => i !== node.output![0])!;
        const bias = find(biasName)!;
        assert.ok(bias, `${file}: ${biasName}`);
        const outDim = Number(weight.dims!.at(-1));
        if (biasName === 'final_logits_bias') {
          assert.deepEqual(weight.dims!.map(Number), [d, V]);
          assert.deepEqual(bias.dims!.map(Number), [1, V]);
        } else {
          assert.match(biasName, /^model\.(encoder|decoder)\.layers\.\d+\.((self_attn|encoder_attn)\.(q|k|v|out)_proj|fc1|fc2)\.bias$/, file);
          assert.deepEqual(bias.dims!.map(Number), [outDim]);
          assert.equal(Number(weight.dims![0]), biasName.endsWith('fc2.bias') ? encoderFfn : d);
        }
      }
    }
    const layers = file === 'encoder_model.onnx' ? info.encoderLayers : info.decoderLayers;
    const perLayer = file === 'encoder_model.onnx' ? 6 : 10;
    // Per decoder branch: with past, the cross-attention k/v projections are not there (they come from the cache).
    const expected = file === 'decoder_model_merged.onnx' ? 2 * layers * perLayer - 2 * layers + 2 : file === 'decoder_with_past_model.onnx' ? layers * (perLayer - 2) + 1 : layers * perLayer + (file === 'encoder_model.onnx' ? 0 : 1);
    assert.equal(linears, expected, `${file}: linear layers`);
  }
  const encoder = byFile.get('encoder_model.onnx')!;
  const decoder = byFile.get('decoder_model.onnx')!;
  for (const name of ['model.shared.weight', 'model.encoder.embed_positions.weight', 'model.encoder.layers.1.self_attn_layer_norm.weight', 'model.encoder.layers.1.final_layer_norm.bias']) {
    assert.ok(encoder.has(name), name);
  }
  for (const name of ['model.decoder.embed_positions.weight', 'model.decoder.layers.1.encoder_attn_layer_norm.weight', 'model.decoder.layers.0.encoder_attn.k_proj.bias', 'final_logits_bias']) {
    assert.ok(decoder.has(name), name);
  }
  assert.deepEqual(decoder.get('model.decoder.embed_positions.weight')!.dims!.map(Number), [P, d]);
  // Marian's sinusoids: sin in the first half, cos in the second.
  const positions = floats(decoder.get('model.decoder.embed_positions.weight')!);
  const pos = 5;
  const j = 3;
  assert.ok(Math.abs(positions[pos * d + j]! - Math.sin(pos / 10000 ** ((2 * j) / d))) < 1e-6);
  assert.ok(Math.abs(positions[pos * d + d / 2 + j]! - Math.cos(pos / 10000 ** ((2 * j) / d))) < 1e-6);
  // The output projection is the shared embedding transposed; the pad row is zero.
  const shared = floats(decoder.get('model.shared.weight')!);
  const projection = [...decoder.entries()].find(([name, t]) => name.startsWith('onnx::MatMul_') && Number(t.dims![1]) === V)![1];
  const transposed = floats(projection);
  for (const [v, c] of [[0, 0], [7, 3], [V - 2, d - 1]] as const) assert.equal(transposed[c * V + v], shared[v * d + c]);
  assert.ok(shared.subarray(info.padId * d, (info.padId + 1) * d).every((x) => x === 0));
  // One weight, one name, the same bytes in every file of the folder.
  for (const file of ['decoder_with_past_model.onnx', 'decoder_model_merged.onnx', 'encoder_model.onnx']) {
    let shared = 0;
    for (const [name, tensor] of byFile.get(file)!) {
      const other = decoder.get(name);
      if (!other || !name.match(/^(model\.|onnx::MatMul_|final_logits_bias)/)) continue;
      shared++;
      assert.ok(Buffer.from(other.rawData!).equals(Buffer.from(tensor.rawData!)), `${file}: ${name}`);
    }
    if (file === 'encoder_model.onnx') assert.equal(shared, 1, 'the encoder shares model.shared.weight with the decoder');
    else assert.ok(shared > 10, `${file}: ${shared} weights in common with decoder_model.onnx`);
  }
});

test('greedy decoding: merged decoder with cache = decoder_model.onnx on the full prefix = decoder_model + decoder_with_past, token by token', async () => {
  for (const text of TEXTS) {
    const encoded = await encode([text]);
    const mergedLogits: Float32Array[] = [];
    const noCacheLogits: Float32Array[] = [];
    const pairLogits: Float32Array[] = [];
    const merged = await greedy(1, mergedStep(encoded, sessions.merged, true), mergedLogits);
    const noCache = await greedy(1, noCacheStep(encoded), noCacheLogits);
    const pair = await greedy(1, pairStep(encoded), pairLogits);
    assert.deepEqual(noCache, merged, text);
    assert.deepEqual(pair, merged, text);
    for (let s = 0; s < mergedLogits.length; s++) {
      assert.ok(maxAbsDiff(mergedLogits[s]!, noCacheLogits[s]!) < 1e-3, `${text}: step ${s}`);
      assert.ok(maxAbsDiff(mergedLogits[s]!, pairLogits[s]!) < 1e-3, `${text}: step ${s}`);
    }
    single.set(text, merged[0]!);
  }
  // A padded batch gives every row what it gives alone (up to the row's first </s>).
  const encoded = await encode(TEXTS);
  const batch = await greedy(TEXTS.length, mergedStep(encoded));
  TEXTS.forEach((text, row) => assert.deepEqual(batch[row], single.get(text), text));
});

test('outputs vary across texts, are not one repeated token, and end with </s> after 5-30 tokens for most texts', (t) => {
  const outputs = TEXTS.map((text) => single.get(text)!);
  const generated = outputs.map((ids) => ids.slice(1));
  t.diagnostic(`lengths ${generated.map((g) => g.length).join(' ')}`);
  t.diagnostic(`e.g. ${JSON.stringify(tokenizer.decode(outputs[0]!, { skip_special_tokens: true }))}`);
  assert.ok(generated.every((g) => g.at(-1) === info.eosId), 'every output ends with </s>');
  const inRange = generated.filter((g) => g.length >= 5 && g.length <= 30).length;
  assert.ok(inRange >= 0.8 * TEXTS.length, `${inRange} of ${TEXTS.length} have 5-30 tokens`);
  assert.ok(new Set(generated.map((g) => g.join(','))).size >= 0.9 * TEXTS.length, 'distinct outputs');
  for (const g of generated) {
    const tokens = g.slice(0, -1);
    assert.ok(new Set(tokens).size >= Math.min(3, tokens.length), `varied tokens: ${tokens}`);
    for (let i = 1; i < tokens.length; i++) assert.notEqual(tokens[i], tokens[i - 1], `no immediate repeat: ${tokens}`);
  }
  assert.ok(new Set(generated.flat()).size >= 40, 'many different tokens overall');
  // The generator's own calibration run agrees.
  assert.ok(info.calibration.lengths.filter((l) => l >= 5 && l <= 30).length >= 0.8 * info.calibration.texts);
});

test('transformers.js translates to the same ids, one text at a time; in a batch each row up to its first </s>', async () => {
  const alone = await referenceTranslate(dir, TEXTS);
  assert.equal(alone.startTokenIncluded, true);
  TEXTS.forEach((text, i) => {
    const ours = single.get(text)!;
    const theirs = alone.results[i]!;
    assert.deepEqual(theirs.ids, ours, text);
    assert.equal(theirs.text, tokenizer.decode(ours, { skip_special_tokens: true }), text);
    assert.equal(theirs.textToEos, theirs.text, text);
  });
  const batch = await referenceTranslate(dir, TEXTS.slice(0, 6), { batch: true });
  batch.results.forEach((row, i) => {
    const ours = single.get(TEXTS[i]!)!;
    assert.deepEqual(row.ids.slice(0, ours.length), ours, TEXTS[i]);
    assert.equal(row.textToEos, tokenizer.decode(ours, { skip_special_tokens: true }), TEXTS[i]);
  });
  // Rows that ended early went on generating: the batch runs to the longest row's </s> at least.
  assert.ok(batch.results.every((r) => r.ids.length === batch.results[0]!.ids.length));
});

test('layouts and seeds: merged and unmerged folders hold the same bytes as both; Optimum-style empty encoder present decodes the same', async () => {
  const merged = join(root, 'merged');
  const unmerged = join(root, 'unmerged');
  const empty = join(root, 'empty');
  const seeded = join(root, 'seeded');
  const mergedInfo = await writeMarianFixture('marian-tiny', merged, { layout: 'merged' });
  const unmergedInfo = await writeMarianFixture('marian-tiny', unmerged, { layout: 'unmerged' });
  assert.ok(!mergedInfo.files.includes('onnx/decoder_model.onnx') && !mergedInfo.files.includes('onnx/decoder_with_past_model.onnx'));
  assert.ok(!unmergedInfo.files.includes('onnx/decoder_model_merged.onnx'));
  for (const [folder, files] of [
    [merged, mergedInfo.files],
    [unmerged, unmergedInfo.files],
  ] as const) {
    for (const file of files) assert.ok(readFileSync(join(folder, file)).equals(readFileSync(join(dir, file))), `${folder}: ${file}`);
  }
  await writeMarianFixture('marian-tiny', empty, { layout: 'merged', cacheBranchEncoderPresent: 'empty' });
  const session = await ort.InferenceSession.create(join(empty, 'onnx', 'decoder_model_merged.onnx'), SESSION);
  try {
    for (const text of TEXTS.slice(0, 5)) assert.deepEqual((await greedy(1, mergedStep(await encode([text]), session)))[0], single.get(text), text);
  } finally {
    await session.release();
  }
  await writeMarianFixture('marian-tiny', seeded, { layout: 'merged', seed: 7 });
  assert.ok(readFileSync(join(seeded, 'tokenizer.json')).equals(readFileSync(join(dir, 'tokenizer.json'))));
  assert.ok(!readFileSync(join(seeded, 'onnx/encoder_model.onnx')).equals(readFileSync(join(dir, 'onnx/encoder_model.onnx'))));
});
