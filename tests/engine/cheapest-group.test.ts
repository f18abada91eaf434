import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cheapestGroup } from '../../src/engine/cheapest-group.js';

/** Every split of `lengths` into contiguous groups within the limits, by brute force. */
function splits(lengths: number[], maxSize: number, budget: number): Array<Array<[number, number]>> {
  if (lengths.length === 0) return [[]];
  const out: Array<Array<[number, number]>> = [];
  const n = lengths.length;
  for (let first = n - 1; first >= 0; first--) {
    const count = n - first;
    if (count > 1 && (count > maxSize || count * lengths[n - 1]! > budget)) break;
    for (const rest of splits(lengths.slice(0, first), maxSize, budget)) out.push([...rest, [first, n - 1]]);
  }
  return out;
}

/**
 * The direct dynamic programme, O(n x maxSize): what cheapestGroup computed before its minima were kept by
 * deques over runs of equal lengths. The same groups are expected, ties included.
 */
function directProgramme(lengths: ArrayLike<number>, anchor: number, maxSize: number, budget: number, overhead: number): [number, number] {
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

const cost = (lengths: number[], split: Array<[number, number]>, overhead: number) =>
  split.reduce((sum, [first, last]) => sum + overhead + lengths[last]! * (last - first + 1), 0);

describe('cheapestGroup', () => {
  it('keeps equal lengths together up to the size limit, the anchor in the largest group', () => {
    assert.deepEqual(cheapestGroup([10, 10, 10, 10, 10, 10, 10, 10, 10, 10], 0, 4, 1000, 128), [0, 3]);
  });

  it('splits short from long texts when the padding saved exceeds the overhead of a run', () => {
    const lengths = [8, 8, 8, 8, 120, 120, 120, 120];
    assert.deepEqual(cheapestGroup(lengths, 0, 64, 8192, 128), [0, 3], 'padding 4 x 112 > 128');
    assert.deepEqual(cheapestGroup(lengths, 6, 64, 8192, 128), [4, 7], 'the long group leaves when a long text is oldest');
    assert.deepEqual(cheapestGroup(lengths, 6, 64, 8192, 1000), [0, 7], 'padding 448 < 1000: one run is cheaper');
  });

  it('runs an entry longer than the budget alone', () => {
    assert.deepEqual(cheapestGroup([5, 5, 900], 2, 64, 100, 128), [2, 2]);
    assert.deepEqual(cheapestGroup([900], 0, 64, 100, 128), [0, 0]);
  });

  it('respects the token budget (count x longest)', () => {
    const [first, last] = cheapestGroup([30, 30, 30, 30, 30, 30, 30], 3, 64, 100, 1000);
    assert.equal(last - first + 1, 3);
    assert.ok(first <= 3 && 3 <= last);
  });

  it('matches brute force on random inputs', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rnd() * 9);
      const lengths = Array.from({ length: n }, () => 1 + Math.floor(rnd() * 60)).sort((a, b) => a - b);
      const anchor = Math.floor(rnd() * n);
      const maxSize = 1 + Math.floor(rnd() * 5);
      const budget = 20 + Math.floor(rnd() * 200);
      const overhead = Math.floor(rnd() * 100);
      const best = Math.min(...splits(lengths, maxSize, budget).map((s) => cost(lengths, s, overhead)));
      const [first, last] = cheapestGroup(lengths, anchor, maxSize, budget, overhead);
      assert.ok(first <= anchor && anchor <= last, 'the group holds the anchor');
      const count = last - first + 1;
      assert.ok(count === 1 || (count <= maxSize && count * lengths[last]! <= budget), 'the group fits');
      // The chosen group belongs to some cheapest split.
      const withGroup = splits(lengths, maxSize, budget).filter((s) => s.some(([f, l]) => f === first && l === last));
      assert.equal(Math.min(...withGroup.map((s) => cost(lengths, s, overhead))), best, JSON.stringify({ lengths, anchor, maxSize, budget, overhead }));
    }
  });

  it('matches the direct programme on large inputs, ties included (the CPU and CUDA sizes)', () => {
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 400; trial++) {
      const n = 1 + Math.floor(rnd() * (trial % 4 === 0 ? 2048 : 200));
      const spread = trial % 2 ? 60 : 400;
      const lengths = Float64Array.from({ length: n }, () => 1 + Math.floor(rnd() * rnd() * spread)).sort();
      const anchor = Math.floor(rnd() * n);
      const maxSize = [4, 64, 256, 1024][trial % 4]!;
      const budget = [100, 8192, 32768][Math.floor(rnd() * 3)]!;
      const overhead = [0, 12, 128, 4096][Math.floor(rnd() * 4)]!;
      assert.deepEqual(cheapestGroup(lengths, anchor, maxSize, budget, overhead), directProgramme(lengths, anchor, maxSize, budget, overhead), JSON.stringify({ n, anchor, maxSize, budget, overhead }));
    }
  });
});
