// Trainers for the two head kinds on frozen backbone features: mini-batch AdamW on softmax cross-entropy,
// seeded (same inputs + seed = same weights, bit for bit), early stopping on a validation set with the best
// epoch's weights restored. Pure computation: features in, weights and metrics out (no backbone, no files),
// so a server can run it in the background and report progress.
import { AdamW } from './adam.js';
import { createOnnxBackend, type MatMulBackend } from './linalg.js';
import { accuracy, tokenF1 } from './metrics.js';
import { backward, cloneWeights, fitStandardisation, forward, initHeadWeights, predictLogits, softmaxCrossEntropy, type HeadWeights } from './model.js';
import type { ProgressListener } from './progress.js';
import { childRng, shuffle } from './random.js';

export interface CommonTrainOptions {
  seed: string | number;
  /** Hidden units of the MLP; 0 = a linear head. */
  hidden?: number;
  /** Maximum epochs (early stopping usually ends sooner). */
  epochs?: number;
  /** Sequences (texts) per mini-batch. */
  batchSize?: number;
  lr?: number;
  /** AdamW decoupled weight decay on the weight matrices (not the biases). */
  weightDecay?: number;
  /** Inverted dropout on the hidden layer while training. */
  dropout?: number;
  /** Inverted dropout on the (standardised) input features while training. */
  inputDropout?: number;
  /** Fraction of the training data held out for validation when no explicit validation set is given. */
  validationFraction?: number;
  /** Stop after this many epochs without a better validation figure (the best epoch's weights are kept). */
  earlyStoppingPatience?: number;
  /** Standardise each input feature with the training set's mean and std (default true; off for sparse features). */
  standardise?: boolean;
  /** Loss weight per class: none, balanced (N / (L * count)), sqrt of balanced, or explicit. */
  classWeights?: 'none' | 'balanced' | 'sqrt' | number[];
  onProgress?: ProgressListener;
  /** Aborts training between batches (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Matrix products; default onnxruntime on one thread (created and released by the trainer). */
  backend?: MatMulBackend;
}

export interface EpochStats {
  epoch: number;
  trainLoss: number;
  validationLoss: number;
  /** Accuracy (classifier) or token-level micro F1 over non-O labels (token classifier). */
  validationMetric: number;
  ms: number;
}

export interface TrainResult {
  weights: HeadWeights;
  bestEpoch: number;
  epochsRun: number;
  history: EpochStats[];
  /** Validation figures of the returned weights. */
  validation: { loss: number; metric: number; metricName: 'accuracy' | 'token_micro_f1'; samples: number };
  /** Without an explicit validation set: the indices of the training examples held out for validation (temperature scaling fits on them). */
  heldOut?: number[];
  trainingSamples: number;
  /** Loss weight of each class. */
  classWeights: number[];
  ms: number;
}

export interface ClassifierTrainOptions extends CommonTrainOptions {
  /** One feature vector per example (the backbone's pooled output). */
  features: readonly Float32Array[];
  labels: readonly number[];
  numLabels: number;
  validation?: { features: readonly Float32Array[]; labels: readonly number[] };
}

export interface TokenClassifierTrainOptions extends CommonTrainOptions {
  /** Per text: token states [tokens * inputSize]. */
  sequences: readonly Float32Array[];
  /** Per text: the label index of each token (-1 = ignore). */
  tags: readonly Int32Array[];
  numLabels: number;
  inputSize: number;
  /** Neighbouring tokens each side the head sees (default 1). */
  window?: number;
  /** Index of the "outside" label (excluded from the token F1 used for early stopping). Default 0. */
  outsideLabel?: number;
  validation?: { sequences: readonly Float32Array[]; tags: readonly Int32Array[] };
}

const commonDefaults = {
  batchSize: 32,
  lr: 1e-3,
  weightDecay: 1e-2,
  dropout: 0.2,
  inputDropout: 0,
  validationFraction: 0.1,
  standardise: true,
};

export const classifierDefaults = {
  ...commonDefaults,
  hidden: 0,
  epochs: 60,
  earlyStoppingPatience: 6,
  classWeights: 'none' as const,
};

export const tokenClassifierDefaults = {
  ...commonDefaults,
  hidden: 128,
  window: 1,
  epochs: 20,
  earlyStoppingPatience: 3,
  classWeights: 'sqrt' as const,
};

/** Trains a sentence classifier on feature vectors (e.g. pooled embeddings). */
export async function trainClassifier(options: ClassifierTrainOptions): Promise<TrainResult> {
  if (options.features.length === 0) throw new Error('trainClassifier: no training examples');
  if (options.features.length !== options.labels.length) throw new Error('trainClassifier: features and labels differ in length');
  const inputSize = options.features[0]!.length;
  for (const f of options.features) if (f.length !== inputSize) throw new Error('trainClassifier: feature vectors differ in size');
  const tags = options.labels.map((label) => Int32Array.of(label));
  const validation = options.validation ? { sequences: options.validation.features, tags: options.validation.labels.map((l) => Int32Array.of(l)) } : undefined;
  return trainNetwork(
    { ...classifierDefaults, ...definedOnly(options), seed: options.seed },
    { inputSize, window: 0, numLabels: options.numLabels },
    options.features,
    tags,
    validation,
    'accuracy',
    -1,
  );
}

/** Trains a per-token classifier on token states (each token sees `window` neighbours each side). */
export async function trainTokenClassifier(options: TokenClassifierTrainOptions): Promise<TrainResult> {
  if (options.sequences.length === 0) throw new Error('trainTokenClassifier: no training examples');
  if (options.sequences.length !== options.tags.length) throw new Error('trainTokenClassifier: sequences and tags differ in length');
  options.sequences.forEach((s, i) => {
    if (s.length !== options.tags[i]!.length * options.inputSize) throw new Error(`trainTokenClassifier: text ${i} has ${s.length / options.inputSize} token states for ${options.tags[i]!.length} tags`);
  });
  const merged = { ...tokenClassifierDefaults, ...definedOnly(options), seed: options.seed };
  return trainNetwork(
    merged,
    { inputSize: options.inputSize, window: merged.window, numLabels: options.numLabels },
    options.sequences,
    options.tags,
    options.validation,
    'token_micro_f1',
    options.outsideLabel ?? 0,
  );
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

type ResolvedOptions = Required<Omit<CommonTrainOptions, 'onProgress' | 'signal' | 'backend'>> & Pick<CommonTrainOptions, 'onProgress' | 'signal' | 'backend'>;

async function trainNetwork(
  options: ResolvedOptions,
  shape: { inputSize: number; window: number; numLabels: number },
  sequences: readonly Float32Array[],
  tags: readonly Int32Array[],
  explicitValidation: { sequences: readonly Float32Array[]; tags: readonly Int32Array[] } | undefined,
  metricName: 'accuracy' | 'token_micro_f1',
  outsideLabel: number,
): Promise<TrainResult> {
  const started = performance.now();
  const { seed, numLabels } = { ...options, numLabels: shape.numLabels };
  if (!Number.isInteger(numLabels) || numLabels < 2) throw new Error(`need at least 2 labels, got ${numLabels}`);
  for (const t of tags) for (const y of t) if (y >= numLabels) throw new Error(`label index ${y} out of range (numLabels ${numLabels})`);

  // Validation: explicit, or a seeded stratified-by-first-label holdout of the training texts.
  let trainIdx = sequences.map((_, i) => i);
  let valSeqs: readonly Float32Array[];
  let valTags: readonly Int32Array[];
  let heldOut: number[] | undefined;
  if (explicitValidation) {
    valSeqs = explicitValidation.sequences;
    valTags = explicitValidation.tags;
  } else {
    const { train, validation } = holdout(tags, options.validationFraction, childRng(seed, 'validation'));
    trainIdx = train;
    heldOut = validation;
    valSeqs = validation.map((i) => sequences[i]!);
    valTags = validation.map((i) => tags[i]!);
  }
  const trainSeqs = trainIdx.map((i) => sequences[i]!);
  const trainTags = trainIdx.map((i) => tags[i]!);

  const weights = initHeadWeights({ ...shape, hidden: options.hidden }, childRng(seed, 'init'));
  if (options.standardise) {
    const { mean, invStd } = fitStandardisation(trainSeqs, shape.inputSize);
    weights.mean = mean;
    weights.invStd = invStd;
  }
  const classWeights = computeClassWeights(trainTags, numLabels, options.classWeights);

  const optimiser = new AdamW({ lr: options.lr, weightDecay: options.weightDecay });
  optimiser.add('w1', weights.w1, true);
  optimiser.add('b1', weights.b1, false);
  if (options.hidden > 0) {
    optimiser.add('w2', weights.w2, true);
    optimiser.add('b2', weights.b2, false);
  }
  const ownBackend = !options.backend;
  const backend = options.backend ?? (await createOnnxBackend());
  const orderRng = childRng(seed, 'order');
  const dropoutRng = childRng(seed, 'dropout');
  const history: EpochStats[] = [];
  const batchesPerEpoch = Math.ceil(trainSeqs.length / options.batchSize);
  const totalBatches = batchesPerEpoch * options.epochs;
  let best: { weights: HeadWeights; metric: number; loss: number; epoch: number } | undefined;
  let sinceBest = 0;
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const epochStarted = performance.now();
      const order = shuffle(
        trainSeqs.map((_, i) => i),
        orderRng,
      );
      let lossSum = 0;
      let lossWeight = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        if (options.signal?.aborted) throw options.signal.reason ?? new Error('training aborted');
        const batch = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
        const cache = await forward(
          weights,
          batch.map((i) => trainSeqs[i]!),
          backend,
          { dropout: { hidden: options.dropout, input: options.inputDropout, rng: dropoutRng } },
        );
        const targets = concatTags(batch.map((i) => trainTags[i]!));
        const { loss, dLogits, weightSum } = softmaxCrossEntropy(cache.logits, targets, numLabels, classWeights);
        const grads = await backward(weights, cache, dLogits, backend);
        optimiser.update(options.hidden > 0 ? { w1: grads.w1, b1: grads.b1, w2: grads.w2, b2: grads.b2 } : { w1: grads.w1, b1: grads.b1 });
        lossSum += loss * weightSum;
        lossWeight += weightSum;
        options.onProgress?.({
          phase: 'training',
          done: (epoch - 1) * batchesPerEpoch + b + 1,
          total: totalBatches,
          epoch,
          epochs: options.epochs,
          loss: lossSum / Math.max(lossWeight, 1e-12),
          bestValidationMetric: best?.metric,
        });
        // Let other work on the event loop (a server's requests) run between batches.
        if (b % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      const evaluation = await evaluateNetwork(weights, valSeqs, valTags, backend, classWeights, metricName, outsideLabel);
      history.push({ epoch, trainLoss: lossSum / Math.max(lossWeight, 1e-12), validationLoss: evaluation.loss, validationMetric: evaluation.metric, ms: performance.now() - epochStarted });
      const improved = !best || evaluation.metric > best.metric + 1e-9 || (Math.abs(evaluation.metric - best.metric) <= 1e-9 && evaluation.loss < best.loss);
      if (improved) {
        best = { weights: cloneWeights(weights), metric: evaluation.metric, loss: evaluation.loss, epoch };
        sinceBest = 0;
      } else {
        sinceBest++;
      }
      options.onProgress?.({
        phase: 'training',
        done: epoch * batchesPerEpoch,
        total: totalBatches,
        epoch,
        epochs: options.epochs,
        loss: history.at(-1)!.trainLoss,
        validationMetric: evaluation.metric,
        bestValidationMetric: best!.metric,
      });
      if (valSeqs.length === 0) best = { weights: cloneWeights(weights), metric: NaN, loss: NaN, epoch };
      else if (sinceBest >= options.earlyStoppingPatience) break;
    }
  } finally {
    if (ownBackend) await backend.release();
  }
  return {
    weights: best!.weights,
    bestEpoch: best!.epoch,
    epochsRun: history.length,
    history,
    validation: { loss: best!.loss, metric: best!.metric, metricName, samples: valSeqs.length },
    ...(heldOut ? { heldOut } : {}),
    trainingSamples: trainSeqs.length,
    classWeights: Array.from(classWeights),
    ms: performance.now() - started,
  };
}

async function evaluateNetwork(
  weights: HeadWeights,
  sequences: readonly Float32Array[],
  tags: readonly Int32Array[],
  backend: MatMulBackend,
  classWeights: Float32Array,
  metricName: 'accuracy' | 'token_micro_f1',
  outsideLabel: number,
): Promise<{ loss: number; metric: number }> {
  if (sequences.length === 0) return { loss: NaN, metric: NaN };
  const logits = await predictLogits(weights, sequences, backend);
  const all = concatFloat(logits);
  const targets = concatTags(tags);
  const { loss } = softmaxCrossEntropy(all, targets, weights.numLabels, classWeights);
  const predicted = argmaxRows(all, weights.numLabels);
  const metric = metricName === 'accuracy' ? accuracy(predicted, targets) : tokenF1(predicted, targets, outsideLabel).f1;
  return { loss, metric };
}

/** Index of the largest logit per row. */
export function argmaxRows(logits: Float32Array, numLabels: number): Int32Array {
  const out = new Int32Array(logits.length / numLabels);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    for (let c = 1; c < numLabels; c++) if (logits[r * numLabels + c]! > logits[r * numLabels + best]!) best = c;
    out[r] = best;
  }
  return out;
}

function concat<T extends Int32Array | Float32Array>(parts: readonly T[], make: (length: number) => T): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const concatTags = (parts: readonly Int32Array[]) => concat(parts, (n) => new Int32Array(n));
const concatFloat = (parts: readonly Float32Array[]) => concat(parts, (n) => new Float32Array(n));

/** Seeded holdout, stratified by each text's "key" label (its own label, or its first non-O tag). */
function holdout(tags: readonly Int32Array[], fraction: number, rng: () => number): { train: number[]; validation: number[] } {
  if (fraction <= 0) return { train: tags.map((_, i) => i), validation: [] };
  const groups = new Map<number, number[]>();
  tags.forEach((t, i) => {
    let key = t.length === 1 ? t[0]! : -1;
    if (t.length !== 1) for (const y of t) if (y > 0) { key = y; break; }
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  });
  const train: number[] = [];
  const validation: number[] = [];
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const group = shuffle(groups.get(key)!, rng);
    const count = group.length >= 2 ? Math.max(1, Math.round(group.length * fraction)) : 0;
    validation.push(...group.slice(0, count));
    train.push(...group.slice(count));
  }
  train.sort((a, b) => a - b);
  validation.sort((a, b) => a - b);
  return { train, validation };
}

function computeClassWeights(tags: readonly Int32Array[], numLabels: number, mode: CommonTrainOptions['classWeights']): Float32Array {
  if (Array.isArray(mode)) {
    if (mode.length !== numLabels) throw new Error(`classWeights: ${mode.length} weights for ${numLabels} labels`);
    return Float32Array.from(mode);
  }
  const weights = new Float32Array(numLabels).fill(1);
  if (mode === 'none' || mode === undefined) return weights;
  const counts = new Float64Array(numLabels);
  let total = 0;
  for (const t of tags) for (const y of t) if (y >= 0) (counts[y]!++, total++);
  for (let c = 0; c < numLabels; c++) {
    const balanced = counts[c]! > 0 ? total / (numLabels * counts[c]!) : 1;
    weights[c] = Math.min(mode === 'sqrt' ? Math.sqrt(balanced) : balanced, 50);
  }
  return weights;
}
