// Calibration of a classifier's scores: expected calibration error and temperature scaling.
//
// ECE (Naeini et al. 2015; Guo et al. 2017, "On Calibration of Modern Neural Networks"): the top-class
// scores are put into M equal-width bins over [0, 1] (bin m holds scores in ((m-1)/M, m/M], a score of 0 in
// the first), and ECE = sum over bins of |B_m| / N * |accuracy(B_m) - mean score(B_m)|. Polyhead uses M = 15
// as Guo et al. did.
//
// Temperature scaling (Guo et al. 2017): one scalar T > 0 divides every logit, softmax(z / T); T is chosen to
// minimise the negative log-likelihood of held-out labels. Argmax, and so accuracy, do not change.
// These few lines are written here rather than taken from a library: the project has no numerics dependency,
// and the fit is a one-dimensional convex problem (see fitTemperature).

/** Bins of the expected calibration error. */
export const eceBins = 15;

export interface CalibrationBin {
  /** Upper edge of the bin (its lower edge is the previous bin's upper edge). */
  upper: number;
  count: number;
  accuracy: number;
  meanScore: number;
}

/** ECE over `scores[i]` (the top-class score of example i) and `correct[i]` (whether its argmax was right). */
export function expectedCalibrationError(scores: ArrayLike<number>, correct: ArrayLike<boolean>, bins = eceBins): number {
  return calibrationBins(scores, correct, bins).ece;
}

/** The reliability diagram behind the ECE: per bin its count, accuracy and mean score. */
export function calibrationBins(scores: ArrayLike<number>, correct: ArrayLike<boolean>, bins = eceBins): { ece: number; bins: CalibrationBin[] } {
  if (scores.length !== correct.length) throw new Error(`calibrationBins: ${scores.length} scores, ${correct.length} outcomes`);
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`calibrationBins: bins must be a positive integer, got ${bins}`);
  const count = new Float64Array(bins);
  const hits = new Float64Array(bins);
  const sum = new Float64Array(bins);
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (!(s >= 0 && s <= 1)) throw new Error(`calibrationBins: score ${s} of example ${i} is outside [0, 1]`);
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(s * bins) - 1));
    count[b]!++;
    sum[b]! += s;
    if (correct[i]) hits[b]!++;
  }
  let ece = 0;
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const n = count[b]!;
    const accuracy = n ? hits[b]! / n : NaN;
    const meanScore = n ? sum[b]! / n : NaN;
    if (n) ece += (n / scores.length) * Math.abs(accuracy - meanScore);
    out.push({ upper: (b + 1) / bins, count: n, accuracy, meanScore });
  }
  return { ece: scores.length ? ece : NaN, bins: out };
}

/** Row-wise softmax of logits [rows, labels] divided by `temperature`, in float64. */
export function softmaxWithTemperature(logits: ArrayLike<number>, labels: number, temperature = 1): Float64Array {
  if (!(temperature > 0)) throw new Error(`softmaxWithTemperature: temperature must be > 0, got ${temperature}`);
  const rows = logits.length / labels;
  const out = new Float64Array(logits.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < labels; c++) max = Math.max(max, logits[r * labels + c]! / temperature);
    let total = 0;
    for (let c = 0; c < labels; c++) total += out[r * labels + c] = Math.exp(logits[r * labels + c]! / temperature - max);
    for (let c = 0; c < labels; c++) out[r * labels + c]! /= total;
  }
  return out;
}

/** Mean negative log-likelihood of `targets` under softmax(logits / temperature). */
export function temperatureNll(logits: ArrayLike<number>, targets: ArrayLike<number>, labels: number, temperature: number): number {
  const rows = targets.length;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < labels; c++) max = Math.max(max, logits[r * labels + c]! / temperature);
    let sum = 0;
    for (let c = 0; c < labels; c++) sum += Math.exp(logits[r * labels + c]! / temperature - max);
    total += max + Math.log(sum) - logits[r * labels + targets[r]!]! / temperature;
  }
  return total / rows;
}

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL on the fitting set at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  samples: number;
}

/** Range searched for T: wider than any useful calibration, narrow enough to stay finite. */
export const temperatureRange = { min: 0.05, max: 20 } as const;

/**
 * The temperature minimising the mean NLL of `targets` under softmax(logits / T), T in temperatureRange.
 * The NLL is convex in b = 1/T (a log-sum-exp of b * z minus the linear b * z_y), so it is unimodal in
 * log T too and a golden-section search on log T finds the minimum; a fixed number of steps makes the result
 * deterministic (the bracket shrinks to ~1e-12 in log T). When the minimum lies on the range's edge (e.g.
 * separable logits, where the NLL keeps falling as T -> 0), the edge is returned.
 */
export function fitTemperature(logits: ArrayLike<number>, targets: ArrayLike<number>, labels: number): TemperatureFit {
  const samples = targets.length;
  if (logits.length !== samples * labels) throw new Error(`fitTemperature: ${logits.length} logits for ${samples} targets of ${labels} labels`);
  for (let i = 0; i < samples; i++) if (!(targets[i]! >= 0 && targets[i]! < labels)) throw new Error(`fitTemperature: target ${targets[i]} of row ${i} out of range`);
  if (samples === 0) return { temperature: 1, nllBefore: NaN, nllAfter: NaN, samples };
  const nll = (logT: number) => temperatureNll(logits, targets, labels, Math.exp(logT));
  const ratio = (Math.sqrt(5) - 1) / 2;
  let lo = Math.log(temperatureRange.min);
  let hi = Math.log(temperatureRange.max);
  let a = hi - ratio * (hi - lo);
  let b = lo + ratio * (hi - lo);
  let fa = nll(a);
  let fb = nll(b);
  for (let step = 0; step < 60; step++) {
    if (fa <= fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - ratio * (hi - lo);
      fa = nll(a);
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + ratio * (hi - lo);
      fb = nll(b);
    }
  }
  const temperature = Math.exp((lo + hi) / 2);
  return { temperature, nllBefore: nll(0), nllAfter: temperatureNll(logits, targets, labels, temperature), samples };
}

/** Top-class score and correctness per row of probabilities [rows, labels]. */
export function topClass(probabilities: ArrayLike<number>, labels: number, targets: ArrayLike<number>): { scores: Float64Array; correct: boolean[]; predicted: Int32Array } {
  const rows = targets.length;
  const scores = new Float64Array(rows);
  const predicted = new Int32Array(rows);
  const correct: boolean[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < labels; c++) if (probabilities[r * labels + c]! > probabilities[r * labels + best]!) best = c;
    predicted[r] = best;
    scores[r] = probabilities[r * labels + best]!;
    correct.push(best === targets[r]);
  }
  return { scores, correct, predicted };
}

/**
 * Logits that give these softmax probabilities: log p differs from the logits by one constant per row, which
 * softmax ignores, so softmax(log p / T) is what the head would serve with its logits divided by T.
 * Lets a temperature be fitted on what a served head answered, without its logits.
 */
export function logitsFromProbabilities(probabilities: ArrayLike<number>): Float64Array {
  return Float64Array.from(probabilities, (p) => Math.log(Math.max(p, Number.MIN_VALUE)));
}
