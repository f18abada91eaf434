// The learning curve with the fine-tuned backbone: sentiment accuracy on the fixed Pang & Lee test split against the
// number of labelled training sentences n, for (a) the frozen pretrained backbone, (b) the backbone fine-tuned on
// those n sentences (src/training/fine-tune, with the distillation term on unlabelled Brown sentences), (c) the same
// architecture with random weights, (d) TF-IDF bag of words. Every method reads the same n sentences, split once per
// run into 80% to train on and 20% for early stopping (of the fine-tuning and of the probe), and is read by the
// same linear probe (scripts/learning-curve.ts). Small n get fewer fine-tuning steps, so the whole curve fits in
// well under an hour on one core.
// Writes docs/fine-tune-curve.svg and docs/results/fine-tune-curve.json and prints the table (docs/fine-tuning.md).
//
//   node --import @swc-node/register/esm-register scripts/fine-tune-curve.ts [--quick]
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backboneSpecOf } from '../src/bundle/backbone-spec.js';
import { ensureDefaultBundle } from '../src/bundle/default-bundle.js';
import { brownUnlabelled } from '../src/datasets/fine-tune-data.js';
import { loadPangLeeSentences, splitDataset, type SentimentExample } from '../src/datasets/pang-lee.js';
import { Backbone } from '../src/engine/backbone.js';
import { defaultSessionOptions } from '../src/engine/onnx-runtime.js';
import { packageRoot } from '../src/paths.js';
import { fitBagOfWords } from '../src/training/bag-of-words.js';
import { extractPooled } from '../src/training/features.js';
import { fineTuneBackbone, fineTuneDefaults, type FineTuneHyperparameters } from '../src/training/fine-tune/fine-tune.js';
import { TrainableEncoder } from '../src/training/fine-tune/trainable-encoder.js';
import type { ClassificationExample } from '../src/training/heads.js';
import { createOnnxBackend, type MatMulBackend } from '../src/training/linalg.js';
import { writeRandomUseLiteOnnx } from '../src/training/random-backbone.js';
import { label, pooledFeatures, PROBE, probe, renderSvg, sample, summarise, writeAtomically, type CurveMethod, type CurvePoint } from './learning-curve.js';

const SPLIT_SEED = 'polyhead-sentiment-v1';
const RANDOM_BACKBONE_SEED = 'polyhead-random-use-lite-v1';
const quick = process.argv.includes('--quick');
const SIZES = quick ? [50, 200] : [50, 100, 200, 500, 1000, 0 /* all */];
/** Seeds per size: fine-tuning costs ~1 s a step, so the large sizes (least noisy) get one. */
const seedsFor = (n: number) => (quick ? 1 : n <= 500 ? 3 : 1);
/**
 * The rates of the recorded curve, pinned: fineTuneDefaults has since moved to 1e-4 / 0.9 for the full multi-task
 * run (8 epochs), which this curve was not measured with.
 */
const RATES = { baseLr: 5e-5, layerDecay: 0.8 } as const;
/** Unlabelled Brown sentences of the distillation term (the first of brownUnlabelled's fixed shuffle). */
const DISTILL = { train: 640, validation: 160 };

const METHODS: CurveMethod[] = [
  { id: 'fine-tuned', name: 'USE-lite fine-tuned on the n sentences', colour: '#2ca02c' },
  { id: 'pretrained', name: 'USE-lite, pretrained weights (frozen)', colour: '#1f77b4' },
  { id: 'random', name: 'USE-lite architecture, random weights', colour: '#d62728' },
  { id: 'bow', name: 'Bag of words (TF-IDF 1-2 grams)', colour: '#7f7f7f' },
];

/**
 * Fine-tuning effort for n labelled sentences: one pass over the 80% per epoch (batches of 32), as many epochs as
 * give ~60 sentiment steps, between 3 and 10; one distillation batch for every four sentiment batches. Rates: RATES;
 * the rest is fineTuneDefaults (warm-up, weight decay, head rate, patience 2, min cosine 0.95).
 */
function effortFor(trainCount: number): Pick<FineTuneHyperparameters, 'epochs' | 'batchesPerEpoch'> {
  const sentiment = Math.ceil(trainCount / fineTuneDefaults.batchSize);
  const epochs = quick ? 2 : Math.min(10, Math.max(3, Math.ceil(60 / sentiment)));
  return { epochs, batchesPerEpoch: { sentiment, distillation: Math.ceil(sentiment / 4) } };
}

/** The 80/20 split of a run's n sentences (stratified, seeded). */
function holdout(train: SentimentExample[], seed: string): { fit: SentimentExample[]; validation: SentimentExample[] } {
  const split = splitDataset(train, { seed: `${seed}:holdout`, validation: 0.2, test: 0 });
  return { fit: split.train, validation: split.validation };
}

interface FineTuneRecord {
  n: number;
  seed: string;
  epochs: number;
  epochsRun: number;
  bestEpoch: number;
  steps: number;
  seconds: number;
  validationAccuracy: number;
  distillationCosine: number;
  accuracy: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const bundleDir = await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'), (line) => console.error(line));
  const spec = await backboneSpecOf(bundleDir);
  const workDir = join(packageRoot, '.cache', 'fine-tune-curve');
  await mkdir(workDir, { recursive: true });
  const randomFile = join(packageRoot, '.cache', 'transfer', `use-lite-random-${RANDOM_BACKBONE_SEED}.onnx`);
  if (!existsSync(randomFile)) await writeRandomUseLiteOnnx(randomFile, RANDOM_BACKBONE_SEED);

  const data = await loadPangLeeSentences(join(packageRoot, '.cache', 'datasets'));
  const split = splitDataset(data, { seed: SPLIT_SEED, validation: 0.1, test: 0.2 });
  const pool = split.train;
  const test = split.test;
  const testLabels = test.map(label);
  const brown = brownUnlabelled();
  const distillation = { train: brown.train.slice(0, DISTILL.train), validation: brown.validation.slice(0, DISTILL.validation) };

  // Frozen features of every pool and test sentence, once per fixed backbone.
  const texts = [...pool, ...test].map((e) => e.text);
  const fixed = await pooledFeatures(spec, { pretrained: spec.file, random: randomFile }, texts);

  const backend = await createOnnxBackend();
  const jobs = SIZES.flatMap((size) => {
    const n = size === 0 ? pool.length : size;
    return Array.from({ length: seedsFor(n) }, (_, s) => ({ n, seed: `curve:${n}:${s}` }));
  });
  const runs = new Map<string, number[]>();
  const fineTunes: FineTuneRecord[] = [];
  for (const [j, job] of jobs.entries()) {
    const { fit, validation } = holdout(sample(pool, job.n, job.seed), job.seed);
    const add = (id: string, acc: number) => runs.set(`${id}:${job.n}`, [...(runs.get(`${id}:${job.n}`) ?? []), acc]);
    const readBy = async (features: (e: SentimentExample) => Float32Array, standardise: boolean) =>
      probe(fit.map(features), fit.map(label), test.map(features), testLabels, job.seed, backend, standardise, { features: validation.map(features), labels: validation.map(label) });
    for (const id of ['pretrained', 'random'] as const) add(id, await readBy((e) => fixed[id].get(e.text)!, true));
    const bow = fitBagOfWords(fit.map((e) => e.text));
    add('bow', await readBy((e) => bow.transform(e.text), false));
    const tuned = await fineTuneFor(bundleDir, spec, fit, validation, distillation, test, backend, job, workDir);
    add('fine-tuned', tuned.accuracy);
    fineTunes.push(tuned);
    console.error(`[${j + 1}/${jobs.length}] n=${job.n} ${job.seed}: frozen ${pct(runs.get(`pretrained:${job.n}`)!.at(-1)!)}, fine-tuned ${pct(tuned.accuracy)} (${tuned.steps} steps, best epoch ${tuned.bestEpoch} of ${tuned.epochsRun}, ${tuned.seconds.toFixed(0)} s)`);
  }
  await backend.release();
  await rm(workDir, { recursive: true, force: true });

  const sizes = [...new Set(jobs.map((j) => j.n))].sort((a, b) => a - b);
  const points: CurvePoint[] = METHODS.flatMap((m) => sizes.map((n) => summarise(m.id, n, runs.get(`${m.id}:${n}`)!)));
  const at = (m: string, n: number) => points.find((p) => p.method === m && p.n === n)!;
  const table = [
    `| labelled sentences | seeds | ${METHODS.map((m) => m.name).join(' | ')} |`,
    `| ---: | ---: | ${METHODS.map(() => '---:').join(' | ')} |`,
    ...sizes.map((n) => `| ${n === pool.length ? `${n} (all)` : n} | ${at('pretrained', n).runs.length} | ${METHODS.map((m) => `${pct(at(m.id, n).mean)} ± ${pct(at(m.id, n).std)}`).join(' | ')} |`),
  ].join('\n');
  const seconds = (performance.now() - started) / 1000;
  console.log(table);
  console.log(`total ${seconds.toFixed(0)} s`);
  if (quick) return;

  await mkdir(join(packageRoot, 'docs', 'results'), { recursive: true });
  await writeAtomically(join(packageRoot, 'docs', 'fine-tune-curve.svg'), renderSvg(points, sizes, METHODS));
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  await writeAtomically(
    join(packageRoot, 'docs', 'results', 'fine-tune-curve.json'),
    `${JSON.stringify(
      {
        command: 'npm run bench:fine-tune-curve',
        splitSeed: SPLIT_SEED,
        randomBackboneSeed: RANDOM_BACKBONE_SEED,
        probe: PROBE,
        holdout: 'each run: its n sentences split 80/20 (stratified, seed "<run seed>:holdout"); the 20% stops the fine-tuning and the probe early',
        distillation: { source: 'brownUnlabelled() (fixed shuffle)', ...DISTILL },
        fineTuneHyperparameters: { ...fineTuneDefaults, ...RATES, epochs: 'min(10, max(3, ceil(60 / sentiment batches)))', batchesPerEpoch: { sentiment: 'ceil(0.8 n / 32)', distillation: 'ceil(sentiment / 4)' } },
        testSentences: test.length,
        pool: pool.length,
        seconds: Math.round(seconds),
        points: points.map((p) => ({ ...p, runs: p.runs.map(round), mean: round(p.mean), std: round(p.std) })),
        fineTunes: fineTunes.map((f) => ({ ...f, seconds: Math.round(f.seconds), validationAccuracy: round(f.validationAccuracy), distillationCosine: round(f.distillationCosine), accuracy: round(f.accuracy) })),
      },
      null,
      2,
    )}\n`,
  );
  console.log('wrote docs/fine-tune-curve.svg, docs/results/fine-tune-curve.json');
}

/** Fine-tunes the pretrained backbone on one run's sentences, then scores it with the probe as the others are scored. */
async function fineTuneFor(
  bundleDir: string,
  spec: Awaited<ReturnType<typeof backboneSpecOf>>,
  fit: SentimentExample[],
  validation: SentimentExample[],
  distillation: { train: string[]; validation: string[] },
  test: SentimentExample[],
  backend: MatMulBackend,
  job: { n: number; seed: string },
  workDir: string,
): Promise<FineTuneRecord> {
  const started = performance.now();
  const effort = effortFor(fit.length);
  const encoder = await TrainableEncoder.load(bundleDir, { threads: 1 });
  let result;
  try {
    result = await fineTuneBackbone({
      encoder,
      tasks: {
        sentiment: { labels: ['negative', 'positive'], train: fit as ClassificationExample[], validation: validation as ClassificationExample[] },
        distillation: { ...distillation, weight: 1 },
      },
      hyperparameters: { ...RATES, ...effort, seed: `fine-tune-${job.seed}` },
    });
  } finally {
    await encoder.release();
  }
  const file = join(workDir, `backbone-${process.pid}.onnx`);
  await writeFile(file, result.model);
  const backbone = await Backbone.load({ ...spec, file }, defaultSessionOptions);
  const all = [...fit, ...validation, ...test];
  const pooled = await extractPooled(backbone, all.map((e) => e.text));
  await backbone.release();
  const features = new Map(all.map((e, i) => [e.text, pooled[i]!]));
  const f = (e: SentimentExample) => features.get(e.text)!;
  const accuracy = await probe(fit.map(f), fit.map(label), test.map(f), test.map(label), job.seed, backend, true, { features: validation.map(f), labels: validation.map(label) });
  const kept = (task: string) => result.curves.find((p) => p.task === task && p.epoch === result.bestEpoch)?.value ?? NaN;
  return {
    n: job.n,
    seed: job.seed,
    epochs: effort.epochs,
    epochsRun: result.epochsRun,
    bestEpoch: result.bestEpoch,
    steps: result.timing.steps,
    seconds: (performance.now() - started) / 1000,
    validationAccuracy: kept('sentiment'),
    distillationCosine: kept('distillation'),
    accuracy,
  };
}

const pct = (x: number) => (100 * x).toFixed(1);

await main();
