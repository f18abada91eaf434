// Figures of a classification head on labelled examples, from what the head served: accuracy, macro F1
// and the expected calibration error of its top-class scores.
import { accuracy, prf, type PRF } from '../training/metrics.js';
import { calibrationBins, eceBins, type CalibrationBin } from './calibration.js';

export interface ServedClassification {
  /** The label the head answered. */
  label: string;
  /** Its score (the top-class probability). */
  score: number;
}

export interface ClassificationFigures {
  samples: number;
  accuracy: number;
  /** Unweighted mean of the per-label F1s, over labels that occur in the gold labels or the answers. */
  macroF1: number;
  /** Expected calibration error, 15 equal-width bins over the top-class score. */
  expectedCalibrationError: number;
  perLabel: Record<string, PRF & { support: number }>;
  bins: CalibrationBin[];
}

/** `gold[i]` is the label of example i, `served[i]` what the head answered for it. */
export function classificationFigures(labels: readonly string[], gold: readonly string[], served: readonly ServedClassification[]): ClassificationFigures {
  if (gold.length !== served.length) throw new Error(`classificationFigures: ${gold.length} gold labels, ${served.length} answers`);
  const index = new Map(labels.map((l, i) => [l, i]));
  const targets = gold.map((g) => index.get(g) ?? -1);
  const predicted = served.map((s) => index.get(s.label) ?? -2);
  const perLabel: ClassificationFigures['perLabel'] = {};
  for (const [label, k] of index) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < gold.length; i++) {
      if (predicted[i] === k && targets[i] === k) tp++;
      else if (predicted[i] === k) fp++;
      else if (targets[i] === k) fn++;
    }
    if (tp + fp + fn > 0) perLabel[label] = { ...prf(tp, fp, fn), support: tp + fn };
  }
  const f1s = Object.values(perLabel).map((m) => m.f1);
  const { ece, bins } = calibrationBins(
    served.map((s) => s.score),
    served.map((s, i) => s.label === gold[i]),
    eceBins,
  );
  return {
    samples: gold.length,
    accuracy: accuracy(predicted, targets),
    macroF1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : NaN,
    expectedCalibrationError: ece,
    perLabel,
    bins,
  };
}
