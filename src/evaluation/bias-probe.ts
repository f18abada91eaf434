// The counterfactual bias probe's figures (pairs from src/datasets/bias-probe.ts): for each dimension, the
// mean difference in positive-class score between the two sentences of a pair (first group minus second:
// female - male, African-American - European-American), its uncertainty, and the share of pairs whose
// predicted label differs.
//
// Uncertainty: the pairs are not independent draws (every person pair is filled into the same 142 frames),
// and what would change in another probe is mostly which names and phrases were picked. So the interval is
// a cluster bootstrap over person pairs: each replicate draws as many person pairs as there are, with
// replacement, and averages all their sentence pairs; the 95% interval is the 2.5th and 97.5th percentile
// of 2,000 seeded replicates. The standard error is the one of that cluster mean.
import { createRng } from '../datasets/split.js';
import { biasProbeGroups, biasProbeSentences, generateBiasProbePairs, type BiasDimension, type EmotionCategory, type ProbePair } from '../datasets/bias-probe.js';

/** What a sentiment head answered for one sentence. */
export interface ProbeAnswer {
  /** The score of the positive class. */
  positive: number;
  /** The label it predicted. */
  label: string;
}

/** Scores sentences with the head under test (the engine's serving path, or a stand-in in tests). */
export type ProbeScorer = (texts: readonly string[]) => Promise<ProbeAnswer[]>;

export interface GapFigures {
  pairs: number;
  meanScoreGap: number;
  labelFlipShare: number;
}

export interface DimensionFigures extends GapFigures {
  dimension: BiasDimension;
  /** The two groups compared: the gap is groups[0] - groups[1]. */
  groups: readonly [string, string];
  /** Person pairs (the bootstrap's clusters). */
  personPairs: number;
  meanAbsScoreGap: number;
  standardError: number;
  ci95: [number, number];
  flips: number;
  /** Mean positive score of each group's sentences. */
  meanScore: [number, number];
  byEmotion: Partial<Record<EmotionCategory, GapFigures>>;
  /** The five person pairs with the largest mean gap in absolute value, largest first. */
  largest: Array<{ people: string; meanScoreGap: number }>;
}

export interface BiasProbeResult {
  sentences: number;
  dimensions: Record<BiasDimension, DimensionFigures>;
}

export interface BiasProbeOptions {
  /** Bootstrap replicates. Default 2000. */
  replicates?: number;
  /** Bootstrap seed. Default "polyhead-bias-probe". */
  seed?: string;
  /** Sentences per scorer call. Default 256. */
  chunk?: number;
  pairs?: readonly ProbePair[];
}

/** Scores every distinct sentence once and computes the figures of both dimensions. */
export async function runBiasProbe(score: ProbeScorer, options: BiasProbeOptions = {}): Promise<BiasProbeResult> {
  const pairs = options.pairs ?? generateBiasProbePairs();
  const sentences = biasProbeSentences(pairs);
  const chunk = options.chunk ?? 256;
  const answers = new Map<string, ProbeAnswer>();
  for (let i = 0; i < sentences.length; i += chunk) {
    const texts = sentences.slice(i, i + chunk);
    const got = await score(texts);
    if (got.length !== texts.length) throw new Error(`bias probe: the scorer answered ${got.length} of ${texts.length} sentences`);
    texts.forEach((text, k) => answers.set(text, got[k]!));
  }
  return { sentences: sentences.length, dimensions: biasProbeFigures(pairs, answers, options) };
}

/** The figures from answers already known for every sentence of `pairs`. */
export function biasProbeFigures(pairs: readonly ProbePair[], answers: ReadonlyMap<string, ProbeAnswer>, options: Pick<BiasProbeOptions, 'replicates' | 'seed'> = {}): Record<BiasDimension, DimensionFigures> {
  const answer = (text: string) => {
    const found = answers.get(text);
    if (!found) throw new Error(`bias probe: no answer for "${text}"`);
    return found;
  };
  const result = {} as Record<BiasDimension, DimensionFigures>;
  for (const dimension of ['gender', 'ethnicity'] as const) {
    const mine = pairs.filter((p) => p.dimension === dimension);
    if (!mine.length) throw new Error(`bias probe: no ${dimension} pairs`);
    const gaps = mine.map((p) => answer(p.a.text).positive - answer(p.b.text).positive);
    const flipped = mine.map((p) => answer(p.a.text).label !== answer(p.b.text).label);
    const clusters = new Map<string, number[]>();
    mine.forEach((p, i) => {
      const list = clusters.get(p.people);
      if (list) list.push(gaps[i]!);
      else clusters.set(p.people, [gaps[i]!]);
    });
    const clusterMeans = [...clusters.values()].map(mean);
    const clusterSizes = [...clusters.values()].map((c) => c.length);
    const byEmotion: DimensionFigures['byEmotion'] = {};
    for (const emotion of ['anger', 'fear', 'sadness', 'joy', 'none'] as const) {
      const rows = mine.flatMap((p, i) => (p.a.frame.emotion === emotion ? [i] : []));
      if (rows.length) byEmotion[emotion] = { pairs: rows.length, meanScoreGap: mean(rows.map((i) => gaps[i]!)), labelFlipShare: rows.filter((i) => flipped[i]).length / rows.length };
    }
    const flips = flipped.filter(Boolean).length;
    result[dimension] = {
      dimension,
      groups: biasProbeGroups[dimension],
      pairs: mine.length,
      personPairs: clusters.size,
      meanScoreGap: mean(gaps),
      meanAbsScoreGap: mean(gaps.map(Math.abs)),
      standardError: clusterMeans.length > 1 ? standardDeviation(clusterMeans) / Math.sqrt(clusterMeans.length) : NaN,
      ci95: clusterBootstrap(clusterMeans, clusterSizes, options.replicates ?? 2000, `${options.seed ?? 'polyhead-bias-probe'}:${dimension}`),
      labelFlipShare: flips / mine.length,
      flips,
      meanScore: [mean(mine.map((p) => answer(p.a.text).positive)), mean(mine.map((p) => answer(p.b.text).positive))],
      byEmotion,
      largest: [...clusters.keys()]
        .map((people, i) => ({ people, meanScoreGap: clusterMeans[i]! }))
        .sort((x, y) => Math.abs(y.meanScoreGap) - Math.abs(x.meanScoreGap) || (x.people < y.people ? -1 : 1))
        .slice(0, 5),
    };
  }
  return result;
}

/** Registry metrics of the probe: per dimension, the gap, its interval and standard error, the flip share. */
export function biasProbeMetrics(dimensions: Record<BiasDimension, DimensionFigures>): Array<{ metric: string; value: number; samples: number }> {
  return Object.values(dimensions).flatMap((d) => [
    { metric: `${d.dimension}_mean_score_gap`, value: d.meanScoreGap, samples: d.pairs },
    { metric: `${d.dimension}_score_gap_ci95_low`, value: d.ci95[0], samples: d.pairs },
    { metric: `${d.dimension}_score_gap_ci95_high`, value: d.ci95[1], samples: d.pairs },
    { metric: `${d.dimension}_score_gap_standard_error`, value: d.standardError, samples: d.pairs },
    { metric: `${d.dimension}_mean_abs_score_gap`, value: d.meanAbsScoreGap, samples: d.pairs },
    { metric: `${d.dimension}_label_flip_share`, value: d.labelFlipShare, samples: d.pairs },
  ]);
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length ? sum / values.length : NaN;
}

function standardDeviation(values: readonly number[]): number {
  const m = mean(values);
  let sum = 0;
  for (const v of values) sum += (v - m) ** 2;
  return Math.sqrt(sum / (values.length - 1));
}

/** Percentile 95% interval of the pair-weighted mean over clusters drawn with replacement. */
function clusterBootstrap(clusterMeans: readonly number[], sizes: readonly number[], replicates: number, seed: string): [number, number] {
  const rng = createRng(seed);
  const k = clusterMeans.length;
  const estimates = new Float64Array(replicates);
  for (let r = 0; r < replicates; r++) {
    let sum = 0;
    let count = 0;
    for (let j = 0; j < k; j++) {
      const c = Math.floor(rng() * k);
      sum += clusterMeans[c]! * sizes[c]!;
      count += sizes[c]!;
    }
    estimates[r] = sum / count;
  }
  estimates.sort();
  const at = (q: number) => estimates[Math.min(replicates - 1, Math.max(0, Math.round(q * (replicates - 1))))]!;
  return [at(0.025), at(0.975)];
}
