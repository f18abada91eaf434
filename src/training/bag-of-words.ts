// The bag-of-words baseline of the transfer-learning curve: TF-IDF of word unigrams and bigrams, vocabulary
// built from the training sentences only, rows L2-normalised; the classifier on top is the same trainer
// (a linear head = multinomial logistic regression).

export interface BagOfWordsOptions {
  /** Keep n-grams seen in at least this many training sentences (default 1). */
  minDocumentFrequency?: number;
  /** Largest n-gram (default 2). */
  maxN?: number;
  /** At most this many features, the most frequent first (default 20,000). */
  maxFeatures?: number;
}

export interface BagOfWords {
  vocabulary: Map<string, number>;
  idf: Float32Array;
  transform(text: string): Float32Array;
}

/** Lower-cased word and punctuation tokens. */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?|[^\s\p{L}\p{N}]/gu) ?? [];
}

function ngrams(text: string, maxN: number): string[] {
  const w = words(text);
  const out: string[] = [];
  for (let n = 1; n <= maxN; n++) for (let i = 0; i + n <= w.length; i++) out.push(w.slice(i, i + n).join(' '));
  return out;
}

export function fitBagOfWords(texts: readonly string[], options: BagOfWordsOptions = {}): BagOfWords {
  const maxN = options.maxN ?? 2;
  const minDf = options.minDocumentFrequency ?? 1;
  const df = new Map<string, number>();
  for (const text of texts) for (const gram of new Set(ngrams(text, maxN))) df.set(gram, (df.get(gram) ?? 0) + 1);
  // Most frequent first, ties in code-unit order: deterministic.
  const kept = [...df.entries()]
    .filter(([, count]) => count >= minDf)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, options.maxFeatures ?? 20000);
  const vocabulary = new Map(kept.map(([gram], i) => [gram, i]));
  const idf = Float32Array.from(kept, ([, count]) => Math.log((1 + texts.length) / (1 + count)) + 1);
  return {
    vocabulary,
    idf,
    transform(text: string): Float32Array {
      const v = new Float32Array(vocabulary.size);
      for (const gram of ngrams(text, maxN)) {
        const i = vocabulary.get(gram);
        if (i !== undefined) v[i]! += idf[i]!;
      }
      let norm = 0;
      for (const x of v) norm += x * x;
      if (norm > 0) {
        const scale = 1 / Math.sqrt(norm);
        for (let i = 0; i < v.length; i++) v[i]! *= scale;
      }
      return v;
    },
  };
}
