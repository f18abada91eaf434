/*
 * Length grouping for padded batches. Every row of a batch is padded to its longest row, so a batch of
 * texts of similar lengths wastes little work; but each run also has a fixed cost, so splitting a batch only
 * pays when the padding it saves exceeds that cost. Over entries sorted by length, the best split into
 * batches is a split into contiguous groups (give each group of any split, taken in order of its longest
 * row, the next run of sorted entries: no group gets longer), which a dynamic programme finds exactly.
 *
 * The programme's inner minimum runs over up to maxSize earlier split points, which cost O(n x maxSize):
 * 4 ms per batch of the node thread at the CUDA sizes (2,048 candidates, batches of 1,024), 14% of its time
 * when serving a GPU. But a group's cost depends only on its count and its longest row, and sorted lengths
 * come in runs of equal values (texts have a few dozen distinct token counts): within a run the minimum
 * is over a sliding window of one linear function, kept by a monotonic deque. Cost: O(n x D + D x maxSize)
 * for D distinct lengths; the same groups, ties broken the same way, as the direct programme.
 */

/**
 * Splits ascending `lengths` into contiguous groups of at most maxSize whose padded size (count x longest)
 * fits the budget (a single entry always fits), minimising the sum of overhead + padded size, and returns
 * the group holding index `anchor` as [first, last]; among equally cheap splits, the largest such group
 * (and among those, the one ending first).
 */
export function cheapestGroup(lengths: ArrayLike<number>, anchor: number, maxSize: number, budget: number, overhead: number): [number, number] {
  const n = lengths.length;
  // places[e]: how many entries a group ending with entry e (its longest) may hold. It depends only on the
  // length, and e - places[e] grows with e (lengths ascend, so places descend).
  const places = new Int32Array(n);
  for (let e = 0; e < n; e++) places[e] = Math.max(1, Math.min(maxSize, Math.floor(budget / lengths[e]!)));
  const before = cheapestPrefixes(lengths, places, anchor, overhead);
  const after = cheapestSuffixes(lengths, places, anchor, overhead);

  // The anchor's group [f, e): f <= anchor < e, e - f <= places[e - 1]. For the ends e of one run of equal
  // lengths (one row, one places) the choice of f is a minimum of before[f] - row x f over [e - places, anchor],
  // a window that only loses its left end as e grows: suffix minima, smallest f among equals (largest group).
  const bestStart = new Int32Array(anchor + 1);
  let best: [number, number] = [anchor, anchor];
  let bestCost = Infinity;
  for (let e = anchor + 1; e <= n && e - anchor <= places[e - 1]!; ) {
    const row = lengths[e - 1]!;
    const room = places[e - 1]!;
    let runEnd = e;
    while (runEnd + 1 <= n && lengths[runEnd]! === row && runEnd + 1 - anchor <= places[runEnd]!) runEnd++;
    const lowest = Math.max(0, e - room);
    let argmin = anchor;
    for (let f = anchor; f >= lowest; f--) {
      if (before[f]! - row * f <= before[argmin]! - row * argmin) argmin = f;
      bestStart[f] = argmin;
    }
    for (; e <= runEnd; e++) {
      const f = bestStart[Math.max(0, e - room)]!;
      const total = before[f]! + overhead + row * (e - f) + after[e]!;
      if (total < bestCost || (total === bestCost && e - f > best[1] - best[0] + 1)) {
        bestCost = total;
        best = [f, e - 1];
      }
    }
  }
  return best;
}

/**
 * before[i] for i <= anchor: the cheapest split of entries [0, i). A group [f, e) costs
 * overhead + lengths[e - 1] x (e - f), so before[e] = overhead + row x e + min over f of (before[f] - row x f),
 * f in [e - places, e - 1]: within a run of equal rows a window sliding right, minimised by a deque.
 */
function cheapestPrefixes(lengths: ArrayLike<number>, places: Int32Array, anchor: number, overhead: number): Float64Array {
  const before = new Float64Array(anchor + 1);
  const deque = new Int32Array(anchor + 1);
  let head = 0;
  let tail = 0;
  let row = NaN;
  const push = (f: number) => {
    const value = before[f]! - row * f;
    while (tail > head && before[deque[tail - 1]!]! - row * deque[tail - 1]! >= value) tail--;
    deque[tail++] = f;
  };
  for (let e = 1; e <= anchor; e++) {
    const low = Math.max(0, e - places[e - 1]!);
    if (lengths[e - 1]! !== row) {
      // A new run: the linear function changed, so the window is minimised afresh.
      row = lengths[e - 1]!;
      head = tail = 0;
      for (let f = low; f < e; f++) push(f);
    } else push(e - 1);
    while (deque[head]! < low) head++;
    const f = deque[head]!;
    before[e] = overhead + row * (e - f) + before[f]!;
  }
  return before;
}

/**
 * after[j] for j > anchor: the cheapest split of entries [j, n). after[f] = overhead + min over ends e of
 * (row(e) x e + after[e]) - row(e) x f, e in (f, f + places(e)]. The slope depends on e, so each run of
 * equal lengths keeps its own deque of ends (filled as f moves left, emptied from the far end as ends fall
 * out of reach), and after[f] is the best of the runs within maxSize of f.
 */
function cheapestSuffixes(lengths: ArrayLike<number>, places: Int32Array, anchor: number, overhead: number): Float64Array {
  const n = lengths.length;
  const after = new Float64Array(n + 1);
  if (anchor + 1 >= n) return after;
  // Runs of equal lengths over the ends e in (anchor + 1, n]: ends with lengths[e - 1] equal.
  const runOf = new Int32Array(n + 1);
  const runStarts: number[] = [];
  for (let e = anchor + 2; e <= n; e++) {
    if (e === anchor + 2 || lengths[e - 1]! !== lengths[e - 2]!) runStarts.push(e);
    runOf[e] = runStarts.length - 1;
  }
  const runCount = runStarts.length;
  const runEnd = (k: number) => (k + 1 < runCount ? runStarts[k + 1]! : n + 1); // exclusive
  // Deque of run k in slots [runStarts[k], runEnd(k)): head..tail-1, newest (smallest e) at head, value
  // row x e + after[e] decreasing towards the tail, where the minimum is.
  const slots = new Int32Array(n + 1);
  const heads = Int32Array.from({ length: runCount }, (_, k) => runEnd(k));
  const tails = Int32Array.from({ length: runCount }, (_, k) => runEnd(k));
  const value = (e: number) => lengths[e - 1]! * e + after[e]!;
  for (let f = n - 1; f > anchor; f--) {
    // after[f + 1] is known now: the end f + 1 joins its run's deque (its group would be f alone).
    const end = f + 1;
    const v = value(end);
    let h = heads[runOf[end]!]!;
    while (h < tails[runOf[end]!]! && value(slots[h]!) >= v) h++;
    slots[--h] = end;
    heads[runOf[end]!] = h;
    let cheapest = Infinity;
    for (let k = runOf[end]!; k < runCount && runStarts[k]! - f <= places[runStarts[k]! - 1]!; k++) {
      const row = lengths[runStarts[k]! - 1]!;
      const reach = f + places[runStarts[k]! - 1]!;
      let t = tails[k]!;
      while (t > heads[k]! && slots[t - 1]! > reach) t--;
      tails[k] = t;
      if (t > heads[k]!) cheapest = Math.min(cheapest, overhead + value(slots[t - 1]!) - row * f);
    }
    after[f] = cheapest;
  }
  return after;
}
