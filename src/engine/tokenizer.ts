/**
 * Runtime tokenizer for the USE-lite backbone: reads a standard Hugging Face tokenizer.json
 * (Unigram; built by src/convert/tokenizer-json.ts) and reproduces the reference tokenizer of
 * `@energetic-ai/embeddings` exactly, with character offsets into the original text.
 *
 * Why the segmentation is here and not in @huggingface/tokenizers (0.2.0, pure JS):
 * - The reference's Viterbi breaks exact score ties towards the later start (`>=`), SentencePiece
 *   and the HF library towards the earlier one (`>`). Ties are real: runs such as "oooo" or "!!!"
 *   split into the same pieces in a different order ("Nooooo!!!", "Sooooo good").
 * - The reference treats a path score of exactly 0 as "unset", so at the start of a text the
 *   zero-scored pieces '▁:', '▁:)', '▁:(' and '▁:-)' are never chosen (":) great movie").
 * - The library reports no offsets.
 * With the library's ids those texts' embeddings drift from the reference (cosine 0.79-0.98), so
 * this module runs the reference's lattice over the pieces and scores of tokenizer.json instead.
 * The normalizer is the one tokenizer.json declares: NFKC, ' ' -> '▁', prepend '▁'.
 */
import { readFile } from 'node:fs/promises';

import type { TextEncoding, Tokenizer } from './tokenizers/tokenizer.js';

export type { TextEncoding };

const WORD_BOUNDARY = '\u2581';
const UNKNOWN_ID = 0;
/** Pieces scored at or below this are reserved (<s>, </s>, ...): the reference never matches them in text. */
const RESERVED_SCORE_LIMIT = -1000;
/** NFKC leaves ASCII unchanged, so ASCII texts skip it. */
const ASCII = /^[\x00-\x7f]*$/;

/**
 * The pieces as a trie over code points, in flat arrays: node 0 is the root, `pieceId[node]` is the piece
 * ending there (-1: none). Edges: for ASCII code points a dense table (`asciiNext[asciiRow[node] * 128 +
 * codePoint]`, -1: none; a row only for nodes with ASCII edges), for the rest `children[node]`. Most text
 * is ASCII, and the table lookup is several times faster than a Map's.
 */
interface PieceTrie {
  children: Array<Map<number, number> | undefined>;
  asciiRow: Int32Array;
  asciiNext: Int32Array;
  pieceId: Int32Array;
  pieceScore: Float64Array;
}

/**
 * One text's tokens. The character offsets are worked out on first use: only heads that report
 * spans (token classification) read them, and a served sentiment or embedding request never does.
 */
class Encoding implements TextEncoding {
  private computedOffsets: Array<[number, number]> | undefined;

  constructor(
    readonly ids: Int32Array,
    readonly tokenCount: number,
    readonly truncated: boolean,
    private readonly text: string,
    private readonly normalized: string,
    /** Source span of each UTF-16 unit of `normalized`; undefined when unit j came from text[j - 1]. */
    private readonly sources: SourceSpans | undefined,
    /** Per kept token, its first and last UTF-16 unit in `normalized`. */
    private readonly units: Int32Array,
  ) {}

  get offsets(): Array<[number, number]> {
    if (this.computedOffsets) return this.computedOffsets;
    const { text, normalized, sources, units } = this;
    const sourceStart = (i: number) => (sources ? sources.sourceStart[i]! : Math.max(0, i - 1));
    const sourceEnd = (i: number) => (sources ? sources.sourceEnd[i]! : i);
    const offsets = new Array<[number, number]>(units.length / 2);
    for (let t = 0; t < offsets.length; t++) {
      let first = units[2 * t]!;
      const last = units[2 * t + 1]!;
      while (first < last && normalized[first] === WORD_BOUNDARY && (first === 0 || text[sourceStart(first)] !== WORD_BOUNDARY)) first++;
      offsets[t] = [sourceStart(first), Math.max(sourceStart(first), sourceEnd(last))];
    }
    return (this.computedOffsets = offsets);
  }

  toJSON(): TextEncoding {
    return { ids: this.ids, offsets: this.offsets, tokenCount: this.tokenCount, truncated: this.truncated };
  }
}

export class TextTokenizer implements Tokenizer {
  // Scratch space for one encode() at a time (node runs it synchronously), grown as texts need.
  private codePoints = new Int32Array(256);
  private unitIndex = new Int32Array(257);
  private best = new Float64Array(257);
  private bestId = new Int32Array(257);
  private bestStart = new Int32Array(257);
  private tokenId = new Int32Array(256);
  private tokenStart = new Int32Array(256);
  private tokenEnd = new Int32Array(256);

  private constructor(
    private readonly trie: PieceTrie,
    readonly maxTokens: number,
    readonly vocabSize: number,
  ) {}

  /** Loads a tokenizer.json written by buildTokenizerJson (Unigram model). */
  static async load(tokenizerJsonPath: string, maxTokens: number): Promise<TextTokenizer> {
    const json = JSON.parse(await readFile(tokenizerJsonPath, 'utf8')) as {
      model?: { type?: string; unk_id?: number; vocab?: Array<[string, number]> };
    };
    return TextTokenizer.fromJson(json, maxTokens);
  }

  static fromJson(json: { model?: { type?: string; unk_id?: number; vocab?: Array<[string, number]> } }, maxTokens: number): TextTokenizer {
    const model = json.model;
    if (model?.type !== 'Unigram' || !Array.isArray(model.vocab) || model.unk_id !== UNKNOWN_ID) {
      throw new Error('tokenizer.json: expected a Unigram model with unk_id 0');
    }
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`maxTokens must be a positive integer, got ${maxTokens}`);
    const children: Array<Map<number, number> | undefined> = [undefined];
    const pieceId: number[] = [-1];
    const pieceScore: number[] = [0];
    model.vocab.forEach(([piece, score], id) => {
      if (id === UNKNOWN_ID || score <= RESERVED_SCORE_LIMIT) return;
      let node = 0;
      for (const char of piece) {
        const codePoint = char.codePointAt(0)!;
        const edges = (children[node] ??= new Map());
        let next = edges.get(codePoint);
        if (next === undefined) {
          next = children.push(undefined) - 1;
          pieceId.push(-1);
          pieceScore.push(0);
          edges.set(codePoint, next);
        }
        node = next;
      }
      // A later duplicate piece wins, as in the reference's trie.
      pieceId[node] = id;
      pieceScore[node] = score;
    });
    const asciiRow = new Int32Array(children.length).fill(-1);
    let rows = 0;
    children.forEach((edges, node) => {
      if (edges && [...edges.keys()].some((codePoint) => codePoint < 128)) asciiRow[node] = rows++;
    });
    const asciiNext = new Int32Array(rows * 128).fill(-1);
    children.forEach((edges, node) => {
      for (const [codePoint, next] of edges ?? []) if (codePoint < 128) asciiNext[asciiRow[node]! * 128 + codePoint] = next;
    });
    const trie = { children, asciiRow, asciiNext, pieceId: Int32Array.from(pieceId), pieceScore: Float64Array.from(pieceScore) };
    return new TextTokenizer(trie, maxTokens, model.vocab.length);
  }

  encode(text: string): TextEncoding {
    const { normalized, sources } = normalizeWithOffsets(text);
    const length = this.toCodePoints(normalized);
    const tokenCount = this.segment(length);
    const kept = Math.min(tokenCount, this.maxTokens);
    const ids = new Int32Array(kept);
    const units = new Int32Array(2 * kept);
    for (let t = 0; t < kept; t++) {
      ids[t] = this.tokenId[t]!;
      units[2 * t] = this.unitIndex[this.tokenStart[t]!]!;
      units[2 * t + 1] = this.unitIndex[this.tokenEnd[t]!]! - 1;
    }
    return new Encoding(ids, tokenCount, tokenCount > this.maxTokens, text, normalized, sources, units);
  }

  encodeBatch(texts: readonly string[]): TextEncoding[] {
    return texts.map((t) => this.encode(t));
  }

  /** Fills codePoints and unitIndex (code point index -> UTF-16 index) for `normalized`; returns its code point count. */
  private toCodePoints(normalized: string): number {
    if (this.codePoints.length < normalized.length) this.grow(normalized.length);
    let count = 0;
    for (let i = 0; i < normalized.length; count++) {
      const codePoint = normalized.codePointAt(i)!;
      this.codePoints[count] = codePoint;
      this.unitIndex[count] = i;
      i += codePoint > 0xffff ? 2 : 1;
    }
    this.unitIndex[count] = normalized.length;
    return count;
  }

  private grow(length: number): void {
    const size = Math.max(length, 2 * this.codePoints.length);
    this.codePoints = new Int32Array(size);
    this.unitIndex = new Int32Array(size + 1);
    this.best = new Float64Array(size + 1);
    this.bestId = new Int32Array(size + 1);
    this.bestStart = new Int32Array(size + 1);
    this.tokenId = new Int32Array(size);
    this.tokenStart = new Int32Array(size);
    this.tokenEnd = new Int32Array(size);
  }

  /**
   * The reference's Viterbi (embeddings/lib/tokenizer.ts), including its tie and "0 means unset"
   * rules: relaxing edges from each start in increasing order visits, for every end, the
   * candidates in the same order as the reference's per-end loop over ascending starts.
   * Writes the tokens (id and code point span) to tokenId/tokenStart/tokenEnd; returns their count.
   */
  private segment(n: number): number {
    const { children, asciiRow, asciiNext, pieceId, pieceScore } = this.trie;
    const { codePoints, best, bestId, bestStart } = this;
    best.fill(0, 0, n + 1);
    for (let start = 0; start < n; start++) {
      const base = best[start]!;
      let node = 0;
      let matched = false;
      for (let end = start; end < n; end++) {
        const codePoint = codePoints[end]!;
        let next: number;
        if (codePoint < 128) {
          const row = asciiRow[node]!;
          next = row < 0 ? -1 : asciiNext[row * 128 + codePoint]!;
        } else {
          next = children[node]?.get(codePoint) ?? -1;
        }
        if (next < 0) break;
        node = next;
        const id = pieceId[node]!;
        if (id < 0) continue;
        matched = true;
        const total = pieceScore[node]! + base;
        if (best[end + 1] === 0 || total >= best[end + 1]!) {
          best[end + 1] = total;
          bestId[end + 1] = id;
          bestStart[end + 1] = start;
        }
      }
      // A character that starts no piece is one unknown token (score 0).
      if (!matched && (best[start + 1] === 0 || base >= best[start + 1]!)) {
        best[start + 1] = base;
        bestId[start + 1] = UNKNOWN_ID;
        bestStart[start + 1] = start;
      }
    }
    // Walk back from the end, writing tokens from the back of the arrays; runs of unknown
    // characters become one unknown token.
    const { tokenId, tokenStart, tokenEnd } = this;
    let count = 0;
    for (let end = n; end > 0; end = bestStart[end]!) {
      const id = bestId[end]!;
      if (id === UNKNOWN_ID && count > 0 && tokenId[n - count] === UNKNOWN_ID) {
        tokenStart[n - count] = bestStart[end]!;
        continue;
      }
      count++;
      tokenId[n - count] = id;
      tokenStart[n - count] = bestStart[end]!;
      tokenEnd[n - count] = end;
    }
    tokenId.copyWithin(0, n - count, n);
    tokenStart.copyWithin(0, n - count, n);
    tokenEnd.copyWithin(0, n - count, n);
    return count;
  }
}

/** Where each UTF-16 unit of a normalized text came from: the [start, end) span of the original text. */
interface SourceSpans {
  sourceStart: Int32Array;
  sourceEnd: Int32Array;
}

/**
 * The reference normalization (NFKC; if non-empty, '▁' + text with ' ' -> '▁') and, unless NFKC left the
 * text as it was (then unit j of the result came from text[j - 1]), the source span of every unit.
 */
function normalizeWithOffsets(text: string): { normalized: string; sources?: SourceSpans } {
  // NFKC leaves ASCII unchanged: most texts skip it.
  const whole = ASCII.test(text) ? text : text.normalize('NFKC');
  if (whole.length === 0) return { normalized: '' };
  const normalized = WORD_BOUNDARY + whole.replaceAll(' ', WORD_BOUNDARY);
  if (whole === text) return { normalized };
  // Index 0 is the prepended boundary: an empty span at the start.
  const sourceStart = new Int32Array(whole.length + 1);
  const sourceEnd = new Int32Array(whole.length + 1);
  let at = 1;
  for (const unit of normalizationUnits(text, whole)) {
    for (let i = 0; i < unit.normalized.length; i++, at++) {
      sourceStart[at] = unit.start;
      sourceEnd[at] = unit.end;
    }
  }
  return { normalized, sources: { sourceStart, sourceEnd } };
}

interface NormalizationUnit {
  start: number;
  end: number;
  normalized: string;
}

/**
 * Splits the text into pieces that NFKC-normalize independently: a character with its combining
 * marks, merged with the next piece while normalizing them together differs from normalizing
 * them apart (e.g. Hangul jamo). If the pieces still do not add up to NFKC of the whole text,
 * falls back to one unit (exact ids, coarse offsets).
 */
function normalizationUnits(text: string, whole: string): NormalizationUnit[] {
  const units: NormalizationUnit[] = [];
  for (const match of text.matchAll(/\P{M}\p{M}*|\p{M}+/gsu)) {
    const start = match.index!;
    const end = start + match[0].length;
    const unit = { start, end, normalized: match[0].normalize('NFKC') };
    const previous = units.at(-1);
    if (previous) {
      const joined = text.slice(previous.start, end).normalize('NFKC');
      if (joined !== previous.normalized + unit.normalized) {
        previous.end = end;
        previous.normalized = joined;
        continue;
      }
    }
    units.push(unit);
  }
  const total = units.map((u) => u.normalized).join('');
  return total === whole ? units : [{ start: 0, end: text.length, normalized: whole }];
}
