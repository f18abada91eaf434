import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyProcessors,
  forceTokenAtLimit,
  logSoftmaxInPlace,
  minNewTokens,
  suppressTokens,
  type LogitsProcessor,
} from '../../../src/engine/generation/logits-processors.js';
import { BeamSearch, GreedySearch, type Search, type SearchOptions } from '../../../src/engine/generation/search.js';
import { planBeamSlots, SlotPool } from '../../../src/engine/generation/slot-pool.js';
import { EOS, referenceGreedy, referenceRules, sourceFor, toyLogits } from './toy-model.js';

/** Drives a search straight over the toy model, without backend or generator. Returns its result and step count. */
function drive(search: Search, source: Int32Array, vocabSize: number, startTokenId: number, processors: LogitsProcessor[]) {
  let steps = 0;
  while (!search.done) {
    const scores = search.hypotheses.map((generated) => {
      const row = toyLogits(source, [startTokenId, ...generated], vocabSize);
      if (search.wantsLogProbs) logSoftmaxInPlace(row);
      applyProcessors(processors, row, { generated });
      return row;
    });
    search.advance(scores);
    steps++;
  }
  return { ...search.result(), steps };
}

/**
 * Every sequence the rules allow, with its score: log-softmax of the toy logits, the rules applied (the
 * same values the search sums), sum / length^lengthPenalty; a sequence ends at eos or at the limit.
 */
function enumerate(source: Int32Array, options: { vocabSize: number; maxNewTokens: number; lengthPenalty: number; badWordsIds?: number[]; forceEos?: boolean }) {
  const start = options.vocabSize - 1;
  const all: Array<{ tokens: number[]; score: number }> = [];
  const extend = (tokens: number[], sum: number) => {
    const scores = toyLogits(source, [start, ...tokens], options.vocabSize);
    logSoftmaxInPlace(scores);
    referenceRules(scores, tokens.length, { ...options, startTokenId: start });
    for (let token = 0; token < options.vocabSize; token++) {
      if (scores[token] === -Infinity) continue;
      const next = [...tokens, token];
      const total = sum + scores[token]!;
      if (token === EOS || next.length === options.maxNewTokens) all.push({ tokens: next, score: total / next.length ** options.lengthPenalty });
      else extend(next, total);
    }
  };
  extend([], 0);
  return all;
}

describe('logits processors', () => {
  it('log-softmax matches the float64 formula (to float32 precision), sums to one and leaves a row of -Infinity alone', () => {
    const logits = Float32Array.from([1000, 999, -5, 3.25, -Infinity]);
    const expected = [...logits].map((x) => x - (1000 + Math.log([...logits].reduce((s, y) => s + Math.exp(y - 1000), 0))));
    logSoftmaxInPlace(logits);
    [...logits].forEach((x, i) => assert.ok(x === expected[i] || Math.abs(x - expected[i]!) <= 1e-6 * Math.max(1, Math.abs(expected[i]!)), `${x} vs ${expected[i]}`));
    assert.ok(Math.abs([...logits].reduce((s, x) => s + Math.exp(x), 0) - 1) < 1e-6);
    const dead = new Float32Array(3).fill(-Infinity);
    logSoftmaxInPlace(dead);
    assert.deepEqual([...dead], [-Infinity, -Infinity, -Infinity]);
  });

  it('suppresses bad words, forces eos only at the last place, and holds eos back before minNewTokens', () => {
    const row = (generated: number) => {
      const scores = Float32Array.from([0.5, 2, 1, 3]);
      applyProcessors([suppressTokens([3, 3]), minNewTokens(EOS, 2), forceTokenAtLimit(EOS, 4)], scores, { generated: Array(generated).fill(1) });
      return [...scores];
    };
    assert.deepEqual(row(0), [-Infinity, 2, 1, -Infinity], 'eos held back, token 3 suppressed');
    assert.deepEqual(row(2), [0.5, 2, 1, -Infinity], 'eos allowed from the third place');
    assert.deepEqual(row(3), [0, -Infinity, -Infinity, -Infinity], 'the fourth and last place is eos');
  });
});

describe('search', () => {
  const vocabSize = 32;
  const start = vocabSize - 1;

  it('greedy search equals the reference greedy loop', () => {
    for (let tag = 1; tag <= 40; tag++) {
      const source = sourceFor(tag);
      const search = new GreedySearch({ eosTokenId: EOS, maxNewTokens: 12 });
      const { tokens } = drive(search, source, vocabSize, start, [suppressTokens([start]), forceTokenAtLimit(EOS, 12)]);
      assert.deepEqual(tokens, referenceGreedy(source, { vocabSize, startTokenId: start, maxNewTokens: 12, badWordsIds: [start] }));
    }
  });

  it('beam search with one beam equals greedy, for any length penalty and both earlyStopping modes', () => {
    const lengths = new Set<number>();
    for (let tag = 1; tag <= 40; tag++) {
      const source = sourceFor(tag);
      const processors = [suppressTokens([start]), forceTokenAtLimit(EOS, 10)];
      const greedy = drive(new GreedySearch({ eosTokenId: EOS, maxNewTokens: 10 }), source, vocabSize, start, processors);
      lengths.add(greedy.tokens.length);
      for (const lengthPenalty of [-1, 0, 1, 2]) {
        for (const earlyStopping of [true, false]) {
          const beam = drive(new BeamSearch({ eosTokenId: EOS, maxNewTokens: 10, beams: 1, lengthPenalty, earlyStopping }), source, vocabSize, start, processors);
          assert.deepEqual(beam.tokens, greedy.tokens, `tag ${tag}, lengthPenalty ${lengthPenalty}, earlyStopping ${earlyStopping}`);
          assert.equal(beam.steps, greedy.steps);
        }
      }
    }
    assert.ok(lengths.size >= 4, `the toy model gives varied lengths: ${[...lengths]}`);
  });

  // With at least as many beams as complete sequences and 2 x beams candidates per step, no extension is
  // ever dropped, in either earlyStopping mode (neither can stop before `beams` hypotheses have finished):
  // beam search must then return the best sequence of the exhaustive enumeration.
  const exhaustiveCases = [
    { name: 'eos forced at the limit', forceEos: true, badWordsIds: [] as number[] },
    { name: 'no forced eos (limit cuts)', forceEos: false, badWordsIds: [] as number[] },
    { name: 'the start token suppressed', forceEos: true, badWordsIds: [3] },
  ];
  for (const { name, forceEos, badWordsIds } of exhaustiveCases) {
    it(`beam search with enough beams returns the best sequence of an exhaustive enumeration (4 tokens, 4 new, ${name})`, () => {
      const tiny = { vocabSize: 4, maxNewTokens: 4 };
      for (let tag = 1; tag <= 12; tag++) {
        const source = sourceFor(tag);
        for (const lengthPenalty of [-1, 0, 0.5, 1, 2]) {
          const all = enumerate(source, { ...tiny, lengthPenalty, badWordsIds, forceEos });
          const best = all.reduce((a, b) => (b.score > a.score ? b : a));
          for (const earlyStopping of [true, false]) {
            const processors = [
              ...(badWordsIds.length ? [suppressTokens(badWordsIds)] : []),
              ...(forceEos ? [forceTokenAtLimit(EOS, tiny.maxNewTokens)] : []),
            ];
            const options: SearchOptions = { eosTokenId: EOS, maxNewTokens: tiny.maxNewTokens, beams: all.length, lengthPenalty, earlyStopping };
            const result = drive(new BeamSearch(options), source, tiny.vocabSize, 3, processors);
            const label = `tag ${tag}, lengthPenalty ${lengthPenalty}, earlyStopping ${earlyStopping}`;
            assert.deepEqual(result.tokens, best.tokens, label);
            assert.ok(Math.abs(result.score! - best.score) < 1e-9, label);
          }
        }
      }
    });
  }

  it('with few beams: the result is a scored, well-formed sequence, and earlyStopping true never runs longer than false', () => {
    let shorter = 0;
    for (let tag = 1; tag <= 40; tag++) {
      const source = sourceFor(tag);
      const processors = [suppressTokens([start]), forceTokenAtLimit(EOS, 16)];
      const run = (earlyStopping: boolean) =>
        drive(new BeamSearch({ eosTokenId: EOS, maxNewTokens: 16, beams: 3, lengthPenalty: 1, earlyStopping }), source, vocabSize, start, processors);
      const early = run(true);
      const heuristic = run(false);
      for (const result of [early, heuristic]) {
        assert.equal(result.tokens.at(-1), EOS);
        assert.ok(!result.tokens.slice(0, -1).includes(EOS) && !result.tokens.includes(start));
        // The score is the sequence's own log-probability under the rules, over its length.
        let sum = 0;
        result.tokens.forEach((token, i) => {
          const scores = toyLogits(source, [start, ...result.tokens.slice(0, i)], vocabSize);
          logSoftmaxInPlace(scores);
          applyProcessors(processors, scores, { generated: result.tokens.slice(0, i) });
          sum += scores[token]!;
        });
        assert.ok(Math.abs(result.score! - sum / result.tokens.length) < 1e-9);
      }
      assert.ok(early.steps <= heuristic.steps, `tag ${tag}`);
      if (early.steps < heuristic.steps) shorter++;
    }
    assert.ok(shorter > 0, 'earlyStopping true saves steps on some sources');
  });
});

describe('slot bookkeeping', () => {
  it('planBeamSlots gives every new beam a copy of its parent cache, overwriting only dead or unused slots', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 500; trial++) {
      const owned = [10, 11, 12, 13, 14].slice(0, 1 + random(5));
      const live = owned.filter(() => random(3) > 0);
      if (live.length === 0) live.push(owned[0]!);
      const caches = new Map<number, string>(live.map((slot, i) => [slot, `history ${i}`]));
      const parents = Array.from({ length: 1 + random(owned.length) }, () => random(live.length));
      const plan = planBeamSlots(owned, live, parents);
      for (const [from, to] of plan.forks) {
        assert.ok(!plan.forks.some(([source]) => source === to), 'no fork writes a slot another fork reads');
        caches.set(to, caches.get(from)!);
      }
      for (const slot of plan.released) caches.delete(slot);
      assert.equal(new Set(plan.slots).size, plan.slots.length, 'one slot per beam');
      plan.slots.forEach((slot, child) => {
        assert.ok(owned.includes(slot));
        assert.equal(caches.get(slot), `history ${parents[child]}`);
      });
      const firstChildren = new Set(parents).size;
      assert.equal(plan.forks.length, parents.length - firstChildren, 'only second and later children are copied');
      assert.deepEqual([...caches.keys()].sort(), [...plan.slots].sort(), 'dead hypotheses leave no cache behind');
    }
  });

  it('SlotPool reserves slots and tokens together and reuses low slots first', () => {
    const pool = new SlotPool(4, 100);
    const a = pool.take(2, 60);
    assert.deepEqual(a, [0, 1]);
    assert.equal(pool.fits(1, 41), false, 'the budget binds before the slots');
    assert.equal(pool.fits(3, 10), false, 'the slots bind before the budget');
    const b = pool.take(2, 40);
    pool.give(a, 60);
    assert.deepEqual(pool.take(1, 10), [0]);
    assert.equal(pool.reservedTokens, 50);
    assert.equal(pool.busySlots, 3);
    assert.deepEqual(b, [2, 3]);
  });
});
