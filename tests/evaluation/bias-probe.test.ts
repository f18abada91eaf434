// The counterfactual bias probe: pairs that differ only in the person, generated the same every time, and
// the gap / flip / interval computations on a scorer whose answers the test controls.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { biasProbeNames, biasProbeSentences, biasProbeTemplates, generateBiasProbePairs, probeFrames, type ProbePerson } from '../../src/datasets/bias-probe.js';
import { biasProbeFigures, biasProbeMetrics, runBiasProbe, type ProbeAnswer } from '../../src/evaluation/bias-probe.js';

const pairs = generateBiasProbePairs();

test('the two sentences of a pair differ only in the person slot', () => {
  const frames = probeFrames();
  assert.equal(frames.length, 4 * 20 + 3 * 20 + 2, 'emotion templates x 20 words, situation templates x 20 words, 2 neutral');
  assert.equal(pairs.filter((p) => p.dimension === 'gender').length, 30 * frames.length);
  assert.equal(pairs.filter((p) => p.dimension === 'ethnicity').length, 20 * frames.length);
  const forms = (person: ProbePerson) => [...new Set([person.subject, person.object].flatMap((f) => [f, f.charAt(0).toUpperCase() + f.slice(1)]))];
  /** True when a = prefix + a form of pa + suffix and b = the same prefix + a form of pb + the same suffix. */
  const onlyPersonDiffers = (a: string, pa: ProbePerson, b: string, pb: ProbePerson) =>
    forms(pa).some((fa) => {
      for (let at = a.indexOf(fa); at >= 0; at = a.indexOf(fa, at + 1)) {
        const prefix = a.slice(0, at);
        const suffix = a.slice(at + fa.length);
        if (forms(pb).some((fb) => b === prefix + fb + suffix)) return true;
      }
      return false;
    });
  for (const p of pairs) {
    assert.notEqual(p.a.text, p.b.text);
    assert.deepEqual(p.a.frame, p.b.frame);
    assert.ok(onlyPersonDiffers(p.a.text, p.a.person, p.b.text, p.b.person), `${p.a.text} / ${p.b.text}`);
    if (p.dimension === 'gender') {
      assert.deepEqual([p.a.person.gender, p.b.person.gender], ['female', 'male']);
      assert.equal(p.a.person.ethnicity, p.b.person.ethnicity, 'gender pairs hold ethnicity fixed');
    } else {
      assert.deepEqual([p.a.person.ethnicity, p.b.person.ethnicity], ['african-american', 'european-american']);
      assert.equal(p.a.person.gender, p.b.person.gender, 'ethnicity pairs hold gender fixed');
    }
    if (p.a.frame.word) assert.ok(p.a.text.includes(p.a.frame.word));
    assert.match(p.a.text, /^[A-Z]/);
  }
  // Every name of the lists is used, each once per frame and pair it belongs to.
  for (const group of Object.values(biasProbeNames)) for (const name of [...group.female, ...group.male]) assert.ok(pairs.some((p) => p.a.person.subject === name || p.b.person.subject === name), name);
  assert.ok(pairs.some((p) => p.a.text === 'The news made her feel angry.' && p.b.text === 'The news made him feel angry.'), 'pronouns take their object form');
  assert.equal(biasProbeTemplates.filter((t) => t.slot === 'none').length, 2);
});

test('the probe is deterministic: the same pairs in the same order every time', () => {
  const again = generateBiasProbePairs();
  assert.deepEqual(again, pairs);
  const digest = (list: typeof pairs) => createHash('sha256').update(list.map((p) => `${p.dimension}\t${p.a.text}\t${p.b.text}`).join('\n')).digest('hex');
  assert.equal(digest(again), digest(pairs));
  const sentences = biasProbeSentences(pairs);
  assert.equal(sentences.length, 60 * probeFrames().length, '20 gendered phrases and 40 names, each in every frame');
  assert.equal(new Set(sentences).size, sentences.length);
});

/**
 * A scorer the test controls: positive score 0.2 for sentences with a negative emotion, 0.8 with joy, 0.5
 * without an emotion; +0.1 when the person is female, -0.05 when the name is African-American. Label positive above 0.5.
 */
function controlledAnswers(): Map<string, ProbeAnswer> {
  const answers = new Map<string, ProbeAnswer>();
  for (const p of pairs) {
    for (const s of [p.a, p.b]) {
      const base = s.frame.emotion === 'joy' ? 0.8 : s.frame.emotion === 'none' ? 0.5 : 0.2;
      const positive = base + (s.person.gender === 'female' ? 0.1 : 0) - (s.person.ethnicity === 'african-american' ? 0.05 : 0);
      answers.set(s.text, { positive, label: positive > 0.5 ? 'positive' : 'negative' });
    }
  }
  return answers;
}

test('gaps, intervals and label flips on answers with a known bias', async () => {
  const answers = controlledAnswers();
  const figures = biasProbeFigures(pairs, answers);
  const { gender, ethnicity } = figures;
  assert.ok(Math.abs(gender.meanScoreGap - 0.1) < 1e-12, `gender gap ${gender.meanScoreGap}`);
  assert.ok(Math.abs(ethnicity.meanScoreGap + 0.05) < 1e-12, `ethnicity gap ${ethnicity.meanScoreGap}`);
  assert.ok(Math.abs(gender.meanAbsScoreGap - 0.1) < 1e-12);
  // Every pair has the same gap: the interval collapses onto it and the standard error is 0.
  assert.ok(Math.abs(gender.ci95[0] - 0.1) < 1e-12 && Math.abs(gender.ci95[1] - 0.1) < 1e-12);
  assert.ok(gender.standardError < 1e-12);
  // Labels flip only in neutral sentences of gender pairs: female 0.6 or 0.55 (positive) against male 0.5 or 0.45 (negative).
  const frames = probeFrames().length;
  assert.equal(gender.flips, 30 * 2);
  assert.ok(Math.abs(gender.labelFlipShare - 2 / frames) < 1e-12);
  assert.equal(gender.byEmotion.none!.labelFlipShare, 1);
  assert.equal(gender.byEmotion.joy!.labelFlipShare, 0);
  // Ethnicity pairs hold gender fixed: 0.55 vs 0.6 (both positive), 0.45 vs 0.5 (both negative).
  assert.equal(ethnicity.flips, 0);
  assert.deepEqual(ethnicity.groups, ['african-american', 'european-american']);

  const metrics = new Map(biasProbeMetrics(figures).map((m) => [m.metric, m]));
  assert.ok(Math.abs(metrics.get('gender_mean_score_gap')!.value - 0.1) < 1e-12);
  assert.ok(Math.abs(metrics.get('ethnicity_mean_score_gap')!.value + 0.05) < 1e-12);
  assert.equal(metrics.get('gender_label_flip_share')!.value, gender.labelFlipShare);
  assert.equal(metrics.get('ethnicity_label_flip_share')!.samples, 20 * frames);

  // runBiasProbe scores each distinct sentence once, in chunks, and gives the same figures.
  const asked: string[] = [];
  const run = await runBiasProbe(
    async (texts) => {
      asked.push(...texts);
      return texts.map((t) => answers.get(t)!);
    },
    { chunk: 1000 },
  );
  assert.equal(asked.length, new Set(asked).size);
  assert.equal(run.sentences, asked.length);
  assert.deepEqual(run.dimensions, figures);
});

test('the interval widens when the gap depends on who the people are, and contains the mean', () => {
  const answers = controlledAnswers();
  // Every sentence about Imani scores 0.3 higher.
  for (const p of pairs) if (p.people === 'Imani|Jamal') answers.set(p.a.text, { ...answers.get(p.a.text)!, positive: answers.get(p.a.text)!.positive + 0.3 });
  const { gender, ethnicity } = biasProbeFigures(pairs, answers);
  assert.ok(Math.abs(gender.meanScoreGap - (0.1 + 0.3 / 30)) < 1e-12);
  assert.ok(gender.ci95[0] < gender.meanScoreGap && gender.meanScoreGap < gender.ci95[1], `${gender.ci95} around ${gender.meanScoreGap}`);
  assert.ok(gender.standardError > 0);
  assert.equal(gender.largest[0]!.people, 'Imani|Jamal');
  // Imani's changed sentences are also the first sentences of her ethnicity pair with Emily.
  assert.ok(Math.abs(ethnicity.meanScoreGap - (-0.05 + 0.3 / 20)) < 1e-12);
  // Seeded: the same interval twice; another seed, another (close) interval.
  assert.deepEqual(biasProbeFigures(pairs, answers).gender.ci95, gender.ci95);
  assert.notDeepEqual(biasProbeFigures(pairs, answers, { seed: 'other' }).gender.ci95, gender.ci95);
});
