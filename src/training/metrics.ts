// Evaluation figures: accuracy, token-level F1 (early stopping of taggers), and entity-span precision /
// recall / F1 per label and micro-averaged, where a predicted span counts only if start, end and label all
// match a gold span exactly (CoNLL-style).

export function accuracy(predicted: ArrayLike<number>, targets: ArrayLike<number>): number {
  let correct = 0;
  let counted = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i]! < 0) continue;
    counted++;
    if (predicted[i] === targets[i]) correct++;
  }
  return counted ? correct / counted : NaN;
}

/** Micro P/R/F1 over tokens whose gold or predicted label is not `outside` (a proxy for span F1). */
export function tokenF1(predicted: ArrayLike<number>, targets: ArrayLike<number>, outside: number): PRF {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < targets.length; i++) {
    const y = targets[i]!;
    const p = predicted[i]!;
    if (y < 0) continue;
    if (p !== outside && p === y) tp++;
    else {
      if (p !== outside) fp++;
      if (y !== outside) fn++;
    }
  }
  return prf(tp, fp, fn);
}

export interface PRF {
  precision: number;
  recall: number;
  f1: number;
  /** True positives, false positives, false negatives. */
  tp: number;
  fp: number;
  fn: number;
}

export function prf(tp: number, fp: number, fn: number): PRF {
  const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, tp, fp, fn };
}

export interface Span {
  start: number;
  end: number;
  label: string;
}

export interface SpanMetrics {
  micro: PRF;
  /** Unweighted mean of the per-label F1s (labels that occur in gold or predictions). */
  macroF1: number;
  perLabel: Record<string, PRF & { support: number }>;
  /** Texts and gold spans evaluated. */
  texts: number;
  goldSpans: number;
}

/** Exact-match span metrics over texts: gold[i] and predicted[i] are the spans of text i. */
export function spanMetrics(gold: readonly (readonly Span[])[], predicted: readonly (readonly Span[])[]): SpanMetrics {
  if (gold.length !== predicted.length) throw new Error(`spanMetrics: ${gold.length} gold texts, ${predicted.length} predicted`);
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const at = (label: string) => {
    let c = counts.get(label);
    if (!c) counts.set(label, (c = { tp: 0, fp: 0, fn: 0 }));
    return c;
  };
  let goldSpans = 0;
  gold.forEach((goldSpans_, i) => {
    const key = (s: Span) => `${s.start}:${s.end}:${s.label}`;
    const goldKeys = new Set(goldSpans_.map(key));
    const predKeys = new Set(predicted[i]!.map(key));
    for (const s of goldSpans_) {
      goldSpans++;
      if (predKeys.has(key(s))) at(s.label).tp++;
      else at(s.label).fn++;
    }
    for (const s of predicted[i]!) if (!goldKeys.has(key(s))) at(s.label).fp++;
  });
  const perLabel: SpanMetrics['perLabel'] = {};
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const label of [...counts.keys()].sort()) {
    const c = counts.get(label)!;
    perLabel[label] = { ...prf(c.tp, c.fp, c.fn), support: c.tp + c.fn };
    tp += c.tp;
    fp += c.fp;
    fn += c.fn;
  }
  const labels = Object.values(perLabel);
  return {
    micro: prf(tp, fp, fn),
    macroF1: labels.length ? labels.reduce((sum, l) => sum + l.f1, 0) / labels.length : 0,
    perLabel,
    texts: gold.length,
    goldSpans,
  };
}
