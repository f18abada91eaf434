// Paraphrase ranking: MRR and top-1 on hand-made vectors (cosine, not dot product; ties against the paraphrase), the
// drift summary, the paired difference, and data/paraphrases.jsonl well-formed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readJsonl } from '../../src/datasets/jsonl.js';
import {
  cosine,
  cosineSummary,
  jaccard,
  minDistractors,
  pairedRankDifference,
  paraphraseGroupProblems,
  paraphraseTexts,
  quantile,
  rankByEmbedding,
  rankByWordOverlap,
  rankingFigures,
  rankOf,
  wordSet,
  type ParaphraseGroup,
} from '../../src/evaluation/paraphrase-ranking.js';

const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual}, expected ${expected}`);

test('rankOf: 1-based, highest first, a tie ranks the other candidate above the target', () => {
  assert.equal(rankOf([0.9, 0.1, 0.5], 0), 1);
  assert.equal(rankOf([0.5, 0.9, 0.1], 0), 2);
  assert.equal(rankOf([0.1, 0.9, 0.5], 0), 3);
  assert.equal(rankOf([0.5, 0.5, 0.1], 0), 2);
  assert.equal(rankOf([0.5, 0.5, 0.5], 0), 3);
  assert.equal(rankOf([Number.NaN, 0.1, 0.2], 0), 3);
  assert.throws(() => rankOf([0.1], 1));
});

test('rankingFigures: MRR is the mean of 1 / rank, top-1 the share of rank 1', () => {
  const figures = rankingFigures([1, 2, 4, 1]);
  close(figures.meanReciprocalRank, (1 + 1 / 2 + 1 / 4 + 1) / 4, 'MRR');
  close(figures.top1, 2 / 4, 'top-1');
  assert.equal(figures.groups, 4);
  assert.deepEqual(figures.ranks, [1, 2, 4, 1]);
  assert.throws(() => rankingFigures([]));
  assert.throws(() => rankingFigures([0]));
  assert.throws(() => rankingFigures([1.5]));
});

test('rankByEmbedding ranks by cosine as similarity does, not by dot product', () => {
  const groups: ParaphraseGroup[] = [
    // The distractor is long (large dot product) but points elsewhere: cosine puts the paraphrase first.
    { query: 'q1', paraphrase: 'p1', distractors: ['d1a', 'd1b', 'd1c', 'd1d'] },
    // One distractor is closer in angle than the paraphrase: rank 2.
    { query: 'q2', paraphrase: 'p2', distractors: ['d2a', 'd2b', 'd2c', 'd2d'] },
    // The paraphrase is the farthest: rank 5.
    { query: 'q3', paraphrase: 'p3', distractors: ['d3a', 'd3b', 'd3c', 'd3d'] },
  ];
  const vectors: Record<string, number[]> = {
    q1: [1, 0], p1: [1, 0.1], d1a: [10, 5], d1b: [0, 1], d1c: [-1, 0], d1d: [0, -3],
    q2: [0, 2], p2: [1, 1], d2a: [0.1, 1], d2b: [1, 0], d2c: [-1, -1], d2d: [1, -1],
    q3: [1, 1], p3: [-1, -1], d3a: [1, 0], d3b: [0, 1], d3c: [1, 2], d3d: [2, 1],
  };
  const embeddings = new Map(Object.entries(vectors));
  const dot = (a: number[], b: number[]) => a[0]! * b[0]! + a[1]! * b[1]!;
  assert.ok(dot(vectors.q1!, vectors.d1a!) > dot(vectors.q1!, vectors.p1!), 'the dot product would rank d1a first');
  const figures = rankByEmbedding(groups, embeddings);
  assert.deepEqual(figures.ranks, [1, 2, 5]);
  close(figures.meanReciprocalRank, (1 + 1 / 2 + 1 / 5) / 3, 'MRR');
  close(figures.top1, 1 / 3, 'top-1');
  assert.throws(() => rankByEmbedding(groups, new Map([['q1', [1, 0]]])), /no embedding/);
});

test('an embedding that maps every text to one vector scores 1 / (candidates), not 1', () => {
  const groups: ParaphraseGroup[] = [{ query: 'a', paraphrase: 'b', distractors: ['c', 'd', 'e', 'f'] }];
  const same = new Map(['a', 'b', 'c', 'd', 'e', 'f'].map((t) => [t, [0.3, 0.4]]));
  const figures = rankByEmbedding(groups, same);
  assert.deepEqual(figures.ranks, [5]);
  close(figures.meanReciprocalRank, 1 / 5, 'MRR');
  assert.equal(figures.top1, 0);
});

test('cosine, quantile and the drift summary', () => {
  close(cosine([1, 0], [0, 1]), 0, 'orthogonal');
  close(cosine([1, 2], [2, 4]), 1, 'parallel');
  close(cosine([1, 0], [-3, 0]), -1, 'opposite');
  assert.equal(cosine([0, 0], [1, 0]), 0);
  assert.throws(() => cosine([1], [1, 2]));
  close(quantile([0, 10], 0.05), 0.5, 'interpolated');
  close(quantile([1, 2, 3, 4, 5], 0.5), 3, 'median');
  const a = [[1, 0], [1, 0], [1, 0]];
  const b = [[1, 0], [0, 1], [1, 1]];
  const summary = cosineSummary(a, b);
  assert.equal(summary.texts, 3);
  close(summary.mean, (1 + 0 + Math.SQRT1_2) / 3, 'mean');
  close(summary.min, 0, 'min');
  close(summary.p5, 0.1 * Math.SQRT1_2, 'p5');
});

test('pairedRankDifference: mean change of the reciprocal rank, counts, an interval around it', () => {
  const d = pairedRankDifference([1, 2, 3, 1], [1, 1, 3, 2]);
  close(d.meanDifference, (0 + (1 - 1 / 2) + 0 + (1 / 2 - 1)) / 4, 'mean');
  assert.deepEqual([d.better, d.worse, d.same], [1, 1, 2]);
  assert.ok(d.ci95[0] <= d.meanDifference && d.meanDifference <= d.ci95[1]);
  const unchanged = pairedRankDifference([1, 2, 3], [1, 2, 3]);
  assert.deepEqual(unchanged.ci95, [0, 0]);
  assert.throws(() => pairedRankDifference([1], [1, 2]));
});

test('paraphraseGroupProblems: too few distractors, untrimmed text, a sentence used twice', () => {
  assert.deepEqual(paraphraseGroupProblems([{ query: 'A.', paraphrase: 'B.', distractors: ['C.', 'D.', 'E.', 'F.'] }]), []);
  const problems = paraphraseGroupProblems([
    { query: 'A cat.', paraphrase: 'B.', distractors: ['C.', 'D.', 'E.'] },
    { query: ' G.', paraphrase: 'a CAT', distractors: ['H.', 'I.', 'J.', 'K.'] },
  ]);
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems[0]!, /3 distractors/);
  assert.match(problems[1]!, /untrimmed/);
  assert.match(problems[2]!, /repeats a sentence of group 1/);
});

test('data/paraphrases.jsonl: >= 150 groups, >= 4 distractors each, no sentence twice, word overlap does not solve it', async () => {
  const groups = await readJsonl<ParaphraseGroup>(fileURLToPath(new URL('../../data/paraphrases.jsonl', import.meta.url)));
  assert.ok(groups.length >= 150, `${groups.length} groups`);
  assert.deepEqual(paraphraseGroupProblems(groups), []);
  for (const [i, g] of groups.entries()) {
    assert.ok(g.distractors.length >= minDistractors && g.distractors.length <= 6, `group ${i + 1}: ${g.distractors.length} distractors`);
    assert.equal(typeof g.topic, 'string', `group ${i + 1}: topic`);
  }
  const texts = paraphraseTexts(groups);
  assert.equal(texts.length, groups.reduce((n, g) => n + 2 + g.distractors.length, 0));
  assert.ok(texts.every((t) => /^[\x20-\x7e]+$/.test(t)), 'printable ASCII only');
  // Many topics, not one domain.
  assert.ok(new Set(groups.map((g) => g.topic)).size >= 30);
  // Traps: a distractor that shares more words with the query than the paraphrase does.
  const trapped = groups.filter((g) => {
    const q = wordSet(g.query);
    const own = jaccard(q, wordSet(g.paraphrase));
    return g.distractors.some((d) => jaccard(q, wordSet(d)) > own);
  });
  assert.ok(trapped.length >= 0.3 * groups.length, `${trapped.length} groups with a lexical trap`);
  // Paraphrases that say it in other words.
  const lowOverlap = groups.filter((g) => jaccard(wordSet(g.query), wordSet(g.paraphrase)) < 0.15);
  assert.ok(lowOverlap.length >= 0.3 * groups.length, `${lowOverlap.length} low-overlap paraphrases`);
  assert.ok(rankByWordOverlap(groups).top1 < 0.3, 'the word-overlap baseline ranks too many paraphrases first');
});
