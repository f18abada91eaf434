// The one interface every tokenizer kind implements (USE-lite's reference lattice, Hugging Face tokenizer.json
// files through the `tokenizers` library): ids and character offsets into the original text.

export interface TextEncoding {
  /** Token ids, special tokens included, at most maxTokens of them. */
  ids: Int32Array;
  /** Token type (segment) ids, when the tokenizer's post-processor assigns them (BERT); else absent. */
  typeIds?: Int32Array;
  /** 1 for a special token the post-processor added ([CLS], [SEP], <s>, </s>), else 0; absent when there are none. */
  special?: Uint8Array;
  /**
   * Per token, [start, end) as JavaScript string (UTF-16) offsets into the original text, end exclusive:
   * `text.slice(start, end)` is the text the token stands for. Special tokens get [0, 0].
   */
  offsets: Array<[number, number]>;
  /** Number of tokens before truncation (special tokens included). */
  tokenCount: number;
  /** True when tokenCount > maxTokens and the encoding was cut to maxTokens. */
  truncated: boolean;
}

export interface Tokenizer {
  /** The most tokens an encoding holds (special tokens included). */
  readonly maxTokens: number;
  /** Encodes texts; one encoding per text, in order (synchronously where the kind can: USE-lite's). */
  encodeBatch(texts: readonly string[]): TextEncoding[] | Promise<TextEncoding[]>;
}
