// Fine-tuning the backbone itself (src/training/fine-tune): the schedule and layer-wise rates, the optimizer's row
// updates, the engine's pooling and its backward in TypeScript, and whole runs on a small imported BERT-family
// encoder: the same seed gives the same weights, the tasks learn, the kept weights are the best epoch's.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import * as ort from 'onnxruntime-node';
import { planHuggingFaceImport, writeBundle } from '../../../src/import/huggingface/import-hf.js';
import type { Gradient, Param } from '../../../src/training/autodiff/index.js';
import { fineTuneBackbone, type FineTuneHyperparameters } from '../../../src/training/fine-tune/fine-tune.js';
import { BackboneAdam } from '../../../src/training/fine-tune/optimizer.js';
import { layerFactor, parameterDepth, scheduleFactor } from '../../../src/training/fine-tune/schedule.js';
import { poolTokens, TrainableEncoder } from '../../../src/training/fine-tune/trainable-encoder.js';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { writeHfFixture } from '../../helpers/hf-fixtures.js';

describe('schedule and layer-wise rates', () => {
  it('warms up linearly, then decays linearly', () => {
    const options = { baseLr: 1, totalSteps: 100, warmupFraction: 0.1 };
    assert.equal(scheduleFactor(0, options), 0.1);
    assert.equal(scheduleFactor(9, options), 1);
    assert.ok(Math.abs(scheduleFactor(55, options) - 0.5) < 1e-9);
    assert.ok(scheduleFactor(99, options) > 0 && scheduleFactor(99, options) < 0.05);
  });

  it('finds a parameter’s layer in USE-lite and Hugging Face names; lower layers learn slower', () => {
    assert.equal(parameterDepth('embeddings', 2), 0);
    assert.equal(parameterDepth('layer_0_qkv.weight', 2), 1);
    assert.equal(parameterDepth('layer_1_ffn_out.bias', 2), 2);
    assert.equal(parameterDepth('pooling_dense.weight', 2), 3);
    assert.equal(parameterDepth('encoder.layer.3.attention.self.query.weight', 6), 4);
    assert.equal(parameterDepth('embeddings.word_embeddings.weight', 6), 0);
    assert.equal(layerFactor(3, 2, 0.8), 1);
    assert.ok(Math.abs(layerFactor(0, 2, 0.8) - 0.512) < 1e-12);
  });
});

describe('BackboneAdam', () => {
  it('a rows gradient moves exactly those rows as the dense gradient with zeros would on the first step, and no others', () => {
    const make = () => ({ name: 'table', dims: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 10) }) satisfies Param;
    const dense = make();
    const rows = make();
    const values = Float32Array.from([0.5, -1, 2, 0.25, 0.25, -0.75]);
    const full = new Float32Array(12);
    full.set(values.subarray(0, 3), 1 * 3);
    full.set(values.subarray(3, 6), 3 * 3);
    new BackboneAdam([dense], () => 1, { weightDecay: 0 }).update(new Map<string, Gradient>([['table', { kind: 'dense', data: full }]]), 0.1);
    new BackboneAdam([rows], () => 1, { weightDecay: 0 }).update(new Map<string, Gradient>([['table', { kind: 'rows', rows: Int32Array.from([1, 3]), values }]]), 0.1);
    for (const r of [1, 3]) for (let j = 0; j < 3; j++) assert.ok(Math.abs(rows.data[r * 3 + j]! - dense.data[r * 3 + j]!) < 1e-7);
    for (const r of [0, 2]) for (let j = 0; j < 3; j++) assert.equal(rows.data[r * 3 + j], make().data[r * 3 + j]);
  });

  it('a rate factor of 0 freezes a parameter', () => {
    const p: Param = { name: 'w', dims: [2], data: Float32Array.from([1, 2]) };
    const adam = new BackboneAdam([p], () => 0);
    adam.update(new Map<string, Gradient>([['w', { kind: 'dense', data: Float32Array.from([1, 1]) }]]), 0.1);
    assert.deepEqual([...p.data], [1, 2]);
    assert.deepEqual(adam.trained, []);
  });
});

describe('pooling in TypeScript', () => {
  it('mean over the mask, the first token, the maximum', () => {
    const states = Float32Array.from([1, 2, 3, 4, 100, 100, /* row 2 */ 5, 6, 7, 8, 9, 10]);
    const mask = Uint8Array.from([1, 1, 0, 1, 1, 1]);
    assert.deepEqual([...poolTokens(states, mask, 2, 3, 2, 'mean')], [2, 3, 7, 8]);
    assert.deepEqual([...poolTokens(states, mask, 2, 3, 2, 'cls')], [1, 2, 5, 6]);
    assert.deepEqual([...poolTokens(states, mask, 2, 3, 2, 'max')], [3, 4, 9, 10]);
  });
});

/** A minilm-st fixture (BERT family, sentence-transformers mean pooling, no pooled output) as a bundle folder. */
async function hfBundle(): Promise<string> {
  const folder = tempDir('polyhead-ft-hf-');
  await writeHfFixture('minilm-st', folder);
  const plan = await planHuggingFaceImport(folder, { name: 'ft-fixture' });
  const dir = tempDir('polyhead-ft-bundle-');
  await writeBundle(plan.root, plan.manifest, plan.files, dir);
  return dir;
}

const positive = ['good', 'great', 'wonderful', 'excellent', 'lovely', 'fine', 'happy', 'nice'];
const negative = ['bad', 'awful', 'terrible', 'poor', 'sad', 'horrible', 'ugly', 'dreadful'];
const things = ['film', 'meal', 'day', 'book', 'trip', 'room', 'show', 'song', 'game', 'car'];
function sentimentSet(offset: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const k = i + offset;
    const good = k % 2 === 0;
    const words = good ? positive : negative;
    return { text: `the ${things[k % things.length]} was ${words[(k >> 1) % words.length]}`, label: good ? 'positive' : 'negative' };
  });
}

const quick: Partial<FineTuneHyperparameters> = {
  epochs: 3,
  batchesPerEpoch: { sentiment: 6, entities: 3, distillation: 2 },
  batchSize: 8,
  baseLr: 1e-3,
  patience: 3,
  minCosine: 0,
  seed: 'test',
};

describe('fineTuneBackbone on an imported BERT-family encoder', () => {
  let dir: string;
  before(async () => {
    dir = await hfBundle();
  });

  it('the JS pooling backward agrees with finite differences of the whole pooled output', async () => {
    const encoder = await TrainableEncoder.load(dir);
    try {
      const encodings = await encoder.encode(['the film was good', 'a bad day']);
      const out = await encoder.forward(encodings);
      const seed = Float32Array.from(out.pooled, (_, i) => Math.sin(i + 1));
      const gradients = await encoder.backward(undefined, seed);
      const objective = async () => {
        const o = await encoder.forward(encodings);
        return o.pooled.reduce((s, v, i) => s + v * seed[i]!, 0);
      };
      // A dense weight of a middle layer, a few entries.
      const param = encoder.params.find((p) => p.dims.length === 2 && /layer\.1\./.test(p.name) && gradients.get(p.name)?.kind === 'dense') ?? encoder.params.find((p) => p.dims.length === 2 && gradients.get(p.name)?.kind === 'dense')!;
      const gradient = gradients.get(param.name)! as { kind: 'dense'; data: Float32Array };
      for (const index of [0, 7, Math.floor(param.data.length / 2)]) {
        const original = param.data[index]!;
        const h = 1e-2;
        param.data[index] = original + h;
        const up = await objective();
        param.data[index] = original - h;
        const down = await objective();
        param.data[index] = original;
        const numeric = (up - down) / (2 * h);
        assert.ok(Math.abs(numeric - gradient.data[index]!) <= 2e-3 + 0.05 * Math.abs(numeric), `${param.name}[${index}]: analytic ${gradient.data[index]} numeric ${numeric}`);
      }
    } finally {
      await encoder.release();
    }
  });

  it('learns the tasks, records the curves, keeps the best epoch; the same seed gives the same weights', async () => {
    const run = async () => {
      const encoder = await TrainableEncoder.load(dir);
      try {
        return await fineTuneBackbone({
          encoder,
          tasks: {
            sentiment: { labels: ['negative', 'positive'], train: sentimentSet(0, 64), validation: sentimentSet(1000, 24) },
            distillation: { train: things.map((t) => `a ${t} in the park`), validation: ['the river runs', 'a quiet street'] },
          },
          hyperparameters: quick,
        });
      } finally {
        await encoder.release();
      }
    };
    const first = await run();
    const second = await run();
    assert.deepEqual(Buffer.from(first.model), Buffer.from(second.model), 'same seed, same weights');
    const sentiment = first.curves.filter((p) => p.task === 'sentiment');
    assert.deepEqual(sentiment.map((p) => p.epoch), [0, 1, 2, 3]);
    assert.ok(sentiment.at(-1)!.value > sentiment[0]!.value, `sentiment validation went from ${sentiment[0]!.value} to ${sentiment.at(-1)!.value}`);
    assert.ok(first.curves.some((p) => p.task === 'distillation' && p.metric === 'mean_cosine_to_pretrained'));
    assert.ok(first.bestEpoch >= 1);
    // The returned model is the kept epoch's backbone and loads in onnxruntime.
    const session = await ort.InferenceSession.create(first.model);
    assert.ok(session.outputNames.length > 0);
    await session.release();
    assert.equal(first.timing.steps, first.epochsRun * 8);
  });

  it('refuses a run without any task data', async () => {
    const encoder = await TrainableEncoder.load(dir);
    try {
      await assert.rejects(fineTuneBackbone({ encoder, tasks: {}, hyperparameters: quick }), /no task with data/);
    } finally {
      await encoder.release();
    }
  });
});
