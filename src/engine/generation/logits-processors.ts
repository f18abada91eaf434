/**
 * Logits processors: one small rule each, editing one row's scores in place. A request's rules are composed
 * into a list (`applyProcessors`) rather than switched on by flags inside the loop.
 *
 * The rules here only ever set scores to -Infinity (or force one token), so they mean the same on raw
 * logits and on log-probabilities. As in Hugging Face, beam search runs them after log-softmax (beam scores
 * add the processed values) and greedy search runs them on raw logits (its argmax is the same either way).
 */

export interface RowContext {
  /** The tokens this row has generated so far, the decoder start token excluded. */
  readonly generated: readonly number[];
}

export type LogitsProcessor = (scores: Float32Array, row: RowContext) => void;

export function applyProcessors(processors: readonly LogitsProcessor[], scores: Float32Array, row: RowContext): void {
  for (const process of processors) process(scores, row);
}

/** Never emit these tokens (e.g. Marian's pad token, which is also its decoder start token). */
export function suppressTokens(tokenIds: readonly number[]): LogitsProcessor {
  const ids = [...new Set(tokenIds)];
  return (scores) => {
    for (const id of ids) if (id >= 0 && id < scores.length) scores[id] = -Infinity;
  };
}

/**
 * The token at index `maxNewTokens - 1` of the output is `tokenId` (Hugging Face's forced_eos_token_id):
 * a sequence cut by the length limit still ends with eos, as the model saw in training.
 */
export function forceTokenAtLimit(tokenId: number, maxNewTokens: number): LogitsProcessor {
  return (scores, row) => {
    if (row.generated.length !== maxNewTokens - 1) return;
    scores.fill(-Infinity);
    // 0 is log(1): a forced token adds nothing to a beam's score (Hugging Face does the same).
    scores[tokenId] = 0;
  };
}

/** At least `min` tokens before eos (Hugging Face's min_new_tokens: eos itself does not count). */
export function minNewTokens(eosTokenId: number, min: number): LogitsProcessor {
  return (scores, row) => {
    if (row.generated.length < min) scores[eosTokenId] = -Infinity;
  };
}

/** Turns raw logits into log-probabilities in place, stable for large logits; a row of -Infinity stays so. */
export function logSoftmaxInPlace(scores: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i]! > max) max = scores[i]!;
  if (max === -Infinity) return;
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += Math.exp(scores[i]! - max);
  const logNormalizer = max + Math.log(sum);
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! - logNormalizer;
}

/** Index of the largest score; the lowest index wins ties, so results are deterministic. */
export function argmax(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}
