// Hugging Face tokenizer.json files (WordPiece, BPE, Unigram) through `tokenizers`, the official binding of the
// Rust library: normalizer, pre-tokenizer, model and post-processor are the file's own, run natively.
//
// What this module adds on top of the library:
// - Truncation that reports the untruncated length, which the library's own truncation loses. The library never
//   truncates (nor pads) here: texts are encoded whole, special tokens included, and the ones that are too long
//   are cut in JS around the leading and trailing special tokens. For a single sequence a post-processor puts a
//   fixed number of special tokens before and after the text's tokens and processes each token on its own, so
//   this gives what the library's truncation gives (the tests compare the two) without a second native call.
// - Offsets in JavaScript string units. The binding reports [start, end) in Unicode code points of the text it
//   was given; napi hands it the JS string as UTF-8 with every lone surrogate replaced by U+FFFD, one code point,
//   so code point i there is the i-th code point of the JS string (a lone surrogate counting as one), and only
//   surrogate pairs need mapping (to two units).
// - Spans without the space that a Metaspace '▁' or byte-level 'Ġ' piece stands for, which the library includes
//   unless the file's post-processor trims offsets: leading whitespace is dropped from every span, and a piece
//   that is only whitespace ('▁', 'Ġ', 'Ċ') gets an empty span where its whitespace ends (the library's
//   trim_offsets rule). That also puts the '▁' Metaspace prepends, which the library aligns with the text's
//   first character, at [0, 0].
// - Offsets are worked out on first use: only span heads read them, and reading them from the binding costs
//   about as much as the ids, type ids and special mask together.
import { readFile } from 'node:fs/promises';
import { Tokenizer as NativeTokenizer, type Encoding as NativeEncoding } from 'tokenizers';
import type { TextEncoding, Tokenizer } from './tokenizer.js';

export interface HuggingFaceTokenizerOptions {
  /**
   * The most tokens the model takes (special tokens included). When tokenizer.json declares truncation.max_length
   * the smaller of the two applies; one of them is required.
   */
  maxTokens?: number;
}

/**
 * The model types served. BPE is accepted whether byte-level (RoBERTa, GPT-2; tested) or not (SentencePiece-style
 * with Metaspace and byte_fallback, as Llama's): the library runs either, and nothing here depends on which.
 * WordLevel (one id per pre-tokenized word, no subwords) is refused: no encoder backbone uses it.
 */
const MODEL_TYPES = new Set(['WordPiece', 'BPE', 'Unigram']);

/** The subset of tokenizer.json read here; everything else is the library's. */
interface TokenizerJson {
  truncation?: { max_length?: number; direction?: string } | null;
  padding?: { pad_id?: number } | null;
  added_tokens?: Array<{ id: number; content: string }>;
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  model?: { type?: string; vocab?: Record<string, number> | Array<[string, number]>; merges?: unknown; unk_token?: unknown };
}

export class HuggingFaceTokenizer implements Tokenizer {
  /** Vocabulary size, added tokens included: ids are below it. */
  readonly vocabSize: number;

  private constructor(
    private readonly native: NativeTokenizer,
    readonly maxTokens: number,
    /** The id to pad with: tokenizer.json's padding.pad_id, else the id of [PAD] or <pad>; undefined when none. */
    readonly padId: number | undefined,
    /** Special tokens the post-processor adds to a single text (2 for [CLS] ... [SEP]). */
    private readonly specialCount: number,
    /** The post-processor assigns token type ids (BertProcessing, TemplateProcessing). */
    private readonly withTypeIds: boolean,
    /** Truncation keeps the last tokens (tokenizer.json's truncation.direction Left). */
    private readonly keepEnd: boolean,
    /** By id: 1 for a piece that is only whitespace (see the module comment). */
    private readonly whitespaceOnly: Uint8Array,
  ) {
    this.vocabSize = native.getVocabSize(true);
  }

  /** Reads a tokenizer.json file. */
  static async load(tokenizerJsonPath: string, options: HuggingFaceTokenizerOptions = {}): Promise<HuggingFaceTokenizer> {
    return HuggingFaceTokenizer.fromJson(await readFile(tokenizerJsonPath, 'utf8'), options, tokenizerJsonPath);
  }

  /** Builds one from a tokenizer.json's text; `source` names it in errors. */
  static async fromJson(json: string, options: HuggingFaceTokenizerOptions = {}, source?: string): Promise<HuggingFaceTokenizer> {
    const where = source ? `tokenizer.json (${source})` : 'tokenizer.json';
    let parsed: TokenizerJson;
    try {
      parsed = JSON.parse(json) as TokenizerJson;
    } catch (error) {
      throw new Error(`${where} is not JSON: ${(error as Error).message}`);
    }
    const modelType = modelTypeOf(parsed.model);
    if (!MODEL_TYPES.has(modelType)) {
      throw new Error(`${where}: model.type ${JSON.stringify(modelType)} is not supported (WordPiece, BPE or Unigram)`);
    }
    const declared = parsed.truncation?.max_length;
    const maxTokens = Math.min(options.maxTokens ?? Infinity, declared ?? Infinity);
    if (maxTokens === Infinity) throw new Error(`${where} declares no truncation.max_length: pass maxTokens (the model's limit)`);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`maxTokens must be a positive integer, got ${maxTokens}`);

    let native: NativeTokenizer;
    try {
      native = NativeTokenizer.fromString(json);
    } catch (error) {
      throw new Error(`${where} could not be read by the tokenizers library: ${(error as Error).message}`);
    }
    // Lengths are the engine's business: it pads, and truncation is done here (see the module comment).
    native.disableTruncation();
    native.disablePadding();

    const specialCount = (await native.encode('')).getLength();
    if (maxTokens <= specialCount) {
      throw new Error(`maxTokens ${maxTokens} leaves no room for text next to the ${specialCount} special tokens of ${where}`);
    }
    return new HuggingFaceTokenizer(
      native,
      maxTokens,
      parsed.padding?.pad_id ?? native.tokenToId('[PAD]') ?? native.tokenToId('<pad>') ?? undefined,
      specialCount,
      declaresTypeIds(parsed.post_processor),
      /^left$/i.test(parsed.truncation?.direction ?? ''),
      whitespacePieces(parsed, native.getVocabSize(true)),
    );
  }

  /** The id of a token of the vocabulary (added tokens included), or undefined. */
  tokenId(token: string): number | undefined {
    return this.native.tokenToId(token) ?? undefined;
  }

  /** Token ids back to text, special tokens left out, with the file's own decoder (a translation's output). */
  decodeBatch(ids: readonly Int32Array[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.native.decodeBatch(ids.map((row) => Array.from(row)), true);
  }

  async encodeBatch(texts: readonly string[]): Promise<TextEncoding[]> {
    if (texts.length === 0) return [];
    const natives = await this.native.encodeBatch(texts as string[]);
    const out: TextEncoding[] = new Array(natives.length);
    for (let i = 0; i < natives.length; i++) out[i] = this.toEncoding(natives[i]!, texts[i]!);
    return out;
  }

  private toEncoding(native: NativeEncoding, text: string): TextEncoding {
    const tokenCount = native.getLength();
    let ids = Int32Array.from(native.getIds());
    let typeIds = this.withTypeIds ? Int32Array.from(native.getTypeIds()) : undefined;
    let special = this.specialCount > 0 ? Uint8Array.from(native.getSpecialTokensMask()) : undefined;
    const max = this.maxTokens;
    if (tokenCount <= max) return new HuggingFaceEncoding(ids, typeIds, special, tokenCount, native, text, tokenCount, 0, this.whitespaceOnly);
    // The leading special tokens are the run of 1s the mask starts with; there are text tokens, so it ends.
    const leading = special ? special.indexOf(0) : 0;
    // Output tokens from `cut` on are the native encoding's from `cut + skip` on.
    const cut = this.keepEnd ? leading : max - (this.specialCount - leading);
    const skip = tokenCount - max;
    ids = cutOut(ids, cut, skip, max);
    if (typeIds) typeIds = cutOut(typeIds, cut, skip, max);
    if (special) special = cutOut(special, cut, skip, max);
    return new HuggingFaceEncoding(ids, typeIds, special, tokenCount, native, text, cut, skip, this.whitespaceOnly);
  }
}

class HuggingFaceEncoding implements TextEncoding {
  typeIds?: Int32Array;
  special?: Uint8Array;
  readonly truncated: boolean;
  private spans: Array<[number, number]> | undefined;

  constructor(
    readonly ids: Int32Array,
    typeIds: Int32Array | undefined,
    special: Uint8Array | undefined,
    readonly tokenCount: number,
    /** Dropped once the offsets are read: its memory is the library's until the GC finalizes it. */
    private native: NativeEncoding | undefined,
    private readonly text: string,
    private readonly cut: number,
    private readonly skip: number,
    private readonly whitespaceOnly: Uint8Array,
  ) {
    // Left off rather than set to undefined when absent, as the interface reads.
    if (typeIds) this.typeIds = typeIds;
    if (special) this.special = special;
    this.truncated = skip > 0;
  }

  get offsets(): Array<[number, number]> {
    if (!this.spans) {
      const raw = this.native!.getOffsets() as Array<[number, number]>;
      this.native = undefined;
      if (this.skip > 0) raw.splice(this.cut, this.skip);
      this.spans = this.convert(raw);
    }
    return this.spans;
  }

  /**
   * The library's code point spans as UTF-16 spans into the text, trimmed (see the module comment); rewritten in
   * place, the binding's arrays being fresh ones.
   */
  private convert(spans: Array<[number, number]>): Array<[number, number]> {
    const { text, ids, special, whitespaceOnly } = this;
    const unitOf = SURROGATE_PAIR.test(text) ? utf16Starts(text) : undefined;
    const length = text.length;
    const lastPoint = unitOf ? unitOf.length - 1 : length;
    let lastStart = 0;
    let lastEnd = 0;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      if (special?.[i] === 1) {
        span[0] = 0;
        span[1] = 0;
        continue;
      }
      let start = Math.min(span[0], lastPoint);
      let end = Math.min(span[1], lastPoint);
      if (unitOf) {
        start = unitOf[start]!;
        end = unitOf[end]!;
      }
      while (start < end && isSpace(text.charCodeAt(start))) start++;
      if (whitespaceOnly[ids[i]!] === 1) end = start;
      // Never out of order, whatever a normalizer's alignments do.
      if (start < lastStart) start = lastStart;
      if (end < lastEnd) end = lastEnd;
      if (end < start) end = start;
      span[0] = lastStart = start;
      span[1] = lastEnd = end;
    }
    // A normalizer that composes (NFKC: 'e' + U+0301 -> 'é') aligns the composed character with its first
    // original one only: the marks after it belong to no token. They go to the token before them.
    if (COMBINING_MARK.test(text)) {
      let nextStart = length;
      for (let i = spans.length - 1; i >= 0; i--) {
        if (special?.[i] === 1) continue;
        const span = spans[i]!;
        while (span[1] > span[0] && span[1] < nextStart && COMBINING_MARK.test(String.fromCodePoint(text.codePointAt(span[1])!))) {
          span[1] += text.codePointAt(span[1])! > 0xffff ? 2 : 1;
        }
        nextStart = span[0];
      }
    }
    return spans;
  }
}

/** By code point of `text`, the UTF-16 offset it starts at, plus one entry for the end. */
function utf16Starts(text: string): Int32Array {
  const starts = new Int32Array(text.length + 1);
  let point = 0;
  for (let unit = 0; unit < text.length; unit++) {
    starts[point++] = unit;
    const c = text.charCodeAt(unit);
    if (c >= 0xd800 && c <= 0xdbff && unit + 1 < text.length) {
      const next = text.charCodeAt(unit + 1);
      if (next >= 0xdc00 && next <= 0xdfff) unit++;
    }
  }
  starts[point] = text.length;
  return starts.subarray(0, point + 1);
}

const SURROGATE_PAIR = /[\uD800-\uDBFF][\uDC00-\uDFFF]/;
const NON_ASCII_SPACE = /\s/;
const COMBINING_MARK = /\p{M}/u;

function isSpace(unit: number): boolean {
  return unit === 32 || (unit >= 9 && unit <= 13) || (unit >= 0x80 && NON_ASCII_SPACE.test(String.fromCharCode(unit)));
}

/** `values` without the `skip` entries from `cut` on, `length` entries in all. */
function cutOut<T extends Int32Array | Uint8Array>(values: T, cut: number, skip: number, length: number): T {
  const out = new (values.constructor as { new (n: number): T })(length);
  out.set(values.subarray(0, cut));
  out.set(values.subarray(cut + skip, length + skip), cut);
  return out;
}

/** model.type, or for files written without it the type the library infers from the fields. */
function modelTypeOf(model: TokenizerJson['model']): string {
  if (!model || typeof model !== 'object') return 'missing';
  if (typeof model.type === 'string') return model.type;
  if (Array.isArray(model.vocab)) return 'Unigram';
  if (model.merges !== undefined) return 'BPE';
  return 'unknown';
}

/** Whether the post-processor (or one in a Sequence of them) assigns token type ids. */
function declaresTypeIds(processor: unknown): boolean {
  if (!processor || typeof processor !== 'object') return false;
  const { type, processors } = processor as { type?: string; processors?: unknown[] };
  if (type === 'BertProcessing' || type === 'TemplateProcessing') return true;
  return type === 'Sequence' && Array.isArray(processors) && processors.some(declaresTypeIds);
}

/**
 * By id, 1 for the pieces that stand for whitespace only: real whitespace, Metaspace's replacement ('▁' or the
 * file's) and, when a byte-level step is declared, the byte-level alphabet's whitespace ('Ġ' space, 'Ċ' newline,
 * 'ĉ' tab, 'ċ' 'Č' 'č'; a letter elsewhere, as Maltese 'Ġ'). Read from the parsed file rather than the binding's
 * getVocab, which would build a second copy of the vocabulary.
 */
function whitespacePieces(parsed: TokenizerJson, vocabSize: number): Uint8Array {
  const spaces = new Set(['\u2581']);
  let byteLevel = false;
  const visit = (step: unknown): void => {
    if (Array.isArray(step)) step.forEach(visit);
    else if (step && typeof step === 'object') {
      const { type, replacement } = step as { type?: unknown; replacement?: unknown };
      if (type === 'ByteLevel') byteLevel = true;
      if (type === 'Metaspace' && typeof replacement === 'string') spaces.add(replacement);
      Object.values(step).forEach(visit);
    }
  };
  visit([parsed.normalizer, parsed.pre_tokenizer]);
  if (byteLevel) for (const c of '\u0120\u010a\u0109\u010b\u010c\u010d') spaces.add(c);
  const isWhitespace = (piece: string) => {
    if (piece.length === 0) return false;
    for (const c of piece) if (!spaces.has(c) && !/^\s$/.test(c)) return false;
    return true;
  };
  const table = new Uint8Array(vocabSize);
  const mark = (piece: string, id: number) => {
    if (id >= 0 && id < vocabSize && isWhitespace(piece)) table[id] = 1;
  };
  const vocab = parsed.model?.vocab;
  if (Array.isArray(vocab)) vocab.forEach(([piece], id) => mark(piece, id));
  else if (vocab) for (const piece in vocab) mark(piece, vocab[piece]!);
  for (const added of parsed.added_tokens ?? []) mark(added.content, added.id);
  return table;
}
