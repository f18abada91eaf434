// Domain adaptation inside a fine-tuning run: unlabelled text of a target domain (product, restaurant and service
// reviews, say) joins the run in two ways, each optional.
// - Target distillation: the distillation term (1 - cosine to the pretrained pooled embedding) on target text, so the
//   backbone keeps what pretraining gave that domain's sentences while the labelled tasks pull it elsewhere.
// - Self-training (Yarowsky 1995; Lee 2013's pseudo-labels): before each epoch from `startEpoch` on, the in-loop
//   sentiment head labels every target text; the texts it labels with probability >= `threshold` become a
//   sentiment task of their own for that epoch, weighted by `weight`, so the backbone and the head fit the target
//   domain's wording. Labels are refreshed each epoch because the head changes. The selection is class-balanced
//   (as class-balanced self-training, Zou et al. 2018): a head trained on another domain tends to be confident for one
//   class on shifted text, and unbalanced pseudo-labels feed that bias back.
// Nothing here reads labelled target data: the rule (threshold, weight, start epoch) is fixed in advance, not tuned.
import type { TextEncoding } from '../../engine/tokenizers/tokenizer.js';
import { childRng, shuffle } from '../random.js';
import type { LinearHead } from './linear-head.js';
import type { TrainableEncoder } from './trainable-encoder.js';

export interface SelfTrainingOptions {
  /** Minimum probability of the head's top label for a text to be pseudo-labelled (e.g. 0.9). */
  threshold: number;
  /** Weight of the pseudo-labelled loss against the labelled tasks (e.g. 0.5). */
  weight: number;
  /** First epoch that trains on pseudo-labels (default 2: the head has seen the labelled data for one epoch). */
  startEpoch?: number;
  /** Keep as many texts of each label as of the rarest one, the most confident first (default true). */
  balance?: boolean;
}

export interface AdaptationTask {
  /** Unlabelled text of the target domain. */
  texts: string[];
  /** Target text to score the target distillation on; default: a seeded tenth of `texts` (at least one). */
  validation?: string[];
  /** Weight of the distillation term on target text (default 1; 0 leaves the term out). */
  distillationWeight?: number;
  /** Pseudo-labels from the in-loop sentiment head (needs the sentiment task); absent: no self-training. */
  selfTraining?: SelfTrainingOptions;
}

/**
 * What a fine-tuning job adapts with when it is given target text and nothing else (the fineTuneBackbone mutation's
 * adaptationDataset): the distillation term on it at weight 1 and, when there is a sentiment task, self-training
 * at threshold 0.9, weight 0.5. Fixed in advance, not tuned on labelled target data (docs/fine-tuning.md).
 */
export function defaultAdaptation(texts: string[], hasSentiment: boolean): AdaptationTask {
  return { texts, distillationWeight: 1, ...(hasSentiment ? { selfTraining: { threshold: 0.9, weight: 0.5 } } : {}) };
}

/** Batches per epoch of the two adaptation terms when the hyperparameters do not say. */
export const adaptationBatchDefaults = { adaptation: 15, selfTraining: 15 } as const;

/** One refresh of the pseudo-labels: how many target texts were confident, and how many of each label were kept. */
export interface PseudoLabelRound {
  epoch: number;
  texts: number;
  confident: number;
  /** Kept per label index, after balancing. */
  kept: number[];
}

export interface PseudoLabelSelection {
  /** Indices of the kept texts, ascending. */
  indices: number[];
  /** The label of each kept text (same order as `indices`). */
  labels: Int32Array;
  confident: number;
  kept: number[];
}

/** The target texts to train and to validate the target distillation on: `validation` when given, else a seeded tenth. */
export function splitAdaptationTexts(task: AdaptationTask, seed: string | number): { train: string[]; validation: string[] } {
  const texts = [...new Set(task.texts.map((t) => t.trim()).filter(Boolean))];
  if (task.validation?.length) return { train: texts, validation: task.validation };
  if (texts.length < 2) return { train: texts, validation: texts };
  const order = shuffle(texts.map((_, i) => i), childRng(seed, 'adaptation-validation'));
  const held = new Set(order.slice(0, Math.max(1, Math.round(texts.length / 10))));
  return { train: texts.filter((_, i) => !held.has(i)), validation: texts.filter((_, i) => held.has(i)) };
}

/**
 * Which texts get a pseudo-label: those whose top probability reaches `threshold`; with `balance`, each label keeps
 * only as many as the rarest label has (its most confident ones; ties by index), so a label the head never predicts
 * confidently means no pseudo-labels at all that round. `probabilities` is [rows, k], row-major.
 */
export function selectPseudoLabels(probabilities: Float32Array, k: number, options: { threshold: number; balance?: boolean }): PseudoLabelSelection {
  if (!(options.threshold > 0 && options.threshold <= 1)) throw new Error(`selfTraining.threshold must be in (0, 1], got ${options.threshold}`);
  const rows = probabilities.length / k;
  const byLabel: Array<Array<{ index: number; p: number }>> = Array.from({ length: k }, () => []);
  let confident = 0;
  for (let r = 0; r < rows; r++) {
    let arg = 0;
    for (let c = 1; c < k; c++) if (probabilities[r * k + c]! > probabilities[r * k + arg]!) arg = c;
    const p = probabilities[r * k + arg]!;
    if (p < options.threshold) continue;
    confident++;
    byLabel[arg]!.push({ index: r, p });
  }
  const cap = (options.balance ?? true) ? Math.min(...byLabel.map((l) => l.length)) : Infinity;
  const chosen: Array<{ index: number; label: number }> = [];
  const kept = byLabel.map((list, label) => {
    const top = [...list].sort((a, b) => b.p - a.p || a.index - b.index).slice(0, cap);
    for (const { index } of top) chosen.push({ index, label });
    return top.length;
  });
  chosen.sort((a, b) => a.index - b.index);
  return { indices: chosen.map((c) => c.index), labels: Int32Array.from(chosen, (c) => c.label), confident, kept };
}

/**
 * The sentiment head's label probabilities for each text, with the backbone as it is now (forward passes only).
 * `inputScale` is what the run multiplies the pooled embedding by before the head.
 */
export async function headProbabilities(encoder: TrainableEncoder, head: LinearHead, encodings: readonly TextEncoding[], batchSize: number, inputScale: number): Promise<Float32Array> {
  const k = head.outputs;
  const probabilities = new Float32Array(encodings.length * k);
  for (let at = 0; at < encodings.length; at += batchSize) {
    const out = await encoder.forward(encodings.slice(at, at + batchSize));
    const logits = head.forward(Float32Array.from(out.pooled, (v) => v * inputScale), out.rows);
    for (let r = 0; r < out.rows; r++) {
      let max = -Infinity;
      for (let c = 0; c < k; c++) max = Math.max(max, logits[r * k + c]!);
      let sum = 0;
      for (let c = 0; c < k; c++) sum += Math.exp(logits[r * k + c]! - max);
      for (let c = 0; c < k; c++) probabilities[(at + r) * k + c] = Math.exp(logits[r * k + c]! - max) / sum;
    }
  }
  return probabilities;
}

/** Checks an adaptation task before any work. */
export function validateAdaptation(task: AdaptationTask, hasSentiment: boolean): void {
  const weight = task.distillationWeight ?? 1;
  if (!(weight >= 0)) throw new Error(`adaptation.distillationWeight must be >= 0, got ${weight}`);
  const st = task.selfTraining;
  if (!st) return;
  if (!hasSentiment) throw new Error('adaptation.selfTraining needs the sentiment task: its head gives the pseudo-labels');
  if (!(st.threshold > 0 && st.threshold <= 1)) throw new Error(`adaptation.selfTraining.threshold must be in (0, 1], got ${st.threshold}`);
  if (!(st.weight > 0)) throw new Error(`adaptation.selfTraining.weight must be > 0, got ${st.weight}`);
  if (st.startEpoch !== undefined && !(Number.isInteger(st.startEpoch) && st.startEpoch >= 1)) throw new Error(`adaptation.selfTraining.startEpoch must be an integer >= 1, got ${st.startEpoch}`);
}
