// Seeded randomness and dataset splits. Everything here is deterministic: the same input order and
// seed give the same output on every machine (no Math.random, no locale-dependent sorting).

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/** FNV-1a hash of a string to an unsigned 32-bit integer (turns string seeds into numbers). */
export function hashSeed(seed: string | number): number {
  if (typeof seed === 'number' && Number.isInteger(seed)) return seed >>> 0;
  const text = String(seed);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a small, fast 32-bit PRNG; good enough for shuffling and sampling (not for crypto). */
export function createRng(seed: string | number): Rng {
  let state = hashSeed(seed);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick: empty list');
  return items[randomInt(rng, items.length)]!;
}

/** Fisher-Yates shuffle into a new array; the input is left untouched. */
export function shuffle<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface SplitOptions {
  seed: string | number;
  /** Fraction of each label's items that go to validation (default 0.1). */
  validation?: number;
  /** Fraction of each label's items that go to test (default 0.2). */
  test?: number;
}

export interface DatasetSplit<T> {
  train: T[];
  validation: T[];
  test: T[];
}

/**
 * Splits items into train/validation/test, stratified by `keyOf(item)`: each key's items are
 * shuffled on their own and cut by the fractions (rounded per key), so every split keeps the
 * label proportions of the whole. Each split is then shuffled so labels are interleaved.
 */
export function stratifiedSplit<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  options: SplitOptions,
): DatasetSplit<T> {
  const validationFraction = options.validation ?? 0.1;
  const testFraction = options.test ?? 0.2;
  if (validationFraction < 0 || testFraction < 0 || validationFraction + testFraction >= 1) {
    throw new Error(`split fractions must be >= 0 and sum below 1 (validation ${validationFraction}, test ${testFraction})`);
  }
  const rng = createRng(options.seed);
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  const split: DatasetSplit<T> = { train: [], validation: [], test: [] };
  // Keys in code-unit order, so the result does not depend on which label happens to come first.
  for (const key of [...groups.keys()].sort()) {
    const group = shuffle(groups.get(key)!, rng);
    const testCount = Math.round(group.length * testFraction);
    const validationCount = Math.round(group.length * validationFraction);
    split.test.push(...group.slice(0, testCount));
    split.validation.push(...group.slice(testCount, testCount + validationCount));
    split.train.push(...group.slice(testCount + validationCount));
  }
  return { train: shuffle(split.train, rng), validation: shuffle(split.validation, rng), test: shuffle(split.test, rng) };
}

/** `stratifiedSplit` on the items' `label` field: the split used for labelled text datasets. */
export function splitDataset<T extends { label: string }>(items: readonly T[], options: SplitOptions): DatasetSplit<T> {
  return stratifiedSplit(items, (item) => item.label, options);
}
