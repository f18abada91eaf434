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

export interface TextEncoding {
  /** Token ids, at most maxTokens of them. */
  ids: Int32Array;
  /**
   * Per token, [start, end) as JavaScript string offsets into the original text. The leading word
   * boundary (the space a '▁' stands for) is not included: `text.slice(start, end)` is the piece's
   * own text. A token inside one NFKC unit (e.g. 'f' and 'i' from 'ﬁ') gets the whole unit's span;
   * a lone '▁' token gets its space(s), or [0, 0] for the '▁' prepended at the start.
   */
  offsets: Array<[number, number]>;
  /** Number of tokens before truncation. */
  tokenCount: number;
  /** True when tokenCount > maxTokens and ids/offsets were cut to maxTokens. */
  truncated: boolean;
}

interface TrieNode {
  children: Map<string, TrieNode>;
  id: number;
  score: number;
}

const WORD_BOUNDARY = '\u2581';
const UNKNOWN_ID = 0;
/** Pieces scored at or below this are reserved (<s>, </s>, ...): the reference never matches them in text. */
const RESERVED_SCORE_LIMIT = -1000;

export class TextTokenizer {
  private constructor(
    private readonly root: TrieNode,
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
    const root: TrieNode = { children: new Map(), id: -1, score: 0 };
    model.vocab.forEach(([piece, score], id) => {
      if (id === UNKNOWN_ID || score <= RESERVED_SCORE_LIMIT) return;
      let node = root;
      for (const char of piece) {
        let next = node.children.get(char);
        if (!next) node.children.set(char, (next = { children: new Map(), id: -1, score: 0 }));
        node = next;
      }
      // A later duplicate piece wins, as in the reference's trie.
      node.id = id;
      node.score = score;
    });
    return new TextTokenizer(root, maxTokens, model.vocab.length);
  }

  encode(text: string): TextEncoding {
    const { normalized, sourceStart, sourceEnd } = normalizeWithOffsets(text);
    const chars = Array.from(normalized);
    const tokens = this.segment(chars);
    const tokenCount = tokens.length;
    const kept = tokens.slice(0, this.maxTokens);
    // Code point index -> UTF-16 index in `normalized`.
    const unitIndex = new Int32Array(chars.length + 1);
    for (let i = 0; i < chars.length; i++) unitIndex[i + 1] = unitIndex[i]! + chars[i]!.length;
    const offsets = kept.map(({ start, end }): [number, number] => {
      let first = unitIndex[start]!;
      const last = unitIndex[end]! - 1;
      while (first < last && normalized[first] === WORD_BOUNDARY && isBoundaryFromSpace(text, sourceStart, first)) first++;
      return [sourceStart[first]!, Math.max(sourceStart[first]!, sourceEnd[last]!)];
    });
    return {
      ids: Int32Array.from(kept, (t) => t.id),
      offsets,
      tokenCount,
      truncated: tokenCount > this.maxTokens,
    };
  }

  encodeBatch(texts: readonly string[]): TextEncoding[] {
    return texts.map((t) => this.encode(t));
  }

  /**
   * The reference's Viterbi (embeddings/lib/tokenizer.ts), including its tie and "0 means unset"
   * rules: relaxing edges from each start in increasing order visits, for every end, the
   * candidates in the same order as the reference's per-end loop over ascending starts.
   */
  private segment(chars: string[]): Array<{ id: number; start: number; end: number }> {
    const n = chars.length;
    const best = new Float64Array(n + 1);
    const bestId = new Int32Array(n + 1);
    const bestStart = new Int32Array(n + 1);
    for (let start = 0; start < n; start++) {
      let node: TrieNode | undefined = this.root;
      let matched = false;
      for (let end = start; end < n && node; end++) {
        node = node.children.get(chars[end]!);
        if (node && node.id >= 0) {
          matched = true;
          relax(end + 1, node.id, node.score);
        }
      }
      // A character that starts no piece is one unknown token (score 0).
      if (!matched) relax(start + 1, UNKNOWN_ID, 0);

      function relax(end: number, id: number, score: number): void {
        const total = score + best[start]!;
        if (best[end] === 0 || total >= best[end]!) {
          best[end] = total;
          bestId[end] = id;
          bestStart[end] = start;
        }
      }
    }
    const reversed: Array<{ id: number; start: number; end: number }> = [];
    for (let end = n; end > 0; end = bestStart[end]!) {
      const id = bestId[end]!;
      const previous = reversed.at(-1);
      // Runs of unknown characters become one unknown token.
      if (id === UNKNOWN_ID && previous?.id === UNKNOWN_ID) previous.start = bestStart[end]!;
      else reversed.push({ id, start: bestStart[end]!, end });
    }
    return reversed.reverse();
  }
}

/** True when the '▁' at normalized index `index` stands for a space (or the prepended boundary). */
function isBoundaryFromSpace(text: string, sourceStart: Int32Array, index: number): boolean {
  return index === 0 || text[sourceStart[index]!] !== WORD_BOUNDARY;
}

/**
 * The reference normalization (NFKC; if non-empty, '▁' + text with ' ' -> '▁') and, for every
 * UTF-16 unit of the result, the [start, end) span of the original text it came from.
 */
export function normalizeWithOffsets(text: string): { normalized: string; sourceStart: Int32Array; sourceEnd: Int32Array } {
  const whole = text.normalize('NFKC');
  if (whole.length === 0) return { normalized: '', sourceStart: new Int32Array(0), sourceEnd: new Int32Array(0) };
  const sourceStart = new Int32Array(whole.length + 1);
  const sourceEnd = new Int32Array(whole.length + 1);
  // Index 0 is the prepended boundary: an empty span at the start.
  if (whole === text) {
    for (let i = 0; i < text.length; i++) {
      sourceStart[i + 1] = i;
      sourceEnd[i + 1] = i + 1;
    }
  } else {
    let at = 1;
    for (const unit of normalizationUnits(text, whole)) {
      for (let i = 0; i < unit.normalized.length; i++, at++) {
        sourceStart[at] = unit.start;
        sourceEnd[at] = unit.end;
      }
    }
  }
  return { normalized: WORD_BOUNDARY + whole.replaceAll(' ', WORD_BOUNDARY), sourceStart, sourceEnd };
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
