// Tokenizer kinds by the name a bundle gives (bundle.json `tokenizerKind`): adding a kind is one entry here.
import { TextTokenizer } from '../tokenizer.js';
import { HuggingFaceTokenizer } from './huggingface.js';
import type { Tokenizer } from './tokenizer.js';

export const tokenizerKinds = {
  /** USE-lite's reference lattice over its tokenizer.json (src/engine/tokenizer.ts). */
  'use-lite': (file: string, maxTokens: number): Promise<Tokenizer> => TextTokenizer.load(file, maxTokens),
  /** Any Hugging Face tokenizer.json (WordPiece, byte-level BPE, Unigram), through the `tokenizers` library. */
  huggingface: (file: string, maxTokens: number): Promise<Tokenizer> => HuggingFaceTokenizer.load(file, { maxTokens }),
} satisfies Record<string, (file: string, maxTokens: number) => Promise<Tokenizer>>;

export type TokenizerKind = keyof typeof tokenizerKinds;

export function loadTokenizer(kind: TokenizerKind, file: string, maxTokens: number): Promise<Tokenizer> {
  return tokenizerKinds[kind](file, maxTokens);
}
