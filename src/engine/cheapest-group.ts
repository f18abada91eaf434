/*
 * Length grouping for padded batches. Every row of a batch is padded to its longest row, so a batch of
 * texts of similar lengths wastes little work; but each run also has a fixed cost, so splitting a batch only
 * pays when the padding it saves exceeds that cost. Over entries sorted by length, the best split into
 * batches is a split into contiguous groups (give each group of any split, taken in order of its longest
 * row, the next run of sorted entries: no group gets longer), which a dynamic programme finds exactly.
 * Cost: O(n x maxSize).
 */

/**
 * Splits ascending `lengths` into contiguous groups of at most maxSize whose padded size (count x longest)
 * fits the budget (a single entry always fits), minimising the sum of overhead + padded size, and returns
 * the group holding index `anchor` as [first, last]; among equally cheap splits, the largest such group.
 */
export function cheapestGroup(lengths: ArrayLike<number>, anchor: number, maxSize: number, budget: number, overhead: number): [number, number] {
  const n = lengths.length;
  // places[e]: how many entries a group ending with entry e (its longest) may hold.
  const places = new Int32Array(n);
  for (let e = 0; e < n; e++) places[e] = Math.max(1, Math.min(maxSize, Math.floor(budget / lengths[e]!)));
  // before[i]: cheapest split of entries [0, i); after[j]: of entries [j, n). A group [f, e) costs
  // overhead + lengths[e - 1] x (e - f).
  const before = new Float64Array(n + 1).fill(Infinity);
  const after = new Float64Array(n + 1).fill(Infinity);
  before[0] = 0;
  for (let e = 1; e <= anchor; e++) {
    const row = lengths[e - 1]!;
    for (let f = e - 1, stop = Math.max(0, e - places[e - 1]!); f >= stop; f--) {
      before[e] = Math.min(before[e]!, before[f]! + overhead + row * (e - f));
    }
  }
  after[n] = 0;
  for (let f = n - 1; f > anchor; f--) {
    for (let e = f + 1; e <= n && e - f <= places[e - 1]!; e++) {
      after[f] = Math.min(after[f]!, overhead + lengths[e - 1]! * (e - f) + after[e]!);
    }
  }
  let best: [number, number] = [anchor, anchor];
  let bestCost = Infinity;
  // Longer rows leave fewer places: once the anchor no longer fits, no later end can hold it.
  for (let e = anchor + 1; e <= n && e - anchor <= places[e - 1]!; e++) {
    for (let f = anchor, stop = Math.max(0, e - places[e - 1]!); f >= stop; f--) {
      const total = before[f]! + overhead + lengths[e - 1]! * (e - f) + after[e]!;
      if (total < bestCost || (total === bestCost && e - f > best[1] - best[0] + 1)) {
        bestCost = total;
        best = [f, e - 1];
      }
    }
  }
  return best;
}
