// Paraphrase ranking (data/paraphrases.jsonl): for each group, the query's paraphrase and its distractors are
// ranked by cosine to the query, as the `similarity` query ranks candidates, and the paraphrase's rank gives the
// reciprocal rank and top-1. Also the drift between two embeddings of the same texts (cosine per text).
//
// Ties are ranked against the paraphrase: a distractor with exactly the paraphrase's cosine counts as ranked above
// it, so an embedding that maps everything to one vector scores 1 / (distractors + 1), never 1.
import { createRng } from '../datasets/split.js';

/** One group of data/paraphrases.jsonl. */
export interface ParaphraseGroup {
  query: string;
  /** Says what the query says, in other words. */
  paraphrase: string;
  /** Sentences on related topics that do not say what the query says (some share many of its words). */
  distractors: string[];
  topic?: string;
}

export interface ParaphraseRanking {
  groups: number;
  /** Mean over groups of 1 / rank of the paraphrase. */
  meanReciprocalRank: number;
  /** Share of groups whose paraphrase ranks first. */
  top1: number;
  /** The paraphrase's 1-based rank in each group, in the groups' order. */
  ranks: number[];
}

/** The fewest distractors a group may have. */
export const minDistractors = 4;

/** Cosine of two vectors of the same length (0 when either is zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine: lengths ${a.length} and ${b.length}`);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa && bb ? ab / Math.sqrt(aa * bb) : 0;
}

/** 1-based rank of `scores[target]` among `scores`, highest first; ties count against the target. */
export function rankOf(scores: readonly number[], target: number): number {
  const mine = scores[target];
  if (mine === undefined) throw new Error(`rankOf: no score at ${target}`);
  if (Number.isNaN(mine)) return scores.length;
  let above = 0;
  scores.forEach((s, i) => {
    if (i !== target && !(s < mine)) above++;
  });
  return above + 1;
}

/** MRR and top-1 from ranks. */
export function rankingFigures(ranks: readonly number[]): ParaphraseRanking {
  if (!ranks.length) throw new Error('rankingFigures: no groups');
  for (const r of ranks) if (!Number.isInteger(r) || r < 1) throw new Error(`rankingFigures: rank ${r} is not a positive integer`);
  return {
    groups: ranks.length,
    meanReciprocalRank: ranks.reduce((sum, r) => sum + 1 / r, 0) / ranks.length,
    top1: ranks.filter((r) => r === 1).length / ranks.length,
    ranks: [...ranks],
  };
}

/** The texts of the groups, each once, in first-seen order (what to embed). */
export function paraphraseTexts(groups: readonly ParaphraseGroup[]): string[] {
  return [...new Set(groups.flatMap((g) => [g.query, g.paraphrase, ...g.distractors]))];
}

/**
 * Ranks each group's paraphrase among paraphrase + distractors by `score(query, candidate)`; with `cosine` of
 * embeddings that is what `similarity(query, candidates)` answers.
 */
export function rankParaphrases<V>(groups: readonly ParaphraseGroup[], vectorOf: (text: string) => V, score: (query: V, candidate: V) => number): ParaphraseRanking {
  return rankingFigures(
    groups.map((g) => {
      const q = vectorOf(g.query);
      const scores = [g.paraphrase, ...g.distractors].map((c) => score(q, vectorOf(c)));
      return rankOf(scores, 0);
    }),
  );
}

/** Ranking by embedding cosine, given an embedding of every text of the groups. */
export function rankByEmbedding(groups: readonly ParaphraseGroup[], embeddings: ReadonlyMap<string, ArrayLike<number>>): ParaphraseRanking {
  return rankParaphrases(
    groups,
    (text) => {
      const v = embeddings.get(text);
      if (!v) throw new Error(`rankByEmbedding: no embedding of ${JSON.stringify(text)}`);
      return v;
    },
    cosine,
  );
}

/** Lower-cased word set (letters, digits, apostrophes inside words). */
export function wordSet(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[a-z0-9]+(?:'[a-z]+)?/g) ?? []);
}

/** Jaccard index of two word sets. */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let common = 0;
  for (const w of a) if (b.has(w)) common++;
  const union = a.size + b.size - common;
  return union ? common / union : 0;
}

/** The word-overlap baseline: candidates ranked by the Jaccard index of their word sets with the query's. */
export function rankByWordOverlap(groups: readonly ParaphraseGroup[]): ParaphraseRanking {
  return rankParaphrases(groups, wordSet, jaccard);
}

/** Problems of a set of groups: fewer than `minDistractors`, empty or untrimmed text, a sentence used twice in the file. */
export function paraphraseGroupProblems(groups: readonly ParaphraseGroup[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  groups.forEach((g, i) => {
    const where = `group ${i + 1}`;
    if (!Array.isArray(g.distractors)) {
      problems.push(`${where}: no distractors array`);
      return;
    }
    if (g.distractors.length < minDistractors) problems.push(`${where}: ${g.distractors.length} distractors, at least ${minDistractors} wanted`);
    for (const text of [g.query, g.paraphrase, ...g.distractors]) {
      if (typeof text !== 'string' || !text.trim() || text.trim() !== text) {
        problems.push(`${where}: empty, untrimmed or non-string text ${JSON.stringify(text)}`);
        continue;
      }
      const key = normalizedSentence(text);
      const first = seen.get(key);
      if (first !== undefined) problems.push(`${where}: ${JSON.stringify(text)} repeats a sentence of group ${first + 1}`);
      else seen.set(key, i);
    }
  });
  return problems;
}

/** Lower case, letters and digits only: two sentences that differ only in case or punctuation are one. */
export function normalizedSentence(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
}

export interface PairedDifference {
  /** Mean over groups of b's reciprocal rank minus a's. */
  meanDifference: number;
  /** Percentile 95% interval of that mean, bootstrapping groups. */
  ci95: [number, number];
  better: number;
  worse: number;
  same: number;
}

/** How b's ranks differ from a's on the same groups: the MRR difference with a seeded bootstrap over groups. */
export function pairedRankDifference(a: readonly number[], b: readonly number[], replicates = 2000, seed = 'polyhead-paraphrase-ranking'): PairedDifference {
  if (a.length !== b.length || !a.length) throw new Error(`pairedRankDifference: ${a.length} and ${b.length} groups`);
  const diffs = a.map((r, i) => 1 / b[i]! - 1 / r);
  const rng = createRng(seed);
  const estimates = new Float64Array(replicates);
  for (let k = 0; k < replicates; k++) {
    let sum = 0;
    for (let j = 0; j < diffs.length; j++) sum += diffs[Math.floor(rng() * diffs.length)]!;
    estimates[k] = sum / diffs.length;
  }
  estimates.sort();
  const at = (q: number) => estimates[Math.round(q * (replicates - 1))]!;
  return {
    meanDifference: diffs.reduce((s, d) => s + d, 0) / diffs.length,
    ci95: [at(0.025), at(0.975)],
    better: a.filter((r, i) => b[i]! < r).length,
    worse: a.filter((r, i) => b[i]! > r).length,
    same: a.filter((r, i) => b[i]! === r).length,
  };
}

export interface CosineSummary {
  texts: number;
  mean: number;
  /** 5th percentile (linear interpolation between order statistics). */
  p5: number;
  min: number;
}

/** Cosine of each a[i] with b[i], summarised. */
export function cosineSummary(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): CosineSummary {
  if (a.length !== b.length || !a.length) throw new Error(`cosineSummary: ${a.length} and ${b.length} vectors`);
  const values = a.map((v, i) => cosine(v, b[i]!)).sort((x, y) => x - y);
  return { texts: values.length, mean: values.reduce((s, v) => s + v, 0) / values.length, p5: quantile(values, 0.05), min: values[0]! };
}

/** The q-quantile of sorted values, interpolating linearly between order statistics (R's type 7). */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) throw new Error('quantile: no values');
  const at = q * (sorted.length - 1);
  const low = Math.floor(at);
  const high = Math.min(sorted.length - 1, low + 1);
  return sorted[low]! + (at - low) * (sorted[high]! - sorted[low]!);
}
