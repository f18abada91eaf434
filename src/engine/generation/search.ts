import { argmax } from './logits-processors.js';

/**
 * Search strategies: given one step's processed scores for a request's live hypotheses, pick what lives on.
 * A request's live hypotheses are its rows in the running batch; they advance in lockstep (all have the same
 * length), and each new hypothesis names the one it extends so that the generator can hand it that row's
 * cache (keep the slot, or fork it).
 */
export interface Search {
  /** Whether advance() needs log-probabilities (beam scores add them); argmax alone does not. */
  readonly wantsLogProbs: boolean;
  /** Each live hypothesis's generated tokens, one per row, in row order; empty once done. */
  readonly hypotheses: readonly (readonly number[])[];
  readonly done: boolean;
  /**
   * Takes one processed score row per live hypothesis, in `hypotheses` order. Returns, for each new live
   * hypothesis, the index of the hypothesis it extends: the cache it continues.
   */
  advance(scores: readonly Float32Array[]): number[];
  /** Once done: the chosen tokens (eos last if it was emitted) and, for beam search, its length-penalised score. */
  result(): SearchResult;
}

export interface SearchResult {
  tokens: number[];
  score?: number;
}

export interface SearchOptions {
  eosTokenId: number;
  /** Length limit, eos included. */
  maxNewTokens: number;
  /** 1 is greedy search. */
  beams: number;
  /** Finished hypotheses are ranked by sumLogProbs / length^lengthPenalty (length counts eos). */
  lengthPenalty: number;
  /** true: stop once `beams` hypotheses have finished; false: Hugging Face's heuristic (see FinishedHypotheses). */
  earlyStopping: boolean;
}

export function createSearch(options: SearchOptions): Search {
  return options.beams === 1 ? new GreedySearch(options) : new BeamSearch(options);
}

export class GreedySearch implements Search {
  readonly wantsLogProbs = false;
  done = false;
  private readonly tokens: number[] = [];

  constructor(private readonly options: Pick<SearchOptions, 'eosTokenId' | 'maxNewTokens'>) {}

  get hypotheses(): readonly (readonly number[])[] {
    return this.done ? [] : [this.tokens];
  }

  advance(scores: readonly Float32Array[]): number[] {
    const token = argmax(scores[0]!);
    this.tokens.push(token);
    this.done = token === this.options.eosTokenId || this.tokens.length >= this.options.maxNewTokens;
    return this.done ? [] : [0];
  }

  result(): SearchResult {
    return { tokens: [...this.tokens] };
  }
}

interface Beam {
  tokens: number[];
  /** Sum of the processed log-probabilities of `tokens`. */
  sum: number;
}

interface Candidate {
  parent: number;
  token: number;
  sum: number;
}

/**
 * Beam search as Hugging Face's BeamSearchScorer does it, for one request: each step ranks the top
 * 2 x beams (hypothesis, token) extensions by summed log-probability; an eos extension among the top `beams`
 * becomes a finished hypothesis, the best non-eos extensions (at most `beams`) live on. It starts from one
 * live hypothesis rather than `beams` copies of the start token, so the first step costs one row, and a
 * tiny vocabulary may keep fewer than `beams` alive. Extensions scoring -Infinity (suppressed tokens) never
 * live on. At the length limit the live hypotheses join the finished ones, unless the request was done.
 */
export class BeamSearch implements Search {
  readonly wantsLogProbs = true;
  done = false;
  private live: Beam[] = [{ tokens: [], sum: 0 }];
  private readonly finished: FinishedHypotheses;

  constructor(private readonly options: SearchOptions) {
    this.finished = new FinishedHypotheses(options.beams, options.lengthPenalty);
  }

  get hypotheses(): readonly (readonly number[])[] {
    return this.done ? [] : this.live.map((beam) => beam.tokens);
  }

  advance(scores: readonly Float32Array[]): number[] {
    const { beams, eosTokenId, maxNewTokens, earlyStopping } = this.options;
    const length = this.live[0]!.tokens.length + 1;
    const candidates = topCandidates(this.live, scores, 2 * beams);
    const survivors: Candidate[] = [];
    for (let rank = 0; rank < candidates.length && survivors.length < beams; rank++) {
      const candidate = candidates[rank]!;
      if (candidate.token !== eosTokenId) survivors.push(candidate);
      // An eos outside the top `beams` is dropped: a better-ranked extension took its place.
      else if (rank < beams) this.finished.add([...this.live[candidate.parent]!.tokens, eosTokenId], candidate.sum);
    }
    this.live = survivors.map((c) => ({ tokens: [...this.live[c.parent]!.tokens, c.token], sum: c.sum }));

    if (candidates.length > 0 && this.finished.isDone(candidates[0]!.sum, length, earlyStopping)) {
      this.done = true;
    } else if (length >= maxNewTokens || this.live.length === 0) {
      for (const beam of this.live) this.finished.add(beam.tokens, beam.sum);
      this.done = true;
    }
    if (this.done) this.live = [];
    return this.done ? [] : survivors.map((c) => c.parent);
  }

  result(): SearchResult {
    const best = this.finished.best();
    return best ? { tokens: [...best.tokens], score: best.score } : { tokens: [], score: -Infinity };
  }
}

/**
 * The best `capacity` finished hypotheses of one request. Scores are sum / length^lengthPenalty, where
 * length counts the generated tokens, eos included: the number of log-probabilities summed. (For a
 * hypothesis ending in eos that is Hugging Face's length too: its start token plus the tokens before eos.)
 */
export class FinishedHypotheses {
  private readonly kept: Array<{ tokens: number[]; score: number }> = [];

  constructor(
    private readonly capacity: number,
    private readonly lengthPenalty: number,
  ) {}

  get size(): number {
    return this.kept.length;
  }

  add(tokens: number[], sum: number): void {
    const score = sum / tokens.length ** this.lengthPenalty;
    if (this.kept.length < this.capacity) {
      this.kept.push({ tokens, score });
      return;
    }
    const worst = this.worstIndex();
    if (score > this.kept[worst]!.score) this.kept[worst] = { tokens, score };
  }

  /**
   * earlyStopping true: done once `capacity` hypotheses finished. false (Hugging Face's heuristic): also
   * done once the best extension of this step, were it to stop at this length, could not beat the worst kept
   * hypothesis. Not exact when lengthPenalty > 0 (a longer continuation divides by more), as in Hugging Face.
   */
  isDone(bestSum: number, length: number, earlyStopping: boolean): boolean {
    if (this.kept.length < this.capacity) return false;
    if (earlyStopping) return true;
    return this.kept[this.worstIndex()]!.score >= bestSum / length ** this.lengthPenalty;
  }

  /** The highest score; the earliest added wins ties. */
  best(): { tokens: number[]; score: number } | undefined {
    let best: { tokens: number[]; score: number } | undefined;
    for (const hypothesis of this.kept) if (!best || hypothesis.score > best.score) best = hypothesis;
    return best;
  }

  private worstIndex(): number {
    let worst = 0;
    for (let i = 1; i < this.kept.length; i++) if (this.kept[i]!.score < this.kept[worst]!.score) worst = i;
    return worst;
  }
}

/**
 * The `count` best finite extensions over all live beams, best first; ties go to the lower beam, then the
 * lower token. One pass over the scores with a small sorted list, as a vocabulary (~58k for Marian) is far
 * larger than `count`.
 */
function topCandidates(live: readonly Beam[], scores: readonly Float32Array[], count: number): Candidate[] {
  const top: Candidate[] = [];
  live.forEach((beam, parent) => {
    const row = scores[parent]!;
    for (let token = 0; token < row.length; token++) {
      const sum = beam.sum + row[token]!;
      if (!Number.isFinite(sum)) continue;
      // Scanned in (beam, token) order, so an equal sum loses to what is already there.
      if (top.length === count && sum <= top[count - 1]!.sum) continue;
      let at = top.length;
      while (at > 0 && top[at - 1]!.sum < sum) at--;
      top.splice(at, 0, { parent, token, sum });
      if (top.length > count) top.pop();
    }
  });
  return top;
}
