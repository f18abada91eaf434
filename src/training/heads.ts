// Training a whole head from labelled text: validate the examples, get features from the frozen backbone
// (cached), train, evaluate on named test sets with the same decoding the engine serves, export ONNX.
// This is the entry point for the command-line trainer and for a server-side training job.
import type { Backbone } from '../engine/backbone.js';
import { decodeEntities } from '../engine/heads/token-classification.js';
import { iobTagSet, spansToIob, type CharSpan } from '../engine/heads/iob.js';
import { FeatureCache, type TokenFeatures } from './features.js';
import { exportClassifierOnnx, exportTokenClassifierOnnx } from './export.js';
import { createOnnxBackend, type MatMulBackend } from './linalg.js';
import { accuracy, spanMetrics, type SpanMetrics } from './metrics.js';
import { expectedCalibrationError, fitTemperature, softmaxWithTemperature, topClass } from '../evaluation/calibration.js';
import { predictLogits, type HeadWeights } from './model.js';
import type { ProgressListener } from './progress.js';
import { argmaxRows, trainClassifier, trainTokenClassifier, type CommonTrainOptions, type TrainResult } from './train.js';

export interface ClassificationExample {
  text: string;
  label: string;
}

export interface TokenClassificationExample {
  text: string;
  /** Character spans (JavaScript string offsets, end exclusive) with entity labels such as PER. */
  entities: readonly CharSpan[];
}

export interface ExampleProblem {
  index: number;
  message: string;
}

/** Thrown before any work starts when examples are unusable; `problems` lists each bad example. */
export class ExampleValidationError extends Error {
  constructor(readonly problems: ExampleProblem[]) {
    super(`invalid training examples: ${problems.slice(0, 10).map((p) => `#${p.index}: ${p.message}`).join('; ')}${problems.length > 10 ? ` (and ${problems.length - 10} more)` : ''}`);
  }
}

/** Checks classification examples: known label, non-empty text, and at least `minPerLabel` per label. */
export function validateClassificationExamples(examples: readonly ClassificationExample[], labels: readonly string[], minPerLabel = 2): void {
  const problems: ExampleProblem[] = [];
  if (labels.length < 2 || new Set(labels).size !== labels.length) problems.push({ index: -1, message: 'need at least two distinct labels' });
  const known = new Set(labels);
  const counts = new Map(labels.map((l) => [l, 0]));
  examples.forEach((e, index) => {
    if (typeof e.text !== 'string' || e.text.trim() === '') problems.push({ index, message: 'empty text' });
    if (!known.has(e.label)) problems.push({ index, message: `unknown label ${JSON.stringify(e.label)} (labels: ${labels.join(', ')})` });
    else counts.set(e.label, counts.get(e.label)! + 1);
  });
  for (const [label, count] of counts) if (count < minPerLabel) problems.push({ index: -1, message: `label "${label}" has ${count} examples, at least ${minPerLabel} needed` });
  if (problems.length) throw new ExampleValidationError(problems);
}

/** Checks NER examples: non-empty text, known entity labels, spans inside the text, not overlapping. */
export function validateTokenClassificationExamples(examples: readonly TokenClassificationExample[], entityLabels: readonly string[], minPerLabel = 1): void {
  const problems: ExampleProblem[] = [];
  const known = new Set(entityLabels);
  const counts = new Map(entityLabels.map((l) => [l, 0]));
  examples.forEach((e, index) => {
    if (typeof e.text !== 'string' || e.text.trim() === '') problems.push({ index, message: 'empty text' });
    const sorted = [...(e.entities ?? [])].sort((a, b) => a.start - b.start);
    let previousEnd = 0;
    for (const span of sorted) {
      if (!known.has(span.label)) problems.push({ index, message: `unknown entity label ${JSON.stringify(span.label)} (labels: ${entityLabels.join(', ')})` });
      else counts.set(span.label, counts.get(span.label)! + 1);
      if (!Number.isInteger(span.start) || !Number.isInteger(span.end) || span.start < 0 || span.end > (e.text?.length ?? 0) || span.end <= span.start) {
        problems.push({ index, message: `span [${span.start}, ${span.end}) is not inside the text (length ${e.text?.length ?? 0})` });
      } else if (span.start < previousEnd) {
        problems.push({ index, message: `span [${span.start}, ${span.end}) overlaps the previous one` });
      }
      previousEnd = Math.max(previousEnd, span.end);
    }
  });
  for (const [label, count] of counts) if (count < minPerLabel) problems.push({ index: -1, message: `entity label "${label}" occurs ${count} times, at least ${minPerLabel} needed` });
  if (problems.length) throw new ExampleValidationError(problems);
}

export interface ClassificationEvaluation {
  metric: 'accuracy';
  accuracy: number;
  samples: number;
  /** Per gold label: examples and accuracy on them (recall). */
  perLabel: Record<string, { samples: number; accuracy: number }>;
  /** Expected calibration error (15 bins) of the scores the exported head serves (after temperature scaling). */
  expectedCalibrationError: number;
  /** The same at temperature 1, i.e. before temperature scaling. */
  uncalibratedExpectedCalibrationError: number;
}

/** Temperature scaling of a classification head, fitted on its validation examples. */
export interface HeadCalibration {
  /** The logits are divided by it inside the exported head (1 when there was nothing to fit on). */
  temperature: number;
  validationSamples: number;
  /** Mean negative log-likelihood on the validation examples at T = 1 and at the fitted T. */
  validationNllBefore: number;
  validationNllAfter: number;
}

export interface SpanEvaluation extends SpanMetrics {
  metric: 'span_micro_f1';
  samples: number;
}

export interface TrainedHead<E> {
  task: 'classification' | 'token_classification';
  reads: 'pooled' | 'tokens';
  /** Output labels in order (IOB2 tags for a token head). */
  labels: string[];
  weights: HeadWeights;
  /** The ONNX head file (engine head contract). */
  onnx: Uint8Array;
  training: TrainResult;
  /** Figures on each named evaluation set. */
  evaluations: Record<string, E>;
  /** Classification heads: the temperature folded into the exported head. */
  calibration?: HeadCalibration;
  timings: { featuresMs: number; trainingMs: number; evaluationMs: number; totalMs: number };
}

interface HeadJobOptions extends Omit<CommonTrainOptions, 'onProgress'> {
  /** A loaded backbone, or a FeatureCache over one (reuse it across jobs to skip repeated texts). */
  features: Backbone | FeatureCache;
  /** Named evaluation sets (never used for training or early stopping), e.g. { test, ood }. */
  evaluate?: Record<string, readonly ClassificationExample[] | readonly TokenClassificationExample[]>;
  onProgress?: ProgressListener;
  /** Backbone batch size for feature extraction. */
  featureBatchSize?: number;
  /** Stored in the ONNX file. */
  description?: string;
}

export interface ClassificationHeadOptions extends HeadJobOptions {
  labels: readonly string[];
  train: readonly ClassificationExample[];
  /** Explicit validation set for early stopping; else `validationFraction` of `train` is held out. */
  validation?: readonly ClassificationExample[];
  evaluate?: Record<string, readonly ClassificationExample[]>;
}

export interface TokenClassificationHeadOptions extends HeadJobOptions {
  /** Entity types, e.g. ['PER', 'ORG', 'LOC']; the head's labels are their IOB2 tags (O first). */
  entityLabels: readonly string[];
  train: readonly TokenClassificationExample[];
  validation?: readonly TokenClassificationExample[];
  evaluate?: Record<string, readonly TokenClassificationExample[]>;
  /** Neighbouring tokens each side (default 1). */
  window?: number;
}

function cacheOf(features: Backbone | FeatureCache): FeatureCache {
  return features instanceof FeatureCache ? features : new FeatureCache(features);
}

/** Trains, evaluates and exports a sentence classification head that reads the pooled embedding. */
export async function trainClassificationHead(options: ClassificationHeadOptions): Promise<TrainedHead<ClassificationEvaluation>> {
  const started = performance.now();
  validateClassificationExamples(options.train, options.labels);
  if (options.validation) validateClassificationExamples(options.validation, options.labels, 0);
  for (const set of Object.values(options.evaluate ?? {})) validateClassificationExamples(set, options.labels, 0);
  const cache = cacheOf(options.features);
  const labelIndex = new Map(options.labels.map((l, i) => [l, i]));
  const allTexts = [...options.train, ...(options.validation ?? []), ...Object.values(options.evaluate ?? {}).flat()].map((e) => e.text);
  await cache.pooled(allTexts, { batchSize: options.featureBatchSize, onProgress: options.onProgress, signal: options.signal });
  const featuresMs = performance.now() - started;

  const backend = options.backend ?? (await createOnnxBackend());
  try {
    const trainStarted = performance.now();
    const trainFeatures = await cache.pooled(options.train.map((e) => e.text));
    const trainLabels = options.train.map((e) => labelIndex.get(e.label)!);
    const validation = options.validation
      ? { features: await cache.pooled(options.validation.map((e) => e.text)), labels: options.validation.map((e) => labelIndex.get(e.label)!) }
      : undefined;
    const training = await trainClassifier({ ...options, backend, features: trainFeatures, labels: trainLabels, numLabels: options.labels.length, validation });
    // Temperature scaling on the validation examples (explicit, or those the trainer held out): never on
    // the evaluation sets, which report the ECE before and after.
    const heldOut = training.heldOut ?? [];
    const calibration = await fitHeadTemperature(
      training.weights,
      validation ?? { features: heldOut.map((i) => trainFeatures[i]!), labels: heldOut.map((i) => trainLabels[i]!) },
      backend,
    );
    const trainingMs = performance.now() - trainStarted;
    const evalStarted = performance.now();
    const evaluations: Record<string, ClassificationEvaluation> = {};
    for (const [name, set] of Object.entries(options.evaluate ?? {})) {
      evaluations[name] = await evaluateClassifier(training.weights, options.labels, await cache.pooled(set.map((e) => e.text)), set, backend, calibration.temperature);
      options.onProgress?.({ phase: 'evaluation', done: Object.keys(evaluations).length, total: Object.keys(options.evaluate!).length, message: name });
    }
    const evaluationMs = performance.now() - evalStarted;
    return {
      task: 'classification',
      reads: 'pooled',
      labels: [...options.labels],
      weights: training.weights,
      onnx: exportClassifierOnnx(training.weights, { name: 'classification-head', description: options.description, temperature: calibration.temperature }),
      training,
      evaluations,
      calibration,
      timings: { featuresMs, trainingMs, evaluationMs, totalMs: performance.now() - started },
    };
  } finally {
    if (!options.backend) await backend.release();
  }
}

/** Fits the temperature of a classifier on labelled features (T = 1 when there are none). */
export async function fitHeadTemperature(
  weights: HeadWeights,
  validation: { features: readonly Float32Array[]; labels: readonly number[] },
  backend: MatMulBackend,
): Promise<HeadCalibration> {
  if (validation.features.length === 0) return { temperature: 1, validationSamples: 0, validationNllBefore: NaN, validationNllAfter: NaN };
  const flat = flatLogits(await predictLogits(weights, validation.features, backend), weights.numLabels);
  const fit = fitTemperature(flat, validation.labels, weights.numLabels);
  // The exported head stores T as float32: report what it serves.
  const temperature = Math.fround(fit.temperature);
  return { temperature, validationSamples: fit.samples, validationNllBefore: fit.nllBefore, validationNllAfter: fit.nllAfter };
}

function flatLogits(rows: readonly Float32Array[], numLabels: number): Float32Array {
  const flat = new Float32Array(rows.length * numLabels);
  rows.forEach((l, i) => flat.set(l, i * numLabels));
  return flat;
}

/** Accuracy of a classifier's argmax, and the ECE of its scores at `temperature` and at 1, on examples whose features are given. */
export async function evaluateClassifier(
  weights: HeadWeights,
  labels: readonly string[],
  features: readonly Float32Array[],
  examples: readonly ClassificationExample[],
  backend: MatMulBackend,
  temperature = 1,
): Promise<ClassificationEvaluation> {
  const flat = flatLogits(await predictLogits(weights, features, backend), labels.length);
  const predicted = argmaxRows(flat, labels.length);
  const targets = examples.map((e) => labels.indexOf(e.label));
  const ece = (t: number) => {
    const top = topClass(softmaxWithTemperature(flat, labels.length, t), labels.length, targets);
    return expectedCalibrationError(top.scores, top.correct);
  };
  const perLabel: ClassificationEvaluation['perLabel'] = {};
  labels.forEach((label, k) => {
    const rows = targets.flatMap((t, i) => (t === k ? [i] : []));
    perLabel[label] = { samples: rows.length, accuracy: rows.length ? rows.filter((i) => predicted[i] === k).length / rows.length : NaN };
  });
  return {
    metric: 'accuracy',
    accuracy: accuracy(predicted, targets),
    samples: examples.length,
    perLabel,
    expectedCalibrationError: ece(temperature),
    uncalibratedExpectedCalibrationError: ece(1),
  };
}

/** Per-token label indices of a text's tokens (IOB2 over the token offsets, as iob.ts defines). */
export function tokenTags(features: TokenFeatures, entities: readonly CharSpan[], tagSet: readonly string[]): Int32Array {
  const index = new Map(tagSet.map((t, i) => [t, i]));
  return Int32Array.from(spansToIob(entities, features.offsets), (tag) => index.get(tag)!);
}

/** Trains, evaluates and exports a token classification (IOB2 entity) head that reads the token states. */
export async function trainTokenClassificationHead(options: TokenClassificationHeadOptions): Promise<TrainedHead<SpanEvaluation>> {
  const started = performance.now();
  validateTokenClassificationExamples(options.train, options.entityLabels);
  if (options.validation) validateTokenClassificationExamples(options.validation, options.entityLabels, 0);
  for (const set of Object.values(options.evaluate ?? {})) validateTokenClassificationExamples(set, options.entityLabels, 0);
  const tagSet = iobTagSet(options.entityLabels);
  const cache = cacheOf(options.features);
  const allTexts = [...options.train, ...(options.validation ?? []), ...Object.values(options.evaluate ?? {}).flat()].map((e) => e.text);
  await cache.tokens(allTexts, { batchSize: options.featureBatchSize, onProgress: options.onProgress, signal: options.signal });
  const featuresMs = performance.now() - started;
  const prepare = async (set: readonly TokenClassificationExample[]) => {
    const feats = await cache.tokens(set.map((e) => e.text));
    return { sequences: feats.map((f) => f.states), tags: feats.map((f, i) => tokenTags(f, set[i]!.entities, tagSet)) };
  };

  const backend = options.backend ?? (await createOnnxBackend());
  try {
    const trainStarted = performance.now();
    const train = await prepare(options.train);
    const training = await trainTokenClassifier({
      ...options,
      backend,
      ...train,
      numLabels: tagSet.length,
      inputSize: cache.backbone.spec.hiddenSize,
      outsideLabel: 0,
      validation: options.validation ? await prepare(options.validation) : undefined,
    });
    const trainingMs = performance.now() - trainStarted;
    const evalStarted = performance.now();
    const evaluations: Record<string, SpanEvaluation> = {};
    for (const [name, set] of Object.entries(options.evaluate ?? {})) {
      const predicted = await predictEntities(training.weights, tagSet, await cache.tokens(set.map((e) => e.text)), backend);
      const metrics = spanMetrics(
        set.map((e) => e.entities),
        predicted,
      );
      evaluations[name] = { metric: 'span_micro_f1', samples: set.length, ...metrics };
      options.onProgress?.({ phase: 'evaluation', done: Object.keys(evaluations).length, total: Object.keys(options.evaluate!).length, message: name });
    }
    const evaluationMs = performance.now() - evalStarted;
    return {
      task: 'token_classification',
      reads: 'tokens',
      labels: tagSet,
      weights: training.weights,
      onnx: exportTokenClassifierOnnx(training.weights, { name: 'token-classification-head', description: options.description }),
      training,
      evaluations,
      timings: { featuresMs, trainingMs, evaluationMs, totalMs: performance.now() - started },
    };
  } finally {
    if (!options.backend) await backend.release();
  }
}

/**
 * Entities of each text as the engine would serve them: argmax tag per token, softmax score, then the
 * engine's own decodeEntities (sub-word merging, IOB2 decoding, whitespace trimming).
 */
export async function predictEntities(
  weights: HeadWeights,
  tagSet: readonly string[],
  features: readonly TokenFeatures[],
  backend: MatMulBackend,
): Promise<Array<Array<{ text: string; label: string; start: number; end: number; score: number }>>> {
  const logits = await predictLogits(
    weights,
    features.map((f) => f.states),
    backend,
  );
  const L = tagSet.length;
  return features.map((f, i) => {
    const rows = logits[i]!;
    const tags: string[] = [];
    const scores = new Float64Array(f.tokens);
    for (let t = 0; t < f.tokens; t++) {
      let best = 0;
      let max = -Infinity;
      for (let c = 0; c < L; c++) max = Math.max(max, rows[t * L + c]!);
      let sum = 0;
      for (let c = 0; c < L; c++) sum += Math.exp(rows[t * L + c]! - max);
      for (let c = 1; c < L; c++) if (rows[t * L + c]! > rows[t * L + best]!) best = c;
      tags.push(tagSet[best]!);
      scores[t] = Math.exp(rows[t * L + best]! - max) / sum;
    }
    return decodeEntities(f.text, f.offsets, tags, scores);
  });
}
