// The head network, for both head kinds: standardise the backbone features, a dense layer that sees a window
// of 2w+1 neighbouring positions (w = 0 for a sentence classifier), then either the logits (linear head) or
// ReLU + a second dense layer (MLP head).
//
// The window is computed as the exported ONNX graph computes it (export.ts), so served == trained:
//   X  = standardise(pad(states, w zero rows on each side))          [rows + 2w, D]
//   A  = X * W1, W1 = [W1_0 | W1_1 | ... | W1_2w]                     [rows + 2w, (2w+1) * O1]
//   z1[t] = sum_k A[t + k, block k] + b1                              (block k reads position t + k - w)
// Padding rows are raw zero states, standardised like any other row: the same as the padding a batch gets
// in the engine (the backbone zeroes token states past each text's end).
import type { MatMulBackend } from './linalg.js';
import type { Rng } from '../datasets/split.js';

export interface HeadWeights {
  /** Width of one backbone feature vector (512 for USE-lite). */
  inputSize: number;
  /** Neighbours on each side a position sees (0 = the position alone; classifiers use 0). */
  window: number;
  /** Hidden units; 0 = a linear head. */
  hidden: number;
  numLabels: number;
  /** Standardisation: x' = (x - mean) * invStd. [inputSize] each. */
  mean: Float32Array;
  invStd: Float32Array;
  /** [inputSize, (2 * window + 1) * firstOut], firstOut = hidden || numLabels. */
  w1: Float32Array;
  /** [firstOut] */
  b1: Float32Array;
  /** [hidden, numLabels]; empty for a linear head. */
  w2: Float32Array;
  /** [numLabels]; empty for a linear head. */
  b2: Float32Array;
}

export function firstLayerSize(w: Pick<HeadWeights, 'hidden' | 'numLabels'>): number {
  return w.hidden > 0 ? w.hidden : w.numLabels;
}

/** Xavier/Glorot-uniform initialisation (seeded); biases 0; identity standardisation until fitted. */
export function initHeadWeights(shape: { inputSize: number; window: number; hidden: number; numLabels: number }, rng: Rng): HeadWeights {
  const { inputSize, window, hidden, numLabels } = shape;
  const out1 = hidden > 0 ? hidden : numLabels;
  const span = 2 * window + 1;
  const w1 = new Float32Array(inputSize * span * out1);
  const limit1 = Math.sqrt(6 / (inputSize * span + out1));
  for (let i = 0; i < w1.length; i++) w1[i] = (rng() * 2 - 1) * limit1;
  const w2 = new Float32Array(hidden > 0 ? hidden * numLabels : 0);
  const limit2 = Math.sqrt(6 / (hidden + numLabels));
  for (let i = 0; i < w2.length; i++) w2[i] = (rng() * 2 - 1) * limit2;
  return {
    inputSize,
    window,
    hidden,
    numLabels,
    mean: new Float32Array(inputSize),
    invStd: new Float32Array(inputSize).fill(1),
    w1,
    b1: new Float32Array(out1),
    w2,
    b2: new Float32Array(hidden > 0 ? numLabels : 0),
  };
}

export function cloneWeights(w: HeadWeights): HeadWeights {
  return { ...w, mean: w.mean.slice(), invStd: w.invStd.slice(), w1: w.w1.slice(), b1: w.b1.slice(), w2: w.w2.slice(), b2: w.b2.slice() };
}

/** Per-feature mean and 1/std over the given vectors (each `size` wide, `rows` of them per array). */
export function fitStandardisation(vectors: readonly Float32Array[], size: number): { mean: Float32Array; invStd: Float32Array } {
  const sum = new Float64Array(size);
  const sumSq = new Float64Array(size);
  let count = 0;
  for (const v of vectors) {
    for (let r = 0; r < v.length; r += size) {
      for (let i = 0; i < size; i++) {
        const x = v[r + i]!;
        sum[i]! += x;
        sumSq[i]! += x * x;
      }
      count++;
    }
  }
  const mean = new Float32Array(size);
  const invStd = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const m = count ? sum[i]! / count : 0;
    const variance = count ? Math.max(0, sumSq[i]! / count - m * m) : 1;
    mean[i] = m;
    invStd[i] = 1 / Math.sqrt(variance + 1e-6);
  }
  return { mean, invStd };
}

/** One sequence of feature rows: a single row for a sentence classifier, one per token for a tagger. */
export type Sequence = Float32Array;

export interface BatchCache {
  /** Rows (positions) in the batch, and where each sequence's rows start. */
  positions: number;
  starts: Int32Array;
  lengths: Int32Array;
  /** Standardised, padded input [paddedRows, D] (with input dropout applied when training). */
  x: Float32Array;
  paddedRows: number;
  /** Pre-activation of the first layer [positions, firstOut]. */
  z1: Float32Array;
  /** Hidden activations after ReLU (and dropout) [positions, hidden]; empty for a linear head. */
  h: Float32Array;
  /** Dropout multipliers of the hidden layer (0 or 1/(1-p)); empty when not used. */
  hiddenMask: Float32Array;
  logits: Float32Array;
}

export interface ForwardOptions {
  /** Training-time dropout on the hidden layer and the input (inverted dropout), with this RNG. */
  dropout?: { hidden: number; input: number; rng: Rng };
}

/** Forward pass over a batch of sequences (each `rows * inputSize` floats). */
export async function forward(w: HeadWeights, sequences: readonly Sequence[], backend: MatMulBackend, options: ForwardOptions = {}): Promise<BatchCache> {
  const D = w.inputSize;
  const pad = w.window;
  const span = 2 * pad + 1;
  const out1 = firstLayerSize(w);
  const lengths = Int32Array.from(sequences, (s) => s.length / D);
  const starts = new Int32Array(sequences.length);
  let positions = 0;
  let paddedRows = 0;
  sequences.forEach((_, i) => {
    starts[i] = positions;
    positions += lengths[i]!;
    paddedRows += lengths[i]! + 2 * pad;
  });
  // Standardised input with padding rows.
  const x = new Float32Array(paddedRows * D);
  const padRow = new Float32Array(D);
  for (let i = 0; i < D; i++) padRow[i] = (0 - w.mean[i]!) * w.invStd[i]!;
  let row = 0;
  const inputDrop = options.dropout?.input ?? 0;
  const rng = options.dropout?.rng;
  for (let s = 0; s < sequences.length; s++) {
    const seq = sequences[s]!;
    for (let p = 0; p < pad; p++, row++) x.set(padRow, row * D);
    for (let t = 0; t < lengths[s]!; t++, row++) {
      const base = row * D;
      const src = t * D;
      for (let i = 0; i < D; i++) x[base + i] = (seq[src + i]! - w.mean[i]!) * w.invStd[i]!;
      if (inputDrop > 0 && rng) {
        const keep = 1 / (1 - inputDrop);
        for (let i = 0; i < D; i++) x[base + i] = rng() < inputDrop ? 0 : x[base + i]! * keep;
      }
    }
    for (let p = 0; p < pad; p++, row++) x.set(padRow, row * D);
  }
  const a = await backend.matmul(x, paddedRows, D, w.w1, span * out1);
  // z1[t] = b1 + sum_k A[t + k, block k]
  const z1 = new Float32Array(positions * out1);
  const width = span * out1;
  let paddedStart = 0;
  for (let s = 0; s < sequences.length; s++) {
    for (let t = 0; t < lengths[s]!; t++) {
      const out = (starts[s]! + t) * out1;
      // Same order of float32 additions as the exported graph: blocks 0..2w, then the bias.
      for (let k = 0; k < span; k++) {
        const src = (paddedStart + t + k) * width + k * out1;
        if (k === 0) for (let j = 0; j < out1; j++) z1[out + j] = a[src + j]!;
        else for (let j = 0; j < out1; j++) z1[out + j]! += a[src + j]!;
      }
      for (let j = 0; j < out1; j++) z1[out + j]! += w.b1[j]!;
    }
    paddedStart += lengths[s]! + 2 * pad;
  }
  if (w.hidden === 0) {
    return { positions, starts, lengths, x, paddedRows, z1, h: new Float32Array(0), hiddenMask: new Float32Array(0), logits: z1 };
  }
  const H = w.hidden;
  const L = w.numLabels;
  const h = new Float32Array(positions * H);
  const hiddenDrop = options.dropout?.hidden ?? 0;
  const hiddenMask = hiddenDrop > 0 && rng ? new Float32Array(positions * H) : new Float32Array(0);
  for (let i = 0; i < h.length; i++) {
    let v = z1[i]! > 0 ? z1[i]! : 0;
    if (hiddenMask.length) {
      const m = rng!() < hiddenDrop ? 0 : 1 / (1 - hiddenDrop);
      hiddenMask[i] = m;
      v *= m;
    }
    h[i] = v;
  }
  const logits = new Float32Array(positions * L);
  for (let p = 0; p < positions; p++) {
    for (let c = 0; c < L; c++) {
      let sum = w.b2[c]!;
      for (let j = 0; j < H; j++) sum += h[p * H + j]! * w.w2[j * L + c]!;
      logits[p * L + c] = sum;
    }
  }
  return { positions, starts, lengths, x, paddedRows, z1, h, hiddenMask, logits };
}

export interface Gradients {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/**
 * Weighted softmax cross-entropy over all positions: loss = sum_p weight(p) * CE(p) / sum_p weight(p),
 * where weight(p) = classWeights[target(p)]. Targets < 0 are ignored. Returns the loss and dLoss/dlogits.
 */
export function softmaxCrossEntropy(
  logits: Float32Array,
  targets: Int32Array,
  numLabels: number,
  classWeights?: Float32Array,
): { loss: number; dLogits: Float32Array; weightSum: number } {
  const positions = targets.length;
  const dLogits = new Float32Array(logits.length);
  let total = 0;
  let weightSum = 0;
  const probs = new Float64Array(numLabels);
  for (let p = 0; p < positions; p++) {
    const y = targets[p]!;
    if (y < 0) continue;
    const weight = classWeights ? classWeights[y]! : 1;
    const base = p * numLabels;
    let max = -Infinity;
    for (let c = 0; c < numLabels; c++) max = Math.max(max, logits[base + c]!);
    let sum = 0;
    for (let c = 0; c < numLabels; c++) sum += probs[c] = Math.exp(logits[base + c]! - max);
    for (let c = 0; c < numLabels; c++) {
      probs[c]! /= sum;
      dLogits[base + c] = weight * (probs[c]! - (c === y ? 1 : 0));
    }
    total += weight * -Math.log(Math.max(probs[y]!, 1e-30));
    weightSum += weight;
  }
  if (weightSum > 0) for (let i = 0; i < dLogits.length; i++) dLogits[i]! /= weightSum;
  return { loss: weightSum > 0 ? total / weightSum : 0, dLogits, weightSum };
}

/** Backward pass from dLoss/dlogits to the weight gradients (the backbone is frozen: no input gradient). */
export async function backward(w: HeadWeights, cache: BatchCache, dLogits: Float32Array, backend: MatMulBackend): Promise<Gradients> {
  const D = w.inputSize;
  const pad = w.window;
  const span = 2 * pad + 1;
  const out1 = firstLayerSize(w);
  const { positions } = cache;
  let dz1: Float32Array;
  const gw2 = new Float32Array(w.w2.length);
  const gb2 = new Float32Array(w.b2.length);
  if (w.hidden === 0) {
    dz1 = dLogits;
  } else {
    const H = w.hidden;
    const L = w.numLabels;
    dz1 = new Float32Array(positions * H);
    for (let p = 0; p < positions; p++) {
      for (let c = 0; c < L; c++) {
        const g = dLogits[p * L + c]!;
        if (g === 0) continue;
        gb2[c]! += g;
        for (let j = 0; j < H; j++) {
          gw2[j * L + c]! += cache.h[p * H + j]! * g;
          dz1[p * H + j]! += w.w2[j * L + c]! * g;
        }
      }
    }
    for (let i = 0; i < dz1.length; i++) {
      if (cache.z1[i]! <= 0) dz1[i] = 0;
      else if (cache.hiddenMask.length) dz1[i]! *= cache.hiddenMask[i]!;
    }
  }
  const gb1 = new Float32Array(out1);
  const width = span * out1;
  const dA = new Float32Array(cache.paddedRows * width);
  let paddedStart = 0;
  for (let s = 0; s < cache.lengths.length; s++) {
    const length = cache.lengths[s]!;
    for (let t = 0; t < length; t++) {
      const src = (cache.starts[s]! + t) * out1;
      for (let j = 0; j < out1; j++) gb1[j]! += dz1[src + j]!;
      for (let k = 0; k < span; k++) {
        const dst = (paddedStart + t + k) * width + k * out1;
        for (let j = 0; j < out1; j++) dA[dst + j]! += dz1[src + j]!;
      }
    }
    paddedStart += length + 2 * pad;
  }
  const gw1 = await backend.matmulTransA(cache.x, cache.paddedRows, D, dA, width);
  return { w1: gw1, b1: gb1, w2: gw2, b2: gb2 };
}

/** Logits for sequences in inference mode (no dropout), in chunks of about `chunkRows` positions. */
export async function predictLogits(w: HeadWeights, sequences: readonly Sequence[], backend: MatMulBackend, chunkRows = 2048): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const L = w.numLabels;
  for (let i = 0; i < sequences.length; ) {
    let rows = 0;
    let j = i;
    while (j < sequences.length && (j === i || rows + sequences[j]!.length / w.inputSize <= chunkRows)) rows += sequences[j++]!.length / w.inputSize;
    const cache = await forward(w, sequences.slice(i, j), backend);
    for (let s = 0; s < j - i; s++) out.push(cache.logits.slice(cache.starts[s]! * L, (cache.starts[s]! + cache.lengths[s]!) * L));
    i = j;
  }
  return out;
}
