/**
 * Builds a Hugging Face `tokenizer.json` (Unigram model) that reproduces the USE-lite reference
 * tokenizer of `@energetic-ai/embeddings` from its vocab.json (8,000 [piece, score] pairs).
 *
 * The reference does: NFKC; if non-empty, prepend '▁' and replace every ' ' (U+0020 only; tabs and
 * newlines stay, and runs of spaces are kept) with '▁'; then a Viterbi search maximising the sum of
 * piece scores over the whole text (no pre-tokenizer split); a character that starts no piece is
 * the unknown id 0, and runs of unknowns are fused into one. That is this tokenizer.json:
 *   normalizer  Sequence[NFKC, Replace(' ' -> '▁'), Prepend('▁')]   (Prepend skips empty text)
 *   model       Unigram over the 8,000 pieces, unk_id 0
 *   decoder     Metaspace('▁')
 * Differences from vocab.json, each preserving the reference's behaviour:
 * - Pieces containing ':' have a null score in vocab.json (a defect of that export); the reference
 *   adds them as `null + x === x`, i.e. score 0, so they are written with score 0 (':30' has +30
 *   and ':00' 0 in the file: kept as they are).
 * - The reserved pieces 1-5 (<s>, </s>, extra_token_id_1..3) are never matched in text by the
 *   reference; a Unigram model matches every piece, and their score 0 would win. They get
 *   RESERVED_SCORE, far below any path of real pieces, so they are never chosen (every character
 *   in them is also a single-character piece). They are not added_tokens either: those would be
 *   split out of the raw text before the model runs.
 * - Not reproducible in a tokenizer.json: see TextTokenizer (src/engine/tokenizer.ts) for the one
 *   reference quirk handled there (texts whose normalized form starts with ':').
 */
export type VocabEntry = [piece: string, score: number | null];

/** Below any real path: the worst single piece scores about -14.5, and no reserved piece is over 16 characters. */
export const RESERVED_SCORE = -1e4;
/** Ids 0..5 are reserved in the USE vocabulary (the reference tokenizer skips them). */
export const RESERVED_PIECES = 6;
export const WORD_BOUNDARY = '\u2581';

export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: unknown[];
  normalizer: unknown;
  pre_tokenizer: null;
  post_processor: null;
  decoder: unknown;
  model: { type: 'Unigram'; unk_id: number; vocab: Array<[string, number]>; byte_fallback: boolean };
}

export function buildTokenizerJson(vocab: readonly VocabEntry[]): TokenizerJson {
  if (vocab.length <= RESERVED_PIECES) throw new Error('vocabulary too small');
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFKC' },
        { type: 'Replace', pattern: { String: ' ' }, content: WORD_BOUNDARY },
        { type: 'Prepend', prepend: WORD_BOUNDARY },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Metaspace', replacement: WORD_BOUNDARY, prepend_scheme: 'always', split: true },
    model: {
      type: 'Unigram',
      unk_id: 0,
      vocab: vocab.map(([piece, score], id) => [piece, id === 0 ? 0 : id < RESERVED_PIECES ? RESERVED_SCORE : (score ?? 0)]),
      byte_fallback: false,
    },
  };
}
