// Domain adaptation in a fine-tuning run (src/training/fine-tune/adaptation.ts): which texts get pseudo-labels, the
// seeded split of the target text, the project's target-domain text against the test set it must not copy, and
// whole runs on a small imported BERT-family encoder: the target distillation and self-training each move the
// backbone, the same seed gives the same weights, pseudo-labels start after the first epoch and follow the head's
// confident predictions.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { readJsonl } from '../../../src/datasets/jsonl.js';
import { packageRoot } from '../../../src/paths.js';
import { planHuggingFaceImport, writeBundle } from '../../../src/import/huggingface/import-hf.js';
import { selectPseudoLabels, splitAdaptationTexts, type AdaptationTask } from '../../../src/training/fine-tune/adaptation.js';
import { fineTuneBackbone, type FineTuneHyperparameters } from '../../../src/training/fine-tune/fine-tune.js';
import { TrainableEncoder } from '../../../src/training/fine-tune/trainable-encoder.js';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { writeHfFixture } from '../../helpers/hf-fixtures.js';

describe('selectPseudoLabels', () => {
  // Rows of [p(negative), p(positive)].
  const probabilities = Float32Array.from([0.95, 0.05, 0.6, 0.4, 0.02, 0.98, 0.5, 0.5, 0.08, 0.92, 0.01, 0.99, 0.91, 0.09]);

  it('keeps only texts whose top probability reaches the threshold, with that label', () => {
    const s = selectPseudoLabels(probabilities, 2, { threshold: 0.9, balance: false });
    assert.deepEqual(s.indices, [0, 2, 4, 5, 6]);
    assert.deepEqual([...s.labels], [0, 1, 1, 1, 0]);
    assert.equal(s.confident, 5);
    assert.deepEqual(s.kept, [2, 3]);
  });

  it('balances the labels by keeping the most confident of the larger one', () => {
    const s = selectPseudoLabels(probabilities, 2, { threshold: 0.9 });
    // Positives 5 (0.99), 2 (0.98), 4 (0.92): the two most confident stay.
    assert.deepEqual(s.indices, [0, 2, 5, 6]);
    assert.deepEqual([...s.labels], [0, 1, 1, 0]);
    assert.deepEqual(s.kept, [2, 2]);
  });

  it('keeps nothing when one label is never predicted confidently, and refuses a threshold outside (0, 1]', () => {
    const s = selectPseudoLabels(Float32Array.from([0.05, 0.95, 0.4, 0.6]), 2, { threshold: 0.9 });
    assert.equal(s.confident, 1);
    assert.deepEqual(s.indices, []);
    assert.throws(() => selectPseudoLabels(probabilities, 2, { threshold: 0 }), /threshold/);
    assert.throws(() => selectPseudoLabels(probabilities, 2, { threshold: 1.5 }), /threshold/);
  });
});

describe('splitAdaptationTexts', () => {
  it('holds out a seeded tenth, disjoint from the rest, the same for the same seed', () => {
    const texts = Array.from({ length: 50 }, (_, i) => `review number ${i}`);
    const a = splitAdaptationTexts({ texts }, 'seed-a');
    const b = splitAdaptationTexts({ texts }, 'seed-a');
    const c = splitAdaptationTexts({ texts }, 'seed-b');
    assert.deepEqual(a, b);
    assert.equal(a.validation.length, 5);
    assert.equal(a.train.length, 45);
    assert.equal(a.train.filter((t) => a.validation.includes(t)).length, 0);
    assert.notDeepEqual(a.validation, c.validation);
    assert.deepEqual(splitAdaptationTexts({ texts, validation: ['held'] }, 'seed-a'), { train: texts, validation: ['held'] });
  });
});

describe('data/domain-unlabelled.jsonl', () => {
  it('is unlabelled target text that shares no sentence with the out-of-domain test set, nor most of its words', async () => {
    const words = (t: string) => new Set(t.toLowerCase().match(/[a-z0-9']+/g) ?? []);
    const adaptation = await readJsonl<Record<string, unknown>>(join(packageRoot, 'data', 'domain-unlabelled.jsonl'));
    const ood = await readJsonl<{ text: string }>(join(packageRoot, 'data', 'sentiment-ood.jsonl'));
    assert.ok(adaptation.length >= 300 && adaptation.length <= 600, `${adaptation.length} sentences`);
    assert.ok(adaptation.every((e) => Object.keys(e).join() === 'text' && typeof e.text === 'string'), 'texts only, no labels');
    const key = (t: string) => [...words(t)].join(' ');
    assert.equal(new Set(adaptation.map((e) => key(e.text as string))).size, adaptation.length, 'no duplicates');
    let max = 0;
    for (const a of adaptation) {
      const wa = words(a.text as string);
      for (const o of ood) {
        const wo = words(o.text);
        const shared = [...wa].filter((w) => wo.has(w)).length;
        max = Math.max(max, shared / (wa.size + wo.size - shared));
      }
    }
    // Measured 0.40 (docs: data/README.md); a copied or lightly paraphrased test sentence would be far above 0.5.
    assert.ok(max <= 0.5, `largest word-set Jaccard overlap with a test sentence: ${max.toFixed(3)}`);
  });
});

/** A minilm-st fixture (BERT family, mean pooling) as a bundle folder, as fine-tune.test.ts makes it. */
async function hfBundle(): Promise<string> {
  const folder = tempDir('polyhead-adapt-hf-');
  await writeHfFixture('minilm-st', folder);
  const plan = await planHuggingFaceImport(folder, { name: 'adapt-fixture' });
  const dir = tempDir('polyhead-adapt-bundle-');
  await writeBundle(plan.root, plan.manifest, plan.files, dir);
  return dir;
}

const positive = ['good', 'great', 'wonderful', 'excellent', 'lovely', 'fine', 'happy', 'nice'];
const negative = ['bad', 'awful', 'terrible', 'poor', 'sad', 'horrible', 'ugly', 'dreadful'];
const sourceThings = ['film', 'show', 'song', 'book', 'play'];
const targetThings = ['soup', 'hotel', 'kettle', 'courier', 'laptop', 'bakery'];
const source = (offset: number, count: number) =>
  Array.from({ length: count }, (_, i) => {
    const k = i + offset;
    const good = k % 2 === 0;
    return { text: `the ${sourceThings[k % sourceThings.length]} was ${(good ? positive : negative)[(k >> 1) % 8]}`, label: good ? 'positive' : 'negative' };
  });
/** Unlabelled target text, with the polarity each text was written with (the test's yardstick, never given to the run). */
const target = Array.from({ length: 48 }, (_, k) => {
  const good = k % 2 === 0;
  return { text: `our ${targetThings[k % targetThings.length]} was ${(good ? positive : negative)[(k >> 1) % 8]} today`, label: good ? 'positive' : 'negative' };
});

const quick: Partial<FineTuneHyperparameters> = {
  epochs: 3,
  batchesPerEpoch: { sentiment: 6, adaptation: 2, selfTraining: 2 },
  batchSize: 8,
  baseLr: 1e-3,
  patience: 3,
  minCosine: 0,
  seed: 'adapt-test',
};

describe('fineTuneBackbone with adaptation', () => {
  let dir: string;
  before(async () => {
    dir = await hfBundle();
  });

  const run = async (adaptation?: AdaptationTask) => {
    const encoder = await TrainableEncoder.load(dir);
    try {
      return await fineTuneBackbone({
        encoder,
        tasks: { sentiment: { labels: ['negative', 'positive'], train: source(0, 64), validation: source(1000, 16) }, ...(adaptation ? { adaptation } : {}) },
        hyperparameters: quick,
      });
    } finally {
      await encoder.release();
    }
  };

  it('self-training moves the backbone, deterministically; pseudo-labels start at epoch 2 and follow the head', async () => {
    const selfTraining: AdaptationTask = { texts: target.map((t) => t.text), distillationWeight: 0, selfTraining: { threshold: 0.7, weight: 1 } };
    const plain = await run();
    const first = await run(selfTraining);
    const second = await run(selfTraining);
    assert.deepEqual(Buffer.from(first.model), Buffer.from(second.model), 'same seed, same weights');
    assert.notDeepEqual(Buffer.from(first.model), Buffer.from(plain.model), 'self-training changed nothing');
    const rounds = first.selfTraining!.rounds;
    assert.deepEqual(rounds.map((r) => r.epoch), [1, 2, 3]);
    assert.deepEqual(rounds[0]!.kept, [0, 0], 'no pseudo-labels before the head has trained');
    assert.ok(rounds.every((r) => r.kept[0] === r.kept[1]), `balanced pseudo-labels: ${JSON.stringify(rounds)}`);
    assert.ok(rounds.slice(1).some((r) => r.kept[0]! > 0), `pseudo-labels after epoch 1: ${JSON.stringify(rounds)}`);
    // One pass over the pseudo-labels per epoch, at most the configured batches.
    const expectedSteps = 3 * 6 + rounds.reduce((n, r) => n + Math.min(2, Math.ceil((r.kept[0]! + r.kept[1]!) / 8)), 0);
    assert.equal(first.timing.steps, expectedSteps);
    const truth = new Map(target.map((t) => [t.text, t.label]));
    const last = first.selfTraining!.last;
    assert.ok(last.length > 0 && last.every((p) => truth.has(p.text)), 'pseudo-labels are of target texts (the 90% not held out)');
    const agree = last.filter((p) => truth.get(p.text) === p.label).length / last.length;
    // The fixture is a tiny random-weight encoder trained for 3 short epochs: better than chance is what it shows.
    assert.ok(agree > 0.5, `the confident pseudo-labels agree with the texts' polarity ${agree.toFixed(2)} of the time`);
    assert.ok(!first.curves.some((p) => p.task === 'selfTraining'), 'pseudo-labels are not scored as validation');
  });

  it('the distillation term on target text moves the backbone and is scored as a cosine, not as a labelled metric', async () => {
    const plain = await run();
    const adapted = await run({ texts: target.map((t) => t.text) });
    assert.notDeepEqual(Buffer.from(adapted.model), Buffer.from(plain.model));
    const cosines = adapted.curves.filter((p) => p.task === 'adaptation');
    assert.deepEqual(cosines.map((p) => p.epoch), [0, 1, 2, 3]);
    assert.ok(cosines.every((p) => p.metric === 'mean_cosine_to_pretrained' && p.value <= 1 + 1e-6));
    assert.equal(adapted.timing.steps, adapted.epochsRun * (6 + 2));
    assert.equal(adapted.selfTraining, undefined);
  });

  it('refuses self-training without the sentiment task and a weight that is not positive', async () => {
    const encoder = await TrainableEncoder.load(dir);
    try {
      const texts = target.map((t) => t.text);
      await assert.rejects(fineTuneBackbone({ encoder, tasks: { distillation: { train: texts, validation: texts }, adaptation: { texts, selfTraining: { threshold: 0.9, weight: 0.5 } } }, hyperparameters: quick }), /needs the sentiment task/);
      await assert.rejects(fineTuneBackbone({ encoder, tasks: { sentiment: { labels: ['negative', 'positive'], train: source(0, 16), validation: source(100, 4) }, adaptation: { texts, selfTraining: { threshold: 0.9, weight: 0 } } }, hyperparameters: quick }), /weight must be > 0/);
    } finally {
      await encoder.release();
    }
  });
});
