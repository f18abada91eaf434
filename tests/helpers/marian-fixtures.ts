// Random-weight Marian (opus-mt) translation folders in the layout Optimum exports and transformers.js reads, made
// here and never downloaded.
//
// Files: config.json, generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// vocab.json, onnx/encoder_model.onnx and, by `layout`, onnx/decoder_model_merged.onnx ('merged') or the unmerged
// pair onnx/decoder_model.onnx + onnx/decoder_with_past_model.onnx ('unmerged'), or all three ('both', the default).
//
// The graphs are MarianMTModel: shared embeddings scaled by sqrt(d_model), Marian's sinusoidal positions (sin in the
// first half of the dimensions, cos in the second) as constant tables, post-norm layers (self-attention -> add ->
// LayerNorm -> [decoder: cross-attention -> add -> LayerNorm] -> fc1 -> swish -> fc2 -> add -> LayerNorm), causal
// decoder self-attention, q scaled by head_dim^-0.5, and the output projection tied to the shared embedding plus
// final_logits_bias.
//
// Naming, as Optimum's torch.onnx export writes it (Polyhead's importer finds the weights by these names and by the
// graph's structure):
//   - Initializers keep the PyTorch parameter names for embeddings, biases, LayerNorms and constants:
//       model.shared.weight [V, d] (the encoder's and the decoder's token embedding, tied),
//       model.encoder.embed_positions.weight, model.decoder.embed_positions.weight [max_position_embeddings, d],
//       model.{encoder,decoder}.layers.{i}.self_attn.{q,k,v,out}_proj.bias,
//       model.decoder.layers.{i}.encoder_attn.{q,k,v,out}_proj.bias,
//       model.{encoder,decoder}.layers.{i}.{self_attn_layer_norm,final_layer_norm}.{weight,bias},
//       model.decoder.layers.{i}.encoder_attn_layer_norm.{weight,bias}, ....fc1.bias, ....fc2.bias,
//       final_logits_bias [1, V].
//   - Each Linear's weight is its own initializer holding the TRANSPOSED matrix [in, out], named onnx::MatMul_<n>,
//     consumed by a MatMul whose output goes into an Add with the named bias (`<module>.bias`).
//   - The tied output projection is a MatMul with its own onnx::MatMul_<n> initializer [d, V] (the transposed shared
//     embedding) followed by an Add of final_logits_bias.
//   - The same weight has the same name in every file of a folder (n is numbered once, encoder modules first, then
//     the decoder's in layer order, the output projection last).
//
// Graphs (B = batch, S = source length, T = decoder tokens fed, P = past decoder length, h = heads, k = head_dim):
//   encoder_model.onnx: input_ids, attention_mask int64 [B, S] -> last_hidden_state float [B, S, d].
//   decoder_model.onnx: encoder_attention_mask int64 [B, S], input_ids int64 [B, T], encoder_hidden_states [B, S, d]
//     -> logits [B, T, V], present.{i}.decoder.key/value [B, h, T, k], present.{i}.encoder.key/value [B, h, S, k].
//   decoder_with_past_model.onnx: encoder_attention_mask [B, S], input_ids [B, T], past_key_values.{i}.decoder.key/
//     value [B, h, P, k], past_key_values.{i}.encoder.key/value [B, h, S, k] -> logits [B, T, V],
//     present.{i}.decoder.key/value [B, h, P + T, k] (no encoder_hidden_states, no present.*.encoder: Optimum drops them).
//   decoder_model_merged.onnx: the inputs of both plus use_cache_branch bool [1]; one `If` node (optimum::if) whose
//     else branch (use_cache_branch false) is decoder_model's graph and whose then branch is decoder_with_past's, with
//     present.{i}.encoder.* the given past passed through (Identity); `cacheBranchEncoderPresent: 'empty'` gives what
//     Optimum's merge writes instead, empty constants [0, h, 1, k]. The weights are initializers of the outer graph,
//     shared by both branches; each branch keeps its own small constants.
//
// Tokenizer: Unigram pieces ("▁word" for Brown's frequent cased words, "▁", word endings, single characters) with the
// Metaspace pre-tokenizer, `$A </s>` appended by a TemplateProcessing post-processor, and opus-mt's special ids:
// </s> 0 (eos), <unk> 1, <pad> the last id (also the decoder start token, suppressed by bad_words_ids).
//
// Weights are uniform random, each tensor from its own generator seeded by (seed, tensor name), so every layout
// holds the same weights. Plain initialisation makes a random model repeat one token forever; the scales (see
// Scales: a negated last LayerNorm, a residual stream that keeps the position signal, an eos embedding row that
// follows the position) and final_logits_bias[eos], calibrated on the written files by greedy decoding of 40 Brown
// sentences with onnxruntime (EosCalibration), give greedy translations of varied tokens that end with </s> after
// 5-30 tokens for nearly all inputs. Same kind, seed and options: same bytes (on the same onnxruntime build; the
// calibrated bias is the middle of an interval of biases that all give the same lengths).
//
// The .onnx files are written in pieces (the protobuf is assembled on disk, each tensor's bytes written from the
// one Float32Array that holds them), and each tensor is made once for all files of a folder, so the benchmark-sized
// opus-mt-shape (~0.5 GB with layout 'merged', ~1.2 GB with 'both'; ~10 s) never holds a serialized copy of a graph
// or a second copy of a weight in memory (the calibration's onnxruntime sessions come after the weights are freed).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { OnnxGraphBuilder, floatAttr, type Dim } from '../../src/onnx/graph-builder.js';
import { alphabet, brownCorpus, brownWordCounts, byCount, compareStrings, defaultSeed, frequentSuffixes, mulberry32, topWords } from './hf-fixtures.js';

const { onnx } = onnxProto;

export const MARIAN_FIXTURE_KINDS = ['marian-tiny', 'opus-mt-shape'] as const;
export type MarianFixtureKind = (typeof MARIAN_FIXTURE_KINDS)[number];
export type MarianLayout = 'merged' | 'unmerged' | 'both';

export interface MarianFixtureOptions {
  /** Which decoder files: 'merged' (decoder_model_merged.onnx), 'unmerged' (decoder_model + decoder_with_past_model), 'both' (default). */
  layout?: MarianLayout;
  /** Weight seed; default: one fixed per kind. */
  seed?: number;
  /** What the merged decoder's cache branch outputs as present.*.encoder.*: the given past ('passthrough', default) or Optimum's empty constants. */
  cacheBranchEncoderPresent?: 'passthrough' | 'empty';
}

export interface MarianFixtureSpec {
  kind: MarianFixtureKind;
  dModel: number;
  heads: number;
  encoderLayers: number;
  decoderLayers: number;
  encoderFfn: number;
  decoderFfn: number;
  maxPositionEmbeddings: number;
  /** tokenizer_config model_max_length. */
  modelMaxLength: number;
  /** generation_config max_length (the sequence length generation stops at, the start token included). */
  maxLength: number;
  numBeams: number;
  sourceLang: string;
  targetLang: string;
  /** Exact vocabulary size (opus-mt-shape: 58101); otherwise the builder's. */
  vocabTarget?: number;
  /** Number of "▁word" pieces for kinds without vocabTarget. */
  words: number;
}

export interface MarianFixtureInfo extends MarianFixtureSpec {
  layout: MarianLayout;
  vocabSize: number;
  headDim: number;
  eosId: number;
  unkId: number;
  padId: number;
  decoderStartId: number;
  /** Files written, relative to the folder, sorted. */
  files: string[];
  /** Bytes of each .onnx file written. */
  onnxBytes: Record<string, number>;
  calibration: EosCalibration;
}

/**
 * How final_logits_bias[eos] was chosen: greedy decoding of Brown sentences with eos never chosen gives each text's
 * token sequence and, per step, eos's logit minus the best other token's (pad excluded). With a bias b added to eos,
 * greedy stops at the first step where that margin + b > 0 and the tokens before are the same, so every b's lengths
 * are known from that one run; b is the middle of the interval that puts the most texts in 5..30 tokens (ties: the
 * median length nearest 12).
 */
export interface EosCalibration {
  texts: number;
  eosBias: number;
  /** Per calibration text: generated tokens including the final </s> (capped: `steps`, no </s> reached). */
  lengths: number[];
  steps: number;
}

export function describeMarianFixture(kind: MarianFixtureKind): MarianFixtureSpec {
  switch (kind) {
    case 'marian-tiny':
      return {
        kind,
        dModel: 32,
        heads: 4,
        encoderLayers: 2,
        decoderLayers: 2,
        encoderFfn: 64,
        decoderFfn: 64,
        maxPositionEmbeddings: 64,
        modelMaxLength: 64,
        maxLength: 64,
        numBeams: 1,
        sourceLang: 'en',
        targetLang: 'de',
        words: 1500,
      };
    case 'opus-mt-shape':
      return {
        kind,
        dModel: 512,
        heads: 8,
        encoderLayers: 6,
        decoderLayers: 6,
        encoderFfn: 2048,
        decoderFfn: 2048,
        maxPositionEmbeddings: 512,
        modelMaxLength: 512,
        maxLength: 512,
        numBeams: 4,
        sourceLang: 'en',
        targetLang: 'de',
        vocabTarget: 58101,
        words: 0,
      };
    default:
      throw new Error(`unknown marian fixture kind '${kind as string}' (known: ${MARIAN_FIXTURE_KINDS.join(', ')})`);
  }
}

/** Writes the folder of `kind` into `dir` (created if missing; files of the same names are replaced, others left as they are). */
export async function writeMarianFixture(kind: MarianFixtureKind, dir: string, options: MarianFixtureOptions = {}): Promise<MarianFixtureInfo> {
  const spec = describeMarianFixture(kind);
  const layout = options.layout ?? 'both';
  if (!['merged', 'unmerged', 'both'].includes(layout)) throw new Error(`marian fixture: layout must be merged, unmerged or both, not '${layout}'`);
  const encoderPresent = options.cacheBranchEncoderPresent ?? 'passthrough';
  const vocab = marianVocabulary(spec);
  const ids = { eos: 0, unk: 1, pad: vocab.tokens.length - 1 };
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  const files: string[] = [];
  const onnxBytes: Record<string, number> = {};
  const biasOffsets = new Map<string, number>();
  const put = (name: string, content: string) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
    files.push(name);
  };
  put('config.json', json(modelConfig(spec, vocab.tokens.length, ids.pad)));
  put('generation_config.json', json(generationConfig(spec, ids.pad)));
  put('tokenizer.json', json(tokenizerJson(vocab)));
  put('tokenizer_config.json', json(tokenizerConfig(spec, vocab)));
  put('special_tokens_map.json', json({ eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' }));
  put('vocab.json', `${JSON.stringify(Object.fromEntries(vocab.tokens.map((t, i) => [t, i])))}\n`);

  const params = new Params(spec, vocab.tokens.length, ids, options.seed ?? defaultSeed(kind));
  const writeGraph = (name: string, model: proto.ModelProto) => {
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    const { bytes, rawOffsets } = writeOnnxModel(join(dir, name), model);
    onnxBytes[name] = bytes;
    const biasOffset = rawOffsets.get('final_logits_bias');
    if (biasOffset !== undefined) biasOffsets.set(name, biasOffset);
    files.push(name);
  };
  writeGraph('onnx/encoder_model.onnx', encoderModel(spec, params));
  params.release('model.encoder.');
  if (layout !== 'unmerged') writeGraph('onnx/decoder_model_merged.onnx', mergedDecoderModel(spec, params, encoderPresent));
  if (layout !== 'merged') {
    writeGraph('onnx/decoder_model.onnx', standaloneDecoderModel(spec, params, false));
    writeGraph('onnx/decoder_with_past_model.onnx', standaloneDecoderModel(spec, params, true));
  }
  params.release('');
  const calibration = await calibrateEosBias(dir, spec, layout, ids);
  const bias = new Float32Array([calibration.eosBias]);
  for (const [name, offset] of biasOffsets) {
    const fd = openSync(join(dir, name), 'r+');
    try {
      writeSync(fd, new Uint8Array(bias.buffer), 0, 4, offset + ids.eos * 4);
    } finally {
      closeSync(fd);
    }
  }
  return {
    ...spec,
    layout,
    vocabSize: vocab.tokens.length,
    headDim: spec.dModel / spec.heads,
    eosId: ids.eos,
    unkId: ids.unk,
    padId: ids.pad,
    decoderStartId: ids.pad,
    files: files.sort(compareStrings),
    onnxBytes,
    calibration,
  };
}

/** Names of the decoder's past/present tensors, in the graphs' order: per layer decoder key, value, encoder key, value. */
export function marianCacheNames(layers: number, prefix: 'past_key_values' | 'present', part?: 'decoder' | 'encoder'): string[] {
  const names: string[] = [];
  for (let i = 0; i < layers; i++) {
    for (const p of ['decoder', 'encoder'] as const) {
      if (part && p !== part) continue;
      names.push(`${prefix}.${i}.${p}.key`, `${prefix}.${i}.${p}.value`);
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary and tokenizer files.

const METASPACE = '\u2581';

interface MarianVocabulary {
  tokens: string[];
  scores: number[];
}

/**
 * opus-mt layout: </s> 0, <unk> 1, then pieces by descending score, <pad> last. Pieces: "▁word" for frequent cased
 * Brown words, "▁", word endings, single characters; with vocabTarget, the rest of Brown's words as "▁word", then
 * the same words as word-internal pieces (no "▁"), then synthetic "▁x<n>" pieces if still short.
 */
function marianVocabulary(spec: MarianFixtureSpec): MarianVocabulary {
  const counts = brownWordCounts(true);
  let total = 0;
  for (const count of counts.values()) total += count;
  const logFrequency = (count: number) => Math.round(Math.log(count / total) * 1e4) / 1e4;
  const target = spec.vocabTarget;
  const allWords = topWords(counts, counts.size);
  const words = target === undefined ? allWords.slice(0, spec.words) : allWords;
  const pieces = new Map<string, number>();
  pieces.set(METASPACE, logFrequency(total / 8));
  const suffixes = frequentSuffixes(counts, new Set(words), target === undefined ? 150 : 3000);
  suffixes.forEach((suffix, rank) => {
    if (!pieces.has(suffix)) pieces.set(suffix, Math.round((-9 - rank / 1000) * 1e4) / 1e4);
  });
  alphabet(true).forEach((ch, rank) => {
    if (!pieces.has(ch)) pieces.set(ch, Math.round((-12 - rank / 100) * 1e4) / 1e4);
  });
  const budget = target === undefined ? Infinity : target - 3;
  for (const word of words) {
    if (pieces.size >= budget) break;
    pieces.set(METASPACE + word, logFrequency(counts.get(word)!));
  }
  for (let rank = 0; target !== undefined && rank < allWords.length && pieces.size < budget; rank++) {
    const word = allWords[rank]!;
    if (!pieces.has(word)) pieces.set(word, Math.round((-14 - rank / 1e5) * 1e4) / 1e4);
  }
  for (let n = 0; target !== undefined && pieces.size < budget; n++) pieces.set(`${METASPACE}x${n}`, Math.round((-16 - n / 1e5) * 1e4) / 1e4);
  const ranked = [...pieces].sort(byCount);
  return { tokens: ['</s>', '<unk>', ...ranked.map(([p]) => p), '<pad>'], scores: [0, 0, ...ranked.map(([, s]) => s), 0] };
}

function addedTokens(vocab: MarianVocabulary) {
  return ['</s>', '<unk>', '<pad>'].map((content) => ({
    id: vocab.tokens.indexOf(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

function tokenizerJson(vocab: MarianVocabulary): unknown {
  const eos = { id: '</s>', ids: [0], tokens: ['</s>'] };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: METASPACE, prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': eos },
    },
    decoder: { type: 'Metaspace', replacement: METASPACE, prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 1, vocab: vocab.tokens.map((t, i) => [t, vocab.scores[i]]), byte_fallback: false },
  };
}

function tokenizerConfig(spec: MarianFixtureSpec, vocab: MarianVocabulary): Record<string, unknown> {
  return {
    added_tokens_decoder: Object.fromEntries(
      addedTokens(vocab).map(({ id, content, lstrip, normalized, rstrip, single_word, special }) => [String(id), { content, lstrip, normalized, rstrip, single_word, special }]),
    ),
    clean_up_tokenization_spaces: true,
    eos_token: '</s>',
    model_max_length: spec.modelMaxLength,
    pad_token: '<pad>',
    separate_vocabs: false,
    source_lang: spec.sourceLang,
    sp_model_kwargs: {},
    target_lang: spec.targetLang,
    tokenizer_class: 'MarianTokenizer',
    unk_token: '<unk>',
  };
}

function modelConfig(spec: MarianFixtureSpec, vocabSize: number, padId: number): Record<string, unknown> {
  return {
    activation_dropout: 0.0,
    activation_function: 'swish',
    add_bias_logits: false,
    add_final_layer_norm: false,
    architectures: ['MarianMTModel'],
    attention_dropout: 0.0,
    bad_words_ids: [[padId]],
    bos_token_id: 0,
    classif_dropout: 0.0,
    classifier_dropout: 0.0,
    d_model: spec.dModel,
    decoder_attention_heads: spec.heads,
    decoder_ffn_dim: spec.decoderFfn,
    decoder_layerdrop: 0.0,
    decoder_layers: spec.decoderLayers,
    decoder_start_token_id: padId,
    decoder_vocab_size: vocabSize,
    dropout: 0.1,
    encoder_attention_heads: spec.heads,
    encoder_ffn_dim: spec.encoderFfn,
    encoder_layerdrop: 0.0,
    encoder_layers: spec.encoderLayers,
    eos_token_id: 0,
    forced_eos_token_id: 0,
    init_std: 0.02,
    is_encoder_decoder: true,
    max_length: spec.maxLength,
    max_position_embeddings: spec.maxPositionEmbeddings,
    model_type: 'marian',
    normalize_before: false,
    normalize_embedding: false,
    num_beams: spec.numBeams,
    num_hidden_layers: spec.encoderLayers,
    pad_token_id: padId,
    scale_embedding: true,
    share_encoder_decoder_embeddings: true,
    static_position_embeddings: true,
    torch_dtype: 'float32',
    transformers_version: '4.41.2',
    use_cache: true,
    vocab_size: vocabSize,
  };
}

function generationConfig(spec: MarianFixtureSpec, padId: number): Record<string, unknown> {
  return {
    bad_words_ids: [[padId]],
    bos_token_id: 0,
    decoder_start_token_id: padId,
    eos_token_id: 0,
    forced_eos_token_id: 0,
    max_length: spec.maxLength,
    num_beams: spec.numBeams,
    pad_token_id: padId,
    renormalize_logits: true,
    transformers_version: '4.41.2',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Weights.

/**
 * Standard deviations of the uniform weights (linear layers: gain / sqrt(fan_in)), found by decoding Brown sentences
 * greedily for several seeds. What makes a random Marian translate into something that looks like a sentence:
 *   - lastNormGain -1: the last decoder layer's final_layer_norm weight is centred on -1 instead of 1. The residual
 *     stream carries the input token's own embedding to the output, and with the tied projection that token would
 *     win again forever; negated, it loses.
 *   - small sublayer gains (values/out_proj 0.5, FFN 0.2) and a small token embedding: the residual stream keeps the
 *     position signal, so the eos logit can follow it.
 *   - eosPosition: the eos row of the shared embedding is zero except on the dimensions whose sinusoid turns slowly
 *     (frequency 0.01-0.06 per position), -w on their sin half and +w on their cos half, where every other token's
 *     row is zero (positionDimsTokenScale 0). Its logit then grows with the position, and final_logits_bias[eos]
 *     (calibrated after writing: EosCalibration) decides where it overtakes the other tokens.
 */
interface Scales {
  embedding: number;
  bias: number;
  layerNormGain: number;
  layerNormBias: number;
  queryKeyGain: number;
  valueGain: number;
  ffnGain: number;
  /** Mean of the last decoder layer's final_layer_norm weight. */
  lastNormGain: number;
  /** Weight of the eos row on the slowly turning position dimensions. */
  eosPosition: number;
  /** Scale of the other tokens' embeddings on those dimensions. */
  positionDimsTokenScale: number;
}

const BASE_SCALES = { bias: 0.05, layerNormGain: 0.1, layerNormBias: 0.05, queryKeyGain: 2.5, valueGain: 0.5, ffnGain: 0.2, lastNormGain: -1, eosPosition: 0.75, positionDimsTokenScale: 0 };
const SCALES: Record<MarianFixtureKind, Scales> = {
  // Token embeddings of about 0.57 per dimension after x sqrt(d_model), against positions in [-1, 1].
  'marian-tiny': { ...BASE_SCALES, embedding: 0.1 },
  'opus-mt-shape': { ...BASE_SCALES, embedding: 0.05 },
};

interface Tensor32 {
  data: Float32Array;
  dims: number[];
}

/**
 * Every parameter of the model, made on first use from a generator seeded by (seed, name), so a tensor's values do
 * not depend on which graph asks for it first. Linear weights are [in, out] under onnx::MatMul_<n>, numbered in a
 * fixed module order.
 */
class Params {
  readonly scales: Scales;
  private readonly tensors = new Map<string, Tensor32>();
  private readonly matmulNames = new Map<string, string>();

  constructor(
    readonly spec: MarianFixtureSpec,
    readonly vocabSize: number,
    readonly ids: { eos: number; unk: number; pad: number },
    readonly seed: number,
  ) {
    this.scales = SCALES[spec.kind];
    let n = 1000;
    const number = (module: string) => this.matmulNames.set(module, `onnx::MatMul_${n++}`);
    for (let i = 0; i < spec.encoderLayers; i++) {
      for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj', 'fc1', 'fc2']) number(`model.encoder.layers.${i}.${m}`);
    }
    for (let i = 0; i < spec.decoderLayers; i++) {
      for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj']) number(`model.decoder.layers.${i}.${m}`);
      for (const m of ['encoder_attn.q_proj', 'encoder_attn.k_proj', 'encoder_attn.v_proj', 'encoder_attn.out_proj']) number(`model.decoder.layers.${i}.${m}`);
      for (const m of ['fc1', 'fc2']) number(`model.decoder.layers.${i}.${m}`);
    }
    number('lm_head');
  }

  /** The initializer name of a Linear's transposed weight. */
  matmulName(module: string): string {
    const name = this.matmulNames.get(module);
    if (!name) throw new Error(`no linear module ${module}`);
    return name;
  }

  get(name: string): Tensor32 {
    let tensor = this.tensors.get(name);
    if (!tensor) this.tensors.set(name, (tensor = this.make(name)));
    return tensor;
  }

  /** Forgets the tensors whose names start with `prefix` ('' for all), so that their memory can be reclaimed. */
  release(prefix: string): void {
    for (const name of [...this.tensors.keys()]) if (name.startsWith(prefix)) this.tensors.delete(name);
  }

  private uniform(name: string, count: number, std: number, mean = 0): Float32Array {
    const random = mulberry32(defaultSeed(`${this.seed}:${name}`));
    const half = std * Math.sqrt(3);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = mean + (random() * 2 - 1) * half;
    return out;
  }

  private make(name: string): Tensor32 {
    const { spec, scales, vocabSize: V } = this;
    const d = spec.dModel;
    if (name === 'model.shared.weight') {
      const data = this.uniform(name, V * d, scales.embedding);
      data.fill(0, this.ids.pad * d, (this.ids.pad + 1) * d); // nn.Embedding(padding_idx = pad_token_id)
      if (scales.eosPosition !== 0) {
        const half = Math.ceil(d / 2);
        const row = this.ids.eos * d;
        data.fill(0, row, row + d);
        for (let j = 0; j < d - half; j++) {
          const omega = Math.pow(10000, (-2 * j) / d);
          if (omega < 0.01 || omega > 0.06) continue;
          if (scales.positionDimsTokenScale !== 1) {
            for (let v = 0; v < V; v++) {
              data[v * d + j] *= scales.positionDimsTokenScale;
              data[v * d + half + j] *= scales.positionDimsTokenScale;
            }
          }
          data[row + j] = -scales.eosPosition;
          data[row + half + j] = scales.eosPosition;
        }
      }
      return { data, dims: [V, d] };
    }
    if (name === this.matmulName('lm_head')) {
      const shared = this.get('model.shared.weight').data;
      const data = new Float32Array(d * V);
      for (let v = 0; v < V; v++) for (let j = 0; j < d; j++) data[j * V + v] = shared[v * d + j]!;
      return { data, dims: [d, V] };
    }
    if (name === 'final_logits_bias') {
      return { data: new Float32Array(V), dims: [1, V] }; // eos: patched after calibration
    }
    if (name === 'model.encoder.embed_positions.weight' || name === 'model.decoder.embed_positions.weight') {
      return { data: sinusoidalPositions(spec.maxPositionEmbeddings, d), dims: [spec.maxPositionEmbeddings, d] };
    }
    const layerNorm = /\.(self_attn_layer_norm|encoder_attn_layer_norm|final_layer_norm)\.(weight|bias)$/.exec(name);
    if (layerNorm) {
      const last = name === `model.decoder.layers.${spec.decoderLayers - 1}.final_layer_norm.weight`;
      return layerNorm[2] === 'weight' ? { data: this.uniform(name, d, scales.layerNormGain, last ? scales.lastNormGain : 1), dims: [d] } : { data: this.uniform(name, d, scales.layerNormBias), dims: [d] };
    }
    const bias = /^(.*)\.bias$/.exec(name);
    if (bias) return { data: this.uniform(name, this.linearShape(bias[1]!)[1], scales.bias), dims: [this.linearShape(bias[1]!)[1]] };
    const module = [...this.matmulNames].find(([, n]) => n === name)?.[0];
    if (module) {
      const [inDim, outDim] = this.linearShape(module);
      return { data: this.uniform(name, inDim * outDim, this.linearGain(module) / Math.sqrt(inDim)), dims: [inDim, outDim] };
    }
    throw new Error(`unknown parameter ${name}`);
  }

  private linearShape(module: string): [number, number] {
    const { dModel: d, encoderFfn, decoderFfn } = this.spec;
    const ffn = module.startsWith('model.encoder.') ? encoderFfn : decoderFfn;
    if (module.endsWith('.fc1')) return [d, ffn];
    if (module.endsWith('.fc2')) return [ffn, d];
    return [d, d];
  }

  private linearGain(module: string): number {
    if (/\.(q_proj|k_proj)$/.test(module)) return this.scales.queryKeyGain;
    if (/\.(v_proj|out_proj)$/.test(module)) return this.scales.valueGain;
    return this.scales.ffnGain;
  }
}

/** MarianSinusoidalPositionalEmbedding: [pos, j] = sin(pos / 10000^(2j/d)) for j < d/2, cos(pos / 10000^(2(j-d/2)/d)) after. */
function sinusoidalPositions(positions: number, d: number): Float32Array {
  const half = Math.ceil(d / 2);
  const out = new Float32Array(positions * d);
  for (let pos = 0; pos < positions; pos++) {
    for (let j = 0; j < d; j++) {
      const sinPart = j < half;
      const column = sinPart ? 2 * j : 2 * (j - half) + 1;
      const angle = pos / Math.pow(10000, (2 * Math.floor(column / 2)) / d);
      out[pos * d + j] = sinPart ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The eos bias (see EosCalibration), measured on the files just written (their final_logits_bias[eos] is 0).

const CALIBRATION_TEXTS = 40;
const CALIBRATION_STEPS = 40;
const TARGET_LENGTHS = [5, 30] as const;
const TARGET_MEDIAN = 12;

async function calibrateEosBias(dir: string, spec: MarianFixtureSpec, layout: MarianLayout, ids: { eos: number; pad: number }): Promise<EosCalibration> {
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  const encodings = brownCorpus()
    .sample.map((text): number[] => tokenizer.encode(text).ids)
    .filter((e) => e.length <= spec.modelMaxLength)
    .slice(0, CALIBRATION_TEXTS);
  const B = encodings.length;
  const S = Math.max(...encodings.map((e) => e.length));
  const inputIds = new BigInt64Array(B * S).fill(BigInt(ids.pad));
  const mask = new BigInt64Array(B * S);
  encodings.forEach((e, row) =>
    e.forEach((id, i) => {
      inputIds[row * S + i] = BigInt(id);
      mask[row * S + i] = 1n;
    }),
  );
  const maskTensor = new ort.Tensor('int64', mask, [B, S]);
  const steps = Math.min(CALIBRATION_STEPS, spec.maxLength - 1);
  const margins: Float32Array[] = encodings.map(() => new Float32Array(steps));
  const sessions: ort.InferenceSession[] = [];
  // No pre-packed copies of the weights: opus-mt-shape's decoder alone is 340 MB.
  const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', extra: { session: { disable_prepacking: '1' } } };
  const open = async (file: string) => {
    const session = await ort.InferenceSession.create(join(dir, 'onnx', file), sessionOptions);
    sessions.push(session);
    return session;
  };
  try {
    const encoder = await ort.InferenceSession.create(join(dir, 'onnx', 'encoder_model.onnx'), sessionOptions);
    let encoded: ort.Tensor;
    try {
      encoded = (await encoder.run({ input_ids: new ort.Tensor('int64', inputIds, [B, S]), attention_mask: maskTensor })).last_hidden_state!;
    } finally {
      await encoder.release();
    }
    const merged = layout !== 'unmerged' && existsSync(join(dir, 'onnx', 'decoder_model_merged.onnx')) ? await open('decoder_model_merged.onnx') : undefined;
    const first = merged ?? (await open('decoder_model.onnx'));
    const withPast = merged ?? (await open('decoder_with_past_model.onnx'));
    const k = spec.dModel / spec.heads;
    let past: Record<string, ort.Tensor> = {};
    if (merged) for (const name of marianCacheNames(spec.decoderLayers, 'past_key_values')) past[name] = new ort.Tensor('float32', new Float32Array(0), [B, spec.heads, 0, k]);
    let tokens = new BigInt64Array(B).fill(BigInt(ids.pad));
    for (let step = 0; step < steps; step++) {
      const session = step === 0 ? first : withPast;
      const feeds: Record<string, ort.Tensor> = { encoder_attention_mask: maskTensor, input_ids: new ort.Tensor('int64', tokens, [B, 1]) };
      if (session.inputNames.includes('encoder_hidden_states')) feeds.encoder_hidden_states = encoded;
      if (session.inputNames.includes('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [step > 0], [1]);
      for (const name of session.inputNames) if (name.startsWith('past_key_values.')) feeds[name] = past[name]!;
      const out = await session.run(feeds);
      const logits = out.logits!.data as Float32Array;
      const V = logits.length / B;
      tokens = new BigInt64Array(B);
      for (let row = 0; row < B; row++) {
        let best = -1;
        let bestLogit = -Infinity;
        for (let v = 0; v < V; v++) {
          if (v === ids.eos || v === ids.pad) continue;
          const value = logits[row * V + v]!;
          if (value > bestLogit) [best, bestLogit] = [v, value];
        }
        margins[row]![step] = logits[row * V + ids.eos]! - bestLogit;
        tokens[row] = BigInt(best);
      }
      // The encoder part of the cache is step 0's (the merged graph's cache branch may not output it).
      const next: Record<string, ort.Tensor> = {};
      for (const name of marianCacheNames(spec.decoderLayers, 'past_key_values')) {
        next[name] = name.includes('.encoder.') && step > 0 ? past[name]! : out[name.replace('past_key_values', 'present')]!;
      }
      past = next;
    }
  } finally {
    for (const session of sessions) await session.release();
  }

  // Candidate biases: between consecutive thresholds -margin (below all of them: no text stops early).
  const lengthsFor = (bias: number) =>
    margins.map((m) => {
      for (let s = 0; s < steps; s++) if (m[s]! + bias > 0) return s + 1;
      return steps;
    });
  const thresholds = [...new Set(margins.flatMap((m) => Array.from(m, (x) => -x)))].sort((a, b) => a - b);
  let best = { bias: 0, score: -1, medianGap: Infinity, lengths: [] as number[] };
  for (let i = 0; i <= thresholds.length; i++) {
    const bias = i === 0 ? thresholds[0]! - 1 : i === thresholds.length ? thresholds[i - 1]! + 1 : (thresholds[i - 1]! + thresholds[i]!) / 2;
    const lengths = lengthsFor(bias);
    const ended = lengths.map((l, row) => margins[row]![l - 1]! + bias > 0);
    const score = lengths.filter((l, row) => ended[row] && l >= TARGET_LENGTHS[0] && l <= TARGET_LENGTHS[1]).length;
    const sorted = [...lengths].sort((a, b) => a - b);
    const medianGap = Math.abs(sorted[sorted.length >> 1]! - TARGET_MEDIAN);
    if (score > best.score || (score === best.score && medianGap < best.medianGap)) best = { bias, score, medianGap, lengths };
  }
  return { texts: B, eosBias: Math.fround(best.bias), lengths: best.lengths, steps };
}

// ---------------------------------------------------------------------------------------------------------------
// Graph building.

const FLOAT32_LOWEST = -3.4028234663852886e38;
const CAST_FLOAT = 1;
const LAYER_NORM_EPS = 1e-5;

/**
 * One graph being built. Parameters become initializers of `owner` (the graph itself, or for an If branch the outer
 * graph, where they are shared by both branches); in a branch, outer-scope names are declared as inputs while
 * building (the builder checks that names exist) and those inputs are dropped afterwards.
 */
class GraphContext {
  readonly g: OnnxGraphBuilder;
  private readonly constants = new Map<string, string>();
  /** Parameters and outer-scope names already declared in this graph. */
  private readonly declared = new Set<string>();

  constructor(
    name: string,
    readonly params: Params,
    private readonly outer?: { g: OnnxGraphBuilder; registered: Set<string> },
    private readonly constantPrefix = '',
  ) {
    this.g = new OnnxGraphBuilder({ name, opset: 17, producerName: 'polyhead-marian-fixtures' });
  }

  /** A parameter's name, declaring it where it lives on first use. */
  param(name: string): string {
    if (this.outer) {
      if (!this.outer.registered.has(name)) {
        const { data, dims } = this.params.get(name);
        this.outer.g.initializer(name, data, dims);
        this.outer.registered.add(name);
      }
      this.outerName(name);
    } else if (!this.declared.has(name)) {
      const { data, dims } = this.params.get(name);
      this.g.initializer(name, data, dims);
      this.declared.add(name);
    }
    return name;
  }

  /** A graph input: a real input, or in a branch an outer-scope name. */
  input(name: string, type: 'int64' | 'float32' | 'bool', dims: Dim[]): string {
    if (this.outer) return this.outerName(name);
    return this.g.input(name, type, dims);
  }

  private outerName(name: string): string {
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.g.input(name, 'float32', []);
    }
    return name;
  }

  scalar(value: number): string {
    return this.constant(`f${value}`, () => this.g.floats(this.constantName(), [value], []));
  }

  int64s(values: number[], scalar = false): string {
    return this.constant(`i${scalar ? 's' : ''}${values.join(',')}`, () => this.g.int64s(this.constantName(), values, scalar ? [] : [values.length]));
  }

  private constant(key: string, make: () => string): string {
    let name = this.constants.get(key);
    if (!name) this.constants.set(key, (name = make()));
    return name;
  }

  private constantName(): string {
    return `${this.constantPrefix}/Constant_${this.constants.size}_output_0`;
  }

  op(type: string, inputs: string[], name: string, attrs?: Record<string, number | number[] | ReturnType<typeof floatAttr>>, output?: string): string {
    return this.g.op(type, inputs, { name, ...(attrs ? { attrs } : {}), ...(output ? { output } : {}) });
  }

  /** x @ W + b with W = onnx::MatMul_<n> [in, out] and b = `<module>.bias`. */
  linear(x: string, module: string, path: string, output?: string): string {
    const product = this.op('MatMul', [x, this.param(this.params.matmulName(module))], `${path}/MatMul`);
    return this.op('Add', [this.param(`${module}.bias`), product], `${path}/Add`, undefined, output);
  }

  layerNorm(x: string, module: string, path: string): string {
    return this.op('LayerNormalization', [x, this.param(`${module}.weight`), this.param(`${module}.bias`)], `${path}/LayerNormalization`, {
      axis: -1,
      epsilon: floatAttr(LAYER_NORM_EPS),
    });
  }

  /** Additive mask [B, 1, 1, S] from an int64 attention mask [B, S]: 0 where 1, float32's lowest where 0. */
  additiveMask(mask: string, path: string): string {
    const unsqueezed = this.op('Unsqueeze', [mask, this.int64s([1, 2])], `${path}/Unsqueeze`);
    const asFloat = this.op('Cast', [unsqueezed], `${path}/Cast`, { to: CAST_FLOAT });
    return this.op('Mul', [this.op('Sub', [this.scalar(1), asFloat], `${path}/Sub`), this.scalar(FLOAT32_LOWEST)], `${path}/Mul`);
  }

  /** [B, L, d] -> [B, heads, L, head_dim]. */
  splitHeads(x: string, path: string, output?: string): string {
    const { heads, dModel } = this.params.spec;
    const reshaped = this.op('Reshape', [x, this.int64s([0, 0, heads, dModel / heads])], `${path}/Reshape`);
    return this.op('Transpose', [reshaped], `${path}/Transpose`, { perm: [0, 2, 1, 3] }, output);
  }

  /** softmax(q k^T + mask) v, heads merged back, through out_proj. q, k, v: [B, heads, *, head_dim]. */
  attend(q: string, k: string, v: string, mask: string, module: string, path: string): string {
    const kT = this.op('Transpose', [k], `${path}/Transpose_k`, { perm: [0, 1, 3, 2] });
    const scores = this.op('Add', [this.op('MatMul', [q, kT], `${path}/MatMul`), mask], `${path}/Add_mask`);
    const probs = this.op('Softmax', [scores], `${path}/Softmax`, { axis: -1 });
    const context = this.op('Transpose', [this.op('MatMul', [probs, v], `${path}/MatMul_1`)], `${path}/Transpose_out`, { perm: [0, 2, 1, 3] });
    const merged = this.op('Reshape', [context, this.int64s([0, 0, this.params.spec.dModel])], `${path}/Reshape_out`);
    return this.linear(merged, `${module}.out_proj`, `${path}/out_proj`);
  }

  query(x: string, module: string, path: string): string {
    const scaled = this.op('Mul', [this.linear(x, `${module}.q_proj`, `${path}/q_proj`), this.scalar(1 / Math.sqrt(this.params.spec.dModel / this.params.spec.heads))], `${path}/Mul_scale`);
    return this.splitHeads(scaled, `${path}/q`);
  }

  /** fc1 -> swish (x * sigmoid(x)) -> fc2. */
  feedForward(x: string, layer: string, path: string): string {
    const inner = this.linear(x, `${layer}.fc1`, `${path}/fc1`);
    const swish = this.op('Mul', [inner, this.op('Sigmoid', [inner], `${path}/activation_fn/Sigmoid`)], `${path}/activation_fn/Mul`);
    return this.linear(swish, `${layer}.fc2`, `${path}/fc2`);
  }

  /** Token embeddings x sqrt(d) plus the position table's rows start .. start + length - 1. */
  embed(inputIds: string, positions: string, start: string, prefix: string): string {
    const table = this.param('model.shared.weight');
    const tokens = this.op('Mul', [this.op('Gather', [table, inputIds], `${prefix}/embed_tokens/Gather`), this.scalar(Math.sqrt(this.params.spec.dModel))], `${prefix}/Mul_embed_scale`);
    const length = this.op('Gather', [this.op('Shape', [inputIds], `${prefix}/Shape`), this.int64s([1], true)], `${prefix}/Gather_length`, { axis: 0 });
    const end = this.op('Add', [start, length], `${prefix}/Add_end`);
    const range = this.op('Range', [start, end, this.int64s([1], true)], `${prefix}/embed_positions/Range`);
    const rows = this.op('Gather', [this.param(positions), range], `${prefix}/embed_positions/Gather`);
    return this.op('Add', [tokens, rows], `${prefix}/Add_positions`);
  }
}

function encoderModel(spec: MarianFixtureSpec, params: Params): proto.ModelProto {
  const c = new GraphContext('marian-encoder', params);
  const dims = ['batch_size', 'encoder_sequence_length'];
  const inputIds = c.input('input_ids', 'int64', dims);
  const mask = c.additiveMask(c.input('attention_mask', 'int64', dims), '/model/encoder/mask');
  let hidden = c.embed(inputIds, 'model.encoder.embed_positions.weight', c.int64s([0], true), '/model/encoder');
  for (let i = 0; i < spec.encoderLayers; i++) {
    const layer = `model.encoder.layers.${i}`;
    const path = `/model/encoder/layers.${i}`;
    const self = `${path}/self_attn`;
    const q = c.query(hidden, `${layer}.self_attn`, self);
    const k = c.splitHeads(c.linear(hidden, `${layer}.self_attn.k_proj`, `${self}/k_proj`), `${self}/k`);
    const v = c.splitHeads(c.linear(hidden, `${layer}.self_attn.v_proj`, `${self}/v_proj`), `${self}/v`);
    const attended = c.attend(q, k, v, mask, `${layer}.self_attn`, self);
    hidden = c.layerNorm(c.op('Add', [hidden, attended], `${path}/Add_self`), `${layer}.self_attn_layer_norm`, `${path}/self_attn_layer_norm`);
    const ffn = c.feedForward(hidden, layer, path);
    hidden = c.layerNorm(c.op('Add', [hidden, ffn], `${path}/Add_ffn`), `${layer}.final_layer_norm`, `${path}/final_layer_norm`);
  }
  c.op('Identity', [hidden], '/model/encoder/Identity', undefined, 'last_hidden_state');
  c.g.output('last_hidden_state', 'float32', [...dims, spec.dModel]);
  return c.g.toModel();
}

type EncoderPresent = 'compute' | 'passthrough' | 'empty' | 'none';

/**
 * The decoder's nodes into `c`. withPast: self-attention keys/values are the given past plus this call's tokens, and
 * cross-attention uses past_key_values.{i}.encoder.*; otherwise both come from this call (positions from 0).
 * encoderPresent says what present.{i}.encoder.* are: computed (no past), the past passed through, Optimum's empty
 * constants, or not output at all (decoder_with_past_model.onnx).
 */
function decoderBody(c: GraphContext, spec: MarianFixtureSpec, withPast: boolean, encoderPresent: EncoderPresent): void {
  const { heads, dModel: d } = spec;
  const k = d / heads;
  const V = c.params.vocabSize;
  const encoderMask = c.input('encoder_attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
  const inputIds = c.input('input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
  const encoderStates = withPast ? '' : c.input('encoder_hidden_states', 'float32', ['batch_size', 'encoder_sequence_length', d]);
  if (withPast) {
    for (const name of marianCacheNames(spec.decoderLayers, 'past_key_values')) {
      c.input(name, 'float32', ['batch_size', heads, name.includes('.decoder.') ? 'past_decoder_sequence_length' : 'encoder_sequence_length_out', k]);
    }
  }
  const prefix = '/model/decoder';
  const pastLength = withPast
    ? c.op('Gather', [c.op('Shape', ['past_key_values.0.decoder.key'], `${prefix}/Shape_past`), c.int64s([2], true)], `${prefix}/Gather_past_length`, { axis: 0 })
    : c.int64s([0], true);
  let hidden = c.embed(inputIds, 'model.decoder.embed_positions.weight', pastLength, prefix);

  // Causal mask [T, P + T]: query i (position P + i) sees keys 0 .. P + i.
  const length = c.op('Gather', [c.op('Shape', [inputIds], `${prefix}/causal/Shape`), c.int64s([1], true)], `${prefix}/causal/Gather`, { axis: 0 });
  const total = c.op('Add', [pastLength, length], `${prefix}/causal/Add`);
  const rows = c.op('Unsqueeze', [c.op('Range', [pastLength, total, c.int64s([1], true)], `${prefix}/causal/Range_rows`), c.int64s([1])], `${prefix}/causal/Unsqueeze_rows`);
  const cols = c.op('Unsqueeze', [c.op('Range', [c.int64s([0], true), total, c.int64s([1], true)], `${prefix}/causal/Range_cols`), c.int64s([0])], `${prefix}/causal/Unsqueeze_cols`);
  const future = c.op('Cast', [c.op('Greater', [cols, rows], `${prefix}/causal/Greater`)], `${prefix}/causal/Cast`, { to: CAST_FLOAT });
  const causal = c.op('Mul', [future, c.scalar(FLOAT32_LOWEST)], `${prefix}/causal/Mul`);
  const crossMask = c.additiveMask(encoderMask, `${prefix}/encoder_mask`);

  const outputs: Array<[string, Dim[]]> = [];
  const decoderDims: Dim[] = ['batch_size', heads, withPast ? 'past_decoder_sequence_length + 1' : 'decoder_sequence_length', k];
  const encoderDims: Dim[] = ['batch_size', heads, 'encoder_sequence_length', k];
  for (let i = 0; i < spec.decoderLayers; i++) {
    const layer = `model.decoder.layers.${i}`;
    const path = `${prefix}/layers.${i}`;
    const self = `${path}/self_attn`;
    const q = c.query(hidden, `${layer}.self_attn`, self);
    const keyName = `present.${i}.decoder.key`;
    const valueName = `present.${i}.decoder.value`;
    const newK = c.splitHeads(c.linear(hidden, `${layer}.self_attn.k_proj`, `${self}/k_proj`), `${self}/k`, withPast ? undefined : keyName);
    const newV = c.splitHeads(c.linear(hidden, `${layer}.self_attn.v_proj`, `${self}/v_proj`), `${self}/v`, withPast ? undefined : valueName);
    const selfK = withPast ? c.op('Concat', [`past_key_values.${i}.decoder.key`, newK], `${self}/Concat_k`, { axis: 2 }, keyName) : newK;
    const selfV = withPast ? c.op('Concat', [`past_key_values.${i}.decoder.value`, newV], `${self}/Concat_v`, { axis: 2 }, valueName) : newV;
    outputs.push([keyName, decoderDims], [valueName, decoderDims]);
    const attended = c.attend(q, selfK, selfV, causal, `${layer}.self_attn`, self);
    hidden = c.layerNorm(c.op('Add', [hidden, attended], `${path}/Add_self`), `${layer}.self_attn_layer_norm`, `${path}/self_attn_layer_norm`);

    const cross = `${path}/encoder_attn`;
    const crossQ = c.query(hidden, `${layer}.encoder_attn`, cross);
    const encKeyName = `present.${i}.encoder.key`;
    const encValueName = `present.${i}.encoder.value`;
    let crossK: string;
    let crossV: string;
    if (withPast) {
      crossK = `past_key_values.${i}.encoder.key`;
      crossV = `past_key_values.${i}.encoder.value`;
      if (encoderPresent === 'passthrough') {
        c.op('Identity', [crossK], `${cross}/Identity_k`, undefined, encKeyName);
        c.op('Identity', [crossV], `${cross}/Identity_v`, undefined, encValueName);
      } else if (encoderPresent === 'empty') {
        // Optimum's _unify_onnx_outputs: a constant [0, heads, 1, head_dim] for each output the with-past decoder lacks.
        const empty = c.g.initializer(`${prefix}/layers.${i}/empty_encoder_present`, new Float32Array(0), [0, heads, 1, k]);
        c.op('Identity', [empty], `${cross}/Identity_k`, undefined, encKeyName);
        c.op('Identity', [empty], `${cross}/Identity_v`, undefined, encValueName);
      }
    } else {
      crossK = c.splitHeads(c.linear(encoderStates, `${layer}.encoder_attn.k_proj`, `${cross}/k_proj`), `${cross}/k`, encKeyName);
      crossV = c.splitHeads(c.linear(encoderStates, `${layer}.encoder_attn.v_proj`, `${cross}/v_proj`), `${cross}/v`, encValueName);
    }
    if (encoderPresent !== 'none') outputs.push([encKeyName, encoderDims], [encValueName, encoderDims]);
    const crossAttended = c.attend(crossQ, crossK, crossV, crossMask, `${layer}.encoder_attn`, cross);
    hidden = c.layerNorm(c.op('Add', [hidden, crossAttended], `${path}/Add_cross`), `${layer}.encoder_attn_layer_norm`, `${path}/encoder_attn_layer_norm`);

    const ffn = c.feedForward(hidden, layer, path);
    hidden = c.layerNorm(c.op('Add', [hidden, ffn], `${path}/Add_ffn`), `${layer}.final_layer_norm`, `${path}/final_layer_norm`);
  }
  const projected = c.op('MatMul', [hidden, c.param(c.params.matmulName('lm_head'))], '/lm_head/MatMul');
  c.op('Add', [projected, c.param('final_logits_bias')], '/Add_final_logits_bias', undefined, 'logits');
  c.g.output('logits', 'float32', ['batch_size', 'decoder_sequence_length', V]);
  for (const [name, dims] of outputs) c.g.output(name, 'float32', dims);
}

function standaloneDecoderModel(spec: MarianFixtureSpec, params: Params, withPast: boolean): proto.ModelProto {
  const c = new GraphContext(withPast ? 'marian-decoder-with-past' : 'marian-decoder', params);
  decoderBody(c, spec, withPast, withPast ? 'none' : 'compute');
  return c.g.toModel();
}

/** Optimum's merged decoder: one If on use_cache_branch, then = with past, else = without; weights in the outer graph. */
function mergedDecoderModel(spec: MarianFixtureSpec, params: Params, encoderPresent: 'passthrough' | 'empty'): proto.ModelProto {
  const { heads, dModel: d } = spec;
  const k = d / heads;
  const outer = new OnnxGraphBuilder({ name: 'merged', opset: 17, producerName: 'polyhead-marian-fixtures' });
  outer.input('encoder_attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
  outer.input('input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
  outer.input('encoder_hidden_states', 'float32', ['batch_size', 'encoder_sequence_length', d]);
  for (const name of marianCacheNames(spec.decoderLayers, 'past_key_values')) {
    outer.input(name, 'float32', ['batch_size', heads, name.includes('.decoder.') ? 'past_decoder_sequence_length' : 'encoder_sequence_length_out', k]);
  }
  outer.input('use_cache_branch', 'bool', [1]);
  const shared = { g: outer, registered: new Set<string>() };
  const branch = (withPast: boolean): proto.GraphProto => {
    const c = new GraphContext(withPast ? 'with_past' : 'no_past', params, shared, withPast ? '/with_past' : '/no_past');
    decoderBody(c, spec, withPast, withPast ? encoderPresent : 'compute');
    const graph = c.g.toModel().graph as proto.GraphProto;
    graph.input = [];
    return graph;
  };
  const noPast = branch(false);
  const withPast = branch(true);
  const outputs = noPast.output.map((o) => o.name!);
  outer.node('If', ['use_cache_branch'], { outputs, name: 'optimum::if' });
  for (const o of noPast.output) {
    const dims = o.type!.tensorType!.shape!.dim!.map((dim) => (dim.dimParam ? dim.dimParam : Number(dim.dimValue)));
    outer.output(o.name!, 'float32', dims);
  }
  const model = outer.toModel();
  const ifNode = model.graph!.node!.find((n) => n.name === 'optimum::if')!;
  const { AttributeType } = onnx.AttributeProto;
  ifNode.attribute = [
    { name: 'then_branch', type: AttributeType.GRAPH, g: withPast },
    { name: 'else_branch', type: AttributeType.GRAPH, g: noPast },
  ];
  return model;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing a ModelProto in pieces: the model without its graph, then the graph field (tag, length, the graph without
// initializers, then each initializer as its metadata and its raw_data bytes). Protobuf fields may come in any order
// and repeated fields may be interleaved, so this is the same message; only the bytes' order differs from encode().

function varint(value: number): Uint8Array {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Uint8Array.from(bytes);
}

const MODEL_GRAPH_TAG = 0x3a; // field 7, length-delimited
const GRAPH_INITIALIZER_TAG = 0x2a; // field 5
const TENSOR_RAW_DATA_TAG = 0x4a; // field 9

/** Writes `model` to `path`; returns the byte count and where each initializer's raw bytes start in the file. */
function writeOnnxModel(path: string, model: proto.ModelProto): { bytes: number; rawOffsets: Map<string, number> } {
  const graph = model.graph!;
  const shellGraph = onnx.GraphProto.create({
    name: graph.name,
    node: graph.node,
    input: graph.input,
    output: graph.output,
    valueInfo: graph.valueInfo,
    docString: graph.docString,
  });
  const shellModel = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    producerName: model.producerName,
    docString: model.docString,
  });
  const head = onnx.ModelProto.encode(shellModel).finish();
  const graphBytes = onnx.GraphProto.encode(shellGraph).finish();
  const tensors = (graph.initializer ?? []).map((t) => {
    const raw = t.rawData ?? new Uint8Array(0);
    const meta = onnx.TensorProto.encode(onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: t.dataType })).finish();
    const rawHeader = Uint8Array.from([TENSOR_RAW_DATA_TAG, ...varint(raw.length)]);
    const size = meta.length + rawHeader.length + raw.length;
    return { name: t.name!, header: Uint8Array.from([GRAPH_INITIALIZER_TAG, ...varint(size)]), meta, rawHeader, raw, size };
  });
  const graphSize = graphBytes.length + tensors.reduce((sum, t) => sum + t.header.length + t.size, 0);
  const fd = openSync(path, 'w');
  let written = 0;
  const rawOffsets = new Map<string, number>();
  const write = (bytes: Uint8Array) => {
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    written += bytes.length;
  };
  try {
    write(head);
    write(Uint8Array.from([MODEL_GRAPH_TAG, ...varint(graphSize)]));
    write(graphBytes);
    for (const t of tensors) {
      write(t.header);
      write(t.meta);
      write(t.rawHeader);
      rawOffsets.set(t.name, written);
      write(t.raw);
    }
  } finally {
    closeSync(fd);
  }
  return { bytes: written, rawOffsets };
}
