// Multi-task fine-tuning of a shared backbone (as MT-DNN): one backbone updated on every task's data at once, so
// the heads keep sharing one backbone pass per text. Each step is one task's mini-batch; an epoch interleaves the
// tasks' batches in a seeded order. Tasks:
// - sentiment: softmax cross-entropy of a linear head on the pooled embedding;
// - entities: token-level cross-entropy (IOB2 tags over the tokenizer's offsets) of a linear head on the token states;
// - distillation: 1 - cosine between the pooled embedding and the pretrained backbone's on unlabelled text, so that
//   `embed` and `similarity` do not drift.
// The loss is the task's weight times its own loss; rates warm up then decay linearly, lower layers learn slower
// (schedule.ts). After each epoch every task is scored on its validation split; the run stops when no task has
// improved for `patience` epochs and keeps the weights of the best epoch (mean of the labelled tasks' metrics, among
// the epochs whose distillation cosine stays above `minCosine`). Deterministic: a fixed seed gives the same weights.
import { iobTagSet, spansToIob, type CharSpan } from '../../engine/heads/iob.js';
import type { TextEncoding } from '../../engine/tokenizers/tokenizer.js';
import { AdamW } from '../adam.js';
import type { Gradient } from '../autodiff/index.js';
import type { ClassificationExample, TokenClassificationExample } from '../heads.js';
import type { ProgressListener } from '../progress.js';
import { childRng, shuffle } from '../random.js';
import { adaptationBatchDefaults, headProbabilities, selectPseudoLabels, splitAdaptationTexts, validateAdaptation, type AdaptationTask, type PseudoLabelRound, type PseudoLabelSelection, type SelfTrainingOptions } from './adaptation.js';
import { LinearHead } from './linear-head.js';
import { BackboneAdam } from './optimizer.js';
import { layerFactor, parameterDepth, scheduleFactor } from './schedule.js';
import type { EncodedBatch, TrainableEncoder } from './trainable-encoder.js';

export interface SentimentTask {
  labels: string[];
  train: ClassificationExample[];
  validation: ClassificationExample[];
  weight?: number;
}

export interface EntitiesTask {
  entityLabels: string[];
  train: TokenClassificationExample[];
  validation: TokenClassificationExample[];
  weight?: number;
}

export interface DistillationTask {
  /** Unlabelled text. */
  train: string[];
  validation: string[];
  weight?: number;
}

export interface FineTuneTasks {
  sentiment?: SentimentTask;
  entities?: EntitiesTask;
  distillation?: DistillationTask;
  /** Unlabelled target-domain text: the distillation term on it and, optionally, self-training (adaptation.ts). */
  adaptation?: AdaptationTask;
}

/** `adaptation` is the distillation term on target text, `selfTraining` its pseudo-labelled sentiment batches. */
export type TaskName = keyof FineTuneTasks | 'selfTraining';

export interface FineTuneHyperparameters {
  epochs: number;
  /** Batches per task per epoch (a task with fewer batches of data cycles through it). */
  batchesPerEpoch: Partial<Record<TaskName, number>>;
  batchSize: number;
  /** Rate of the top layer at the end of warm-up. */
  baseLr: number;
  /** Each layer below learns at this times the rate of the one above. */
  layerDecay: number;
  warmupFraction: number;
  weightDecay: number;
  /** Rate of the task heads used during fine-tuning. */
  headLr: number;
  /** Epochs without any task improving before the run stops. */
  patience: number;
  /** An epoch whose distillation cosine is below this is never kept. */
  minCosine: number;
  trainEmbeddings: boolean;
  seed: string | number;
}

/**
 * Chosen on the validation splits of two runs on the default backbone (docs/fine-tuning.md): 5e-5 / decay 0.8 /
 * 6 epochs / entities at half weight lost entity F1; 1e-4 / 0.9 / 8 epochs / 50-35-15 batches kept every task up.
 */
export const fineTuneDefaults: FineTuneHyperparameters = {
  epochs: 8,
  batchesPerEpoch: { sentiment: 50, entities: 35, distillation: 15 },
  batchSize: 32,
  baseLr: 1e-4,
  layerDecay: 0.9,
  warmupFraction: 0.1,
  weightDecay: 0.01,
  headLr: 3e-3,
  patience: 2,
  minCosine: 0.95,
  trainEmbeddings: true,
  seed: 'polyhead-fine-tune-v1',
};

/** A task's figures on its validation split after an epoch (epoch 0: before any update): its metric and its loss. */
export interface ValidationPoint {
  task: string;
  epoch: number;
  metric: string;
  value: number;
  loss?: number;
}

export interface FineTuneResult {
  /** The backbone's ONNX with the kept epoch's weights. */
  model: Uint8Array;
  bestEpoch: number;
  epochsRun: number;
  curves: ValidationPoint[];
  hyperparameters: FineTuneHyperparameters;
  /** trainingSeconds: the whole run, validation included; secondsPerStep and secondsPerEpoch: the training steps alone. */
  timing: { steps: number; trainingSeconds: number; secondsPerStep: number; sentencesPerEpoch: number; secondsPerEpoch: number };
  /** With self-training: each refresh of the pseudo-labels, and the last one's texts and labels. */
  selfTraining?: { rounds: PseudoLabelRound[]; last: Array<{ text: string; label: string }> };
}

export interface FineTuneOptions {
  encoder: TrainableEncoder;
  tasks: FineTuneTasks;
  hyperparameters?: Partial<FineTuneHyperparameters>;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

interface Prepared {
  name: TaskName;
  weight: number;
  /** Training items (indices into `encodings`) and their targets. */
  encodings: TextEncoding[];
  validation: TextEncoding[];
  classTargets?: Int32Array;
  validationClassTargets?: Int32Array;
  tagTargets?: Int32Array[];
  validationTagTargets?: Int32Array[];
  /** Distillation: the pretrained pooled embedding of each text. */
  teacher?: Float32Array[];
  validationTeacher?: Float32Array[];
  head?: LinearHead;
  headOptimizer?: AdamW;
  order: number[];
  cursor: number;
  /** Self-training: every target text (`encodings` holds the pseudo-labelled ones of this epoch) and the rule. */
  pool?: { texts: string[]; encodings: TextEncoding[]; labels: string[]; options: SelfTrainingOptions };
}

const INPUT_SCALE_POOLED = (hidden: number) => Math.sqrt(hidden);

export async function fineTuneBackbone(options: FineTuneOptions): Promise<FineTuneResult> {
  const adaptationBatches = options.tasks.adaptation ? adaptationBatchDefaults : {};
  const hp: FineTuneHyperparameters = { ...fineTuneDefaults, ...options.hyperparameters, batchesPerEpoch: { ...fineTuneDefaults.batchesPerEpoch, ...adaptationBatches, ...options.hyperparameters?.batchesPerEpoch } };
  if (options.tasks.adaptation) validateAdaptation(options.tasks.adaptation, Boolean(options.tasks.sentiment?.train.length));
  const { encoder, signal } = options;
  const layers = Math.max(...encoder.params.map((p) => parameterDepth(p.name, 1000)).filter((d) => d < 1000), 0);
  const rng = childRng(hp.seed, 'fine-tune');
  const tasks = await prepareTasks(options.tasks, encoder, hp, rng, options.onProgress, signal);
  if (tasks.length === 0) throw new Error('fineTuneBackbone: no task with data');

  const optimizer = new BackboneAdam(encoder.params, (p) => layerFactor(parameterDepth(p.name, layers), layers, hp.layerDecay), { weightDecay: hp.weightDecay });
  const stepsPerEpoch = tasks.reduce((n, t) => n + (hp.batchesPerEpoch[t.name] ?? 0), 0);
  const totalSteps = stepsPerEpoch * hp.epochs;
  const curves: ValidationPoint[] = [];
  let best = { epoch: 0, score: -Infinity, weights: snapshot(encoder) };
  const bestPerTask = new Map<TaskName, number>();
  let sinceImprovement = 0;
  let step = 0;
  let epochsRun = 0;
  let stepSeconds = 0;
  const started = performance.now();

  // Epoch 0: the pretrained backbone, so the curves start where fine-tuning did.
  const initial = await validate(tasks, encoder, hp);
  for (const point of initial) curves.push({ ...point, epoch: 0 });
  const eligible = (points: ValidationPoint[]) => points.every((p) => !isCosineTask(p.task) || p.value >= hp.minCosine);
  const scoreOf = (points: ValidationPoint[]) => {
    const labelled = points.filter((p) => !isCosineTask(p.task));
    return labelled.length ? labelled.reduce((s, p) => s + p.value, 0) / labelled.length : (points[0]?.value ?? 0);
  };
  best.score = scoreOf(initial);
  for (const p of initial) bestPerTask.set(p.task as TaskName, p.value);

  const rounds: PseudoLabelRound[] = [];
  for (let epoch = 1; epoch <= hp.epochs; epoch++) {
    for (const task of tasks) if (task.pool) rounds.push(await refreshPseudoLabels(task, encoder, epoch, hp, signal));
    const schedule = shuffle(tasks.flatMap((t, i) => Array<number>(batchesOf(t, hp)).fill(i)), rng);
    for (const [k, taskIndex] of schedule.entries()) {
      if (signal?.aborted) throw signal.reason ?? new Error('fine-tuning aborted');
      const task = tasks[taskIndex]!;
      const lr = hp.baseLr * scheduleFactor(step, { baseLr: hp.baseLr, totalSteps, warmupFraction: hp.warmupFraction });
      const stepStarted = performance.now();
      const loss = await trainStep(task, encoder, optimizer, lr, hp);
      stepSeconds += (performance.now() - stepStarted) / 1000;
      step++;
      options.onProgress?.({ phase: 'fine-tune', epoch, done: k + 1, total: schedule.length, loss });
    }
    epochsRun = epoch;
    const points = (await validate(tasks, encoder, hp)).map((p) => ({ ...p, epoch }));
    curves.push(...points);
    let improved = false;
    for (const p of points) {
      if (p.value > (bestPerTask.get(p.task as TaskName) ?? -Infinity) + 1e-4) {
        bestPerTask.set(p.task as TaskName, p.value);
        improved = true;
      }
    }
    const score = scoreOf(points);
    if (eligible(points) && score > best.score) best = { epoch, score, weights: snapshot(encoder) };
    options.onProgress?.({ phase: 'fine-tune', epoch, done: schedule.length, total: schedule.length, bestValidationMetric: best.score });
    sinceImprovement = improved ? 0 : sinceImprovement + 1;
    if (sinceImprovement >= hp.patience) break;
  }
  const trainingSeconds = (performance.now() - started) / 1000;
  restore(encoder, best.weights);
  // Steps alone (forward, backward, updates), without the validation passes between epochs.
  const secondsPerStep = step ? stepSeconds / step : 0;
  return {
    model: encoder.toModelBytes(),
    bestEpoch: best.epoch,
    epochsRun,
    curves,
    hyperparameters: hp,
    timing: { steps: step, trainingSeconds, secondsPerStep, sentencesPerEpoch: stepsPerEpoch * hp.batchSize, secondsPerEpoch: secondsPerStep * stepsPerEpoch },
    ...selfTrainingSummary(tasks, rounds),
  };
}

async function prepareTasks(
  tasks: FineTuneTasks,
  encoder: TrainableEncoder,
  hp: FineTuneHyperparameters,
  rng: ReturnType<typeof childRng>,
  onProgress: ProgressListener | undefined,
  signal: AbortSignal | undefined,
): Promise<Prepared[]> {
  const hidden = encoder.spec.hiddenSize;
  const prepared: Prepared[] = [];
  const base = (name: TaskName, weight: number | undefined, encodings: TextEncoding[], validation: TextEncoding[]): Prepared => ({
    name,
    weight: weight ?? 1,
    encodings,
    validation,
    order: shuffle(encodings.map((_, i) => i), rng),
    cursor: 0,
  });
  if (tasks.sentiment?.train.length) {
    const { labels, train, validation, weight } = tasks.sentiment;
    const index = new Map(labels.map((l, i) => [l, i]));
    const task = base('sentiment', weight, await encoder.encode(train.map((e) => e.text)), await encoder.encode(validation.map((e) => e.text)));
    task.classTargets = Int32Array.from(train, (e) => index.get(e.label)!);
    task.validationClassTargets = Int32Array.from(validation, (e) => index.get(e.label)!);
    task.head = new LinearHead(hidden, labels.length, rng);
    prepared.push(withHeadOptimizer(task, hp));
  }
  if (tasks.entities?.train.length) {
    const { entityLabels, train, validation, weight } = tasks.entities;
    const tagSet = iobTagSet(entityLabels);
    const index = new Map(tagSet.map((t, i) => [t, i]));
    const tags = (encodings: TextEncoding[], examples: TokenClassificationExample[]) =>
      encodings.map((e, i) => Int32Array.from(spansToIob(examples[i]!.entities as CharSpan[], e.offsets), (tag, t) => (e.special?.[t] ? -1 : index.get(tag)!)));
    const task = base('entities', weight, await encoder.encode(train.map((e) => e.text)), await encoder.encode(validation.map((e) => e.text)));
    task.tagTargets = tags(task.encodings, train);
    task.validationTagTargets = tags(task.validation, validation);
    task.head = new LinearHead(hidden, tagSet.length, rng);
    prepared.push(withHeadOptimizer(task, hp));
  }
  if (tasks.distillation?.train.length) {
    const { train, validation, weight } = tasks.distillation;
    const task = base('distillation', weight, await encoder.encode(train), await encoder.encode(validation));
    // The teacher is the backbone as it is now, before any update.
    task.teacher = await pooledOf(encoder, task.encodings, hp.batchSize, onProgress, signal);
    task.validationTeacher = await pooledOf(encoder, task.validation, hp.batchSize, undefined, signal);
    prepared.push(task);
  }
  if (tasks.adaptation?.texts.length) {
    const { train, validation } = splitAdaptationTexts(tasks.adaptation, hp.seed);
    const encodings = await encoder.encode(train);
    if ((tasks.adaptation.distillationWeight ?? 1) > 0) {
      const task = base('adaptation', tasks.adaptation.distillationWeight, encodings, await encoder.encode(validation));
      task.teacher = await pooledOf(encoder, task.encodings, hp.batchSize, onProgress, signal);
      task.validationTeacher = await pooledOf(encoder, task.validation, hp.batchSize, undefined, signal);
      prepared.push(task);
    }
    const sentiment = prepared.find((t) => t.name === 'sentiment');
    if (tasks.adaptation.selfTraining && sentiment) {
      // Shares the sentiment task's head and its optimizer: pseudo-labels train the same head they come from.
      const task: Prepared = { ...base('selfTraining', tasks.adaptation.selfTraining.weight, [], []), head: sentiment.head, headOptimizer: sentiment.headOptimizer };
      task.pool = { texts: train, encodings, labels: tasks.sentiment!.labels, options: tasks.adaptation.selfTraining };
      prepared.push(task);
    }
  }
  return prepared;
}

function withHeadOptimizer(task: Prepared, hp: FineTuneHyperparameters): Prepared {
  const optimizer = new AdamW({ lr: hp.headLr, weightDecay: hp.weightDecay });
  optimizer.add(`${task.name}.w`, task.head!.w, true);
  optimizer.add(`${task.name}.b`, task.head!.b, false);
  task.headOptimizer = optimizer;
  return task;
}

/** The next mini-batch of a task: its shuffled order, cycled (reshuffled each pass, from the run's seed). */
function nextBatch(task: Prepared, size: number): number[] {
  const batch: number[] = [];
  while (batch.length < Math.min(size, task.order.length)) {
    if (task.cursor >= task.order.length) task.cursor = 0;
    batch.push(task.order[task.cursor++]!);
  }
  return batch;
}

async function trainStep(task: Prepared, encoder: TrainableEncoder, optimizer: BackboneAdam, lr: number, hp: FineTuneHyperparameters): Promise<number> {
  const batch = nextBatch(task, hp.batchSize);
  const out = await encoder.forward(batch.map((i) => task.encodings[i]!));
  const { loss, dTokens, dPooled } = taskLoss(task, out, batch, true);
  const scale = (x: Float32Array | undefined) => {
    if (x && task.weight !== 1) for (let i = 0; i < x.length; i++) x[i]! *= task.weight;
    return x;
  };
  const gradients: Map<string, Gradient> = await encoder.backward(scale(dTokens), scale(dPooled));
  optimizer.update(gradients, lr);
  return loss;
}

/** The task's loss on a forward batch and its gradients with respect to the backbone's outputs (and, when `train`, its head updated). */
function taskLoss(task: Prepared, out: EncodedBatch, batch: number[], train: boolean, validation = false): { loss: number; correct: number; count: number; dTokens?: Float32Array; dPooled?: Float32Array; predicted?: Int32Array; targets?: Int32Array } {
  const { rows, tokens, hidden } = out;
  if (task.name === 'sentiment' || task.name === 'selfTraining') {
    const scale = INPUT_SCALE_POOLED(hidden);
    const x = Float32Array.from(out.pooled, (v) => v * scale);
    const logits = task.head!.forward(x, rows);
    const targets = Int32Array.from(batch, (i) => (validation ? task.validationClassTargets! : task.classTargets!)[i]!);
    const { loss, dLogits, correct } = crossEntropy(logits, targets, task.head!.outputs);
    if (!train) return { loss, correct, count: rows };
    const { dW, dB, dX } = task.head!.backward(x, rows, dLogits);
    // Pseudo-labels move the shared head by their weight too (the backbone's share is scaled in trainStep).
    if (task.name === 'selfTraining') for (const g of [dW, dB]) for (let i = 0; i < g.length; i++) g[i]! *= task.weight;
    task.headOptimizer!.update({ 'sentiment.w': dW, 'sentiment.b': dB });
    for (let i = 0; i < dX.length; i++) dX[i]! *= scale;
    return { loss, correct, count: rows, dPooled: dX };
  }
  if (task.name === 'entities') {
    const logits = task.head!.forward(out.tokenStates, rows * tokens);
    const targets = new Int32Array(rows * tokens).fill(-1);
    batch.forEach((i, r) => (validation ? task.validationTagTargets! : task.tagTargets!)[i]!.forEach((tag, t) => (targets[r * tokens + t] = tag)));
    const { loss, dLogits, correct, count, predicted } = crossEntropy(logits, targets, task.head!.outputs);
    if (!train) return { loss, correct, count, predicted, targets };
    const { dW, dB, dX } = task.head!.backward(out.tokenStates, rows * tokens, dLogits);
    task.headOptimizer!.update({ 'entities.w': dW, 'entities.b': dB });
    return { loss, correct, count, dTokens: dX };
  }
  // Distillation: mean over rows of 1 - cos(pooled, teacher).
  const teacher = validation ? task.validationTeacher! : task.teacher!;
  const dPooled = new Float32Array(rows * hidden);
  let loss = 0;
  let cosines = 0;
  batch.forEach((i, r) => {
    const p = out.pooled.subarray(r * hidden, (r + 1) * hidden);
    const q = teacher[i]!;
    let pq = 0, pp = 0, qq = 0;
    for (let h = 0; h < hidden; h++) {
      pq += p[h]! * q[h]!;
      pp += p[h]! * p[h]!;
      qq += q[h]! * q[h]!;
    }
    const np = Math.sqrt(pp) || 1e-12;
    const nq = Math.sqrt(qq) || 1e-12;
    const cos = pq / (np * nq);
    cosines += cos;
    loss += 1 - cos;
    // d(1 - cos)/dp = -(q / (|p||q|) - cos * p / |p|^2), over the batch mean.
    for (let h = 0; h < hidden; h++) dPooled[r * hidden + h] = -(q[h]! / (np * nq) - (cos * p[h]!) / pp) / rows;
  });
  return { loss: loss / rows, correct: cosines, count: rows, dPooled };
}

function crossEntropy(logits: Float32Array, targets: Int32Array, k: number) {
  const dLogits = new Float32Array(logits.length);
  const predicted = new Int32Array(targets.length);
  let loss = 0;
  let count = 0;
  let correct = 0;
  for (let r = 0; r < targets.length; r++) {
    const y = targets[r]!;
    if (y < 0) continue;
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < k; c++) if (logits[r * k + c]! > max) (max = logits[r * k + c]!), (arg = c);
    predicted[r] = arg;
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logits[r * k + c]! - max);
    for (let c = 0; c < k; c++) dLogits[r * k + c] = Math.exp(logits[r * k + c]! - max) / sum - (c === y ? 1 : 0);
    loss += Math.log(sum) - (logits[r * k + y]! - max);
    count++;
    if (arg === y) correct++;
  }
  if (count) for (let i = 0; i < dLogits.length; i++) dLogits[i]! /= count;
  return { loss: count ? loss / count : 0, dLogits, correct, count, predicted };
}

/** Each task's validation figure: sentiment accuracy, entities token accuracy on non-O tags' F1, distillation mean cosine. */
async function validate(tasks: Prepared[], encoder: TrainableEncoder, hp: FineTuneHyperparameters): Promise<ValidationPoint[]> {
  const points: ValidationPoint[] = [];
  for (const task of tasks) {
    // Pseudo-labels have no held-out truth to score.
    if (task.name === 'selfTraining') continue;
    let loss = 0;
    let correct = 0;
    let count = 0;
    // Entities: micro F1 over non-O tags, token level.
    let tp = 0, fp = 0, fn = 0;
    for (let at = 0; at < task.validation.length; at += hp.batchSize) {
      const batch = Array.from({ length: Math.min(hp.batchSize, task.validation.length - at) }, (_, i) => at + i);
      const out = await encoder.forward(batch.map((i) => task.validation[i]!));
      const r = taskLoss(task, out, batch, false, true);
      loss += r.loss * r.count;
      correct += r.correct;
      count += r.count;
      if (task.name === 'entities') {
        r.targets!.forEach((y, p) => {
          if (y < 0) return;
          const guess = r.predicted![p]!;
          if (guess !== 0 && guess === y) tp++;
          else {
            if (guess !== 0) fp++;
            if (y !== 0) fn++;
          }
        });
      }
    }
    const value = task.name === 'entities' ? (2 * tp) / Math.max(1, 2 * tp + fp + fn) : correct / Math.max(1, count);
    points.push({ task: task.name, epoch: 0, metric: task.name === 'sentiment' ? 'accuracy' : task.name === 'entities' ? 'token_micro_f1' : 'mean_cosine_to_pretrained', value, loss: loss / Math.max(1, count) });
  }
  return points;
}

async function pooledOf(encoder: TrainableEncoder, encodings: TextEncoding[], batchSize: number, onProgress: ProgressListener | undefined, signal: AbortSignal | undefined): Promise<Float32Array[]> {
  const pooled: Float32Array[] = [];
  for (let at = 0; at < encodings.length; at += batchSize) {
    if (signal?.aborted) throw signal.reason ?? new Error('fine-tuning aborted');
    const out = await encoder.forward(encodings.slice(at, at + batchSize));
    for (let r = 0; r < out.rows; r++) pooled.push(out.pooled.slice(r * out.hidden, (r + 1) * out.hidden));
    onProgress?.({ phase: 'teacher', done: pooled.length, total: encodings.length });
  }
  return pooled;
}

function snapshot(encoder: TrainableEncoder): Float32Array[] {
  return encoder.params.map((p) => Float32Array.from(p.data));
}

function restore(encoder: TrainableEncoder, weights: Float32Array[]): void {
  encoder.params.forEach((p, i) => p.data.set(weights[i]!));
}

/** Distillation-like tasks: their figure is a cosine to the pretrained embedding, not a labelled metric. */
function isCosineTask(task: string): boolean {
  return task === 'distillation' || task === 'adaptation';
}

/** A task's batches this epoch: the configured count; self-training at most one pass over its pseudo-labels. */
function batchesOf(task: Prepared, hp: FineTuneHyperparameters): number {
  const configured = hp.batchesPerEpoch[task.name] ?? 0;
  if (!task.pool) return configured;
  return Math.min(configured, Math.ceil(task.encodings.length / hp.batchSize));
}

/**
 * Self-training's examples for this epoch: the target texts the sentiment head, with the backbone as it is now,
 * labels confidently (adaptation.ts). Before `startEpoch` (default 2) there are none: an untrained head's
 * confidence means nothing.
 */
async function refreshPseudoLabels(task: Prepared, encoder: TrainableEncoder, epoch: number, hp: FineTuneHyperparameters, signal: AbortSignal | undefined): Promise<PseudoLabelRound> {
  const pool = task.pool!;
  let selection: PseudoLabelSelection = { indices: [], labels: new Int32Array(0), confident: 0, kept: pool.labels.map(() => 0) };
  if (epoch >= (pool.options.startEpoch ?? 2)) {
    if (signal?.aborted) throw signal.reason ?? new Error('fine-tuning aborted');
    const probabilities = await headProbabilities(encoder, task.head!, pool.encodings, hp.batchSize, INPUT_SCALE_POOLED(encoder.spec.hiddenSize));
    selection = selectPseudoLabels(probabilities, task.head!.outputs, pool.options);
  }
  task.encodings = selection.indices.map((i) => pool.encodings[i]!);
  task.classTargets = selection.labels;
  task.order = shuffle(task.encodings.map((_, i) => i), childRng(hp.seed, `self-training:${epoch}`));
  task.cursor = 0;
  return { epoch, texts: pool.encodings.length, confident: selection.confident, kept: selection.kept };
}

function selfTrainingSummary(tasks: Prepared[], rounds: PseudoLabelRound[]): Pick<FineTuneResult, 'selfTraining'> {
  const task = tasks.find((t) => t.pool);
  if (!task) return {};
  const pool = task.pool!;
  const byEncoding = new Map(pool.encodings.map((e, i) => [e, pool.texts[i]!]));
  return { selfTraining: { rounds, last: task.encodings.map((e, i) => ({ text: byEncoding.get(e)!, label: pool.labels[task.classTargets![i]!]! })) } };
}
