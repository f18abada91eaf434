import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Seq2SeqGenerator, type GenerationResult, type GeneratorOptions } from '../../../src/engine/generation/generator.js';
import { MarianBackend, type MarianBackendOptions } from '../../../src/engine/seq2seq/marian-backend.js';
import { logSoftmaxInPlace } from '../../../src/engine/generation/logits-processors.js';
import { asResult, marianTiny, OptimumReference, SENTENCES, tokenize, type Fixture } from './marian-reference.js';

/** Longer than the fixture's translations (the test of a shorter limit cuts them). */
const LIMIT = 40;

function generator(backend: MarianBackend, fixture: Fixture, options: Partial<GeneratorOptions> = {}) {
  const { decoderStartId, eosId, padId } = fixture.info;
  return new Seq2SeqGenerator(backend, { decoderStartTokenId: decoderStartId, eosTokenId: eosId, badWordsIds: [padId], ...options });
}

const ids = (result: GenerationResult) => [...result.ids];

/** Each layout's reference tokens, to check that the merged-with-cache and no-cache references agree. */
const expectedByLayout = new Map<string, number[][]>();

for (const layout of ['merged', 'unmerged'] as const) {
  describe(`MarianBackend, ${layout} layout: greedy = Optimum's graphs (${layout === 'merged' ? 'merged decoder with cache' : 'decoder_model.onnx without cache'})`, () => {
    let fixture: Fixture;
    let backend: MarianBackend;
    let reference: OptimumReference;
    let sources: Int32Array[];
    let expected: number[][];

    before(async () => {
      fixture = await marianTiny(layout);
      backend = await MarianBackend.load(fixture.dir);
      reference = await OptimumReference.load(fixture);
      sources = await tokenize(fixture.dir, SENTENCES);
      expected = [];
      for (const source of sources) {
        const tokens = layout === 'merged' ? await reference.greedyMerged(source, LIMIT) : await reference.greedyNoCache(source, LIMIT);
        expected.push(tokens);
      }
      expectedByLayout.set(layout, expected);
      // The same weights in both folders: the two references agree.
      const other = expectedByLayout.get(layout === 'merged' ? 'unmerged' : 'merged');
      if (other) assert.deepEqual(expected, other);
      // The fixture's translations vary (they are not one token repeated).
      assert.ok(new Set(expected.map((e) => e.length)).size >= 3);
      assert.ok(expected.every((e) => new Set(e).size > 2 || e.length <= 2));
    });

    after(async () => {
      await Promise.all([backend.close(), reference.release()]);
    });

    it('reads the folder', () => {
      assert.equal(backend.vocabSize, fixture.info.vocabSize);
      assert.equal(backend.maxPositions, fixture.info.maxPositionEmbeddings);
      assert.match(backend.decoderFile, layout === 'merged' ? /decoder_model_merged\.onnx$/ : /decoder_model\.onnx$/);
    });

    it('one sentence at a time', async () => {
      const g = generator(backend, fixture);
      for (const [i, source] of sources.entries()) {
        const result = await g.submit({ source, maxNewTokens: LIMIT });
        assert.deepEqual(ids(result), asResult(expected[i]!, fixture.info.eosId), `sentence ${i}`);
        assert.equal(result.finishReason, expected[i]!.length === LIMIT ? 'length' : 'eos');
      }
    });

    it('a limit that cuts the translations short: eos forced in the last place', async () => {
      const limit = 6;
      const g = generator(backend, fixture);
      const results = await Promise.all(sources.map((source) => g.submit({ source, maxNewTokens: limit })));
      let cut = 0;
      for (const [i, source] of sources.entries()) {
        const tokens = layout === 'merged' ? await reference.greedyMerged(source, limit) : await reference.greedyNoCache(source, limit);
        assert.deepEqual(ids(results[i]!), asResult(tokens, fixture.info.eosId), `sentence ${i}`);
        if (tokens.length === limit) {
          cut++;
          assert.equal(results[i]!.finishReason, 'length');
        }
      }
      assert.ok(cut > 0);
    });

    it('all sentences in one batch', async () => {
      const rows: number[] = [];
      const g = generator(backend, fixture, { onStep: (s) => rows.push(s.rows) });
      const results = await Promise.all(sources.map((source) => g.submit({ source, maxNewTokens: LIMIT })));
      results.forEach((result, i) => assert.deepEqual(ids(result), asResult(expected[i]!, fixture.info.eosId), `sentence ${i}`));
      assert.equal(rows[0], sources.length);
    });

    it('sentences joining a running batch at later steps (rows at different lengths in one step)', async () => {
      const joins = new Map<number, number[]>();
      sources.forEach((_, i) => {
        const at = (i * 3) % 11;
        joins.set(at, [...(joins.get(at) ?? []), i]);
      });
      const pending: Array<Promise<GenerationResult>> = [];
      let steps = 0;
      let g: Seq2SeqGenerator;
      const submit = (i: number) => (pending[i] = g.submit({ source: sources[i]!, maxNewTokens: LIMIT }));
      g = generator(backend, fixture, {
        onStep: () => {
          steps++;
          for (const i of joins.get(steps) ?? []) submit(i);
        },
      });
      // Record each step's positions.
      const positions: number[][] = [];
      const step = backend.step;
      backend.step = (rows) => {
        positions.push(rows.map((row) => row.position));
        return step.call(backend, rows);
      };
      try {
        for (const i of joins.get(0)!) submit(i);
        // Until every join has happened (the early ones may finish before the later ones join).
        while (pending.filter(Boolean).length < sources.length) await new Promise((resolve) => setTimeout(resolve, 1));
        const results = await Promise.all(pending);
        results.forEach((result, i) => assert.deepEqual(ids(result), asResult(expected[i]!, fixture.info.eosId), `sentence ${i}`));
      } finally {
        backend.step = step;
      }
      // Steps where a fresh row (position 0) ran next to rows far into their output.
      assert.ok(positions.filter((p) => p.includes(0) && Math.max(...p) >= 3).length >= 3);
    });

    it('beams: 1 = greedy', async () => {
      const g = generator(backend, fixture);
      const results = await Promise.all(sources.map((source) => g.submit({ source, maxNewTokens: LIMIT, beams: 1 })));
      results.forEach((result, i) => assert.deepEqual(ids(result), asResult(expected[i]!, fixture.info.eosId)));
    });
  });
}

describe('MarianBackend caches', () => {
  let fixture: Fixture;
  let reference: OptimumReference;
  let sources: Int32Array[];

  before(async () => {
    fixture = await marianTiny('unmerged');
    reference = await OptimumReference.load(fixture);
    sources = await tokenize(fixture.dir, SENTENCES);
  });

  after(() => reference.release());

  async function withBackend(options: Partial<MarianBackendOptions>, run: (backend: MarianBackend) => Promise<void>) {
    const backend = await MarianBackend.load(fixture.dir, options);
    try {
      await run(backend);
    } finally {
      await backend.close();
    }
  }

  it('beam search (forks of the caches) = beam search over decoder_model.onnx, next to greedy requests', async () => {
    const picked = [0, 2, 3, 7];
    const expected: Array<{ tokens: number[]; score?: number }> = [];
    for (const i of picked) expected.push(await reference.beamNoCache(sources[i]!, 20, 3));
    const greedy = await reference.greedyNoCache(sources[5]!, 20);
    // Capacity 2 and no spare buffers: slots grow and forks allocate, every few steps.
    await withBackend({ initialCapacity: 2, spareCacheBytes: 0 }, async (backend) => {
      const g = generator(backend, fixture);
      const results = await Promise.all([...picked.map((i) => g.submit({ source: sources[i]!, maxNewTokens: 20, beams: 3 })), g.submit({ source: sources[5]!, maxNewTokens: 20 })]);
      picked.forEach((_, k) => {
        assert.deepEqual(ids(results[k]!), asResult(expected[k]!.tokens, fixture.info.eosId), `sentence ${picked[k]}`);
        assert.ok(Math.abs(results[k]!.score! - expected[k]!.score!) < 1e-4);
      });
      assert.deepEqual(ids(results.at(-1)!), asResult(greedy, fixture.info.eosId));
    });
  });

  it('grows slots from one position to maxPositions; results do not depend on capacity or buffer reuse', async () => {
    // No eos before the last place: every sequence runs to the position table's end (64).
    const max = fixture.info.maxPositionEmbeddings;
    const picked = sources.slice(0, 6);
    const expected = await Promise.all(picked.map((s) => reference.greedyNoCache(s, max, max)));
    await withBackend({ initialCapacity: 1 }, async (backend) => {
      const g = generator(backend, fixture, { maxActiveRows: 4 });
      const results = await Promise.all(picked.map((source) => g.submit({ source, maxNewTokens: 1000, minNewTokens: 1000 })));
      results.forEach((result, i) => {
        assert.equal(result.ids.length, max - 1);
        assert.deepEqual(ids(result), asResult(expected[i]!, fixture.info.eosId), `sentence ${i}`);
      });
    });
  });

  it('step, fork and release by hand: the protocol is checked', async () => {
    await withBackend({}, async (backend) => {
      const [a, b] = await backend.encode([sources[0]!, sources[1]!]);
      const start = fixture.info.decoderStartId;
      const V = backend.vocabSize;
      const first = await backend.step([
        { slot: 0, token: start, position: 0, encoded: a },
        { slot: 1, token: start, position: 0, encoded: b },
      ]);
      assert.equal(first.length, 2 * V);
      // Slot 2 continues slot 0's history: the same token gives the same logits there and in slot 0.
      backend.fork(0, 2);
      const next = await backend.step([
        { slot: 0, token: 5, position: 1, encoded: a },
        { slot: 2, token: 5, position: 1, encoded: a },
        { slot: 1, token: 7, position: 1, encoded: b },
      ]);
      assert.deepEqual(next.subarray(0, V), next.subarray(V, 2 * V));
      const { logits } = await reference.noCache(await reference.encode(sources[1]!), sources[1]!.length, [[start, 7]]);
      for (let v = 0; v < V; v++) assert.ok(Math.abs(next[2 * V + v]! - logits[v]!) < 1e-4);

      await assert.rejects(backend.step([{ slot: 0, token: 5, position: 1, encoded: a }]), /slot 0 holds 2 positions, but its row feeds position 1/);
      await assert.rejects(backend.step([{ slot: 9, token: 5, position: 3, encoded: a }]), /slot 9 holds 0 positions/);
      await assert.rejects(
        backend.step([
          { slot: 0, token: 5, position: 2, encoded: a },
          { slot: 0, token: 5, position: 2, encoded: a },
        ]),
        /slot 0 appears twice/,
      );
      await assert.rejects(backend.step([{ slot: 3, token: V, position: 0, encoded: a }]), /token \d+ is not below/);
      await assert.rejects(backend.step([{ slot: 3, token: 1, position: backend.maxPositions, encoded: a }]), /position \d+ is outside/);
      backend.release(2);
      backend.release(2);
      await assert.rejects(backend.step([{ slot: 2, token: 5, position: 2, encoded: a }]), /slot 2 holds 0 positions/);
      // Forking an empty slot empties the target.
      backend.fork(2, 1);
      await assert.rejects(backend.step([{ slot: 1, token: 5, position: 2, encoded: b }]), /slot 1 holds 0 positions/);
      backend.releaseEncoded(b);
      await assert.rejects(backend.step([{ slot: 1, token: start, position: 0, encoded: b }]), /no live encoded source/);
      assert.deepEqual(await backend.step([]), new Float32Array(0));
      assert.deepEqual(await backend.encode([]), []);
      await assert.rejects(backend.encode([new Int32Array(backend.maxPositions + 1)]), /exceeds max_position_embeddings/);
    });
  });

  it('refuses a folder without a usable decoder, naming what it looked for', async () => {
    await assert.rejects(MarianBackend.load(fixture.dir, { decoderFile: 'onnx/decoder_with_past_model.onnx' }), /decoder_with_past_model\.onnx: cannot find the decoder weight model\.decoder\.layers\.0\.encoder_attn\.k_proj/);
    await assert.rejects(MarianBackend.load(fixture.dir, { encoderFile: 'onnx/nothing.onnx' }), /nothing\.onnx/);
  });
});

// The exhaustive check of beam search on the real Marian architecture: the marian-tiny model with every token but eos
// and four pieces suppressed (as bad words), and a limit of four places (eos forced in the last), has 1 + 4 + 16 + 64
// = 85 possible outputs. Each is scored from Optimum's decoder_model.onnx without cache: log-softmax over the whole
// vocabulary, then the rules, summed, over length^lengthPenalty. With 85 beams beam search can drop nothing, so it
// must return the best of them.
describe('MarianBackend beam search: the best sequence of an exhaustive enumeration', () => {
  const LIMIT_PLACES = 4;
  let fixture: Fixture;
  let reference: OptimumReference;
  let backend: MarianBackend;
  let sources: Int32Array[];

  before(async () => {
    fixture = await marianTiny('unmerged');
    reference = await OptimumReference.load(fixture);
    backend = await MarianBackend.load(fixture.dir);
    sources = await tokenize(fixture.dir, SENTENCES);
  });

  after(async () => {
    await Promise.all([backend.close(), reference.release()]);
  });

  /** Every output under the rules, with the summed log-probability of its tokens. */
  async function enumerate(source: Int32Array, allowed: readonly number[]) {
    const { eosId, decoderStartId, vocabSize: V } = fixture.info;
    const hidden = await reference.encode(source);
    const complete: Array<{ tokens: number[]; sum: number }> = [];
    let open: Array<{ tokens: number[]; sum: number }> = [{ tokens: [], sum: 0 }];
    while (open.length > 0) {
      const place = open[0]!.tokens.length;
      if (place === LIMIT_PLACES - 1) {
        // The forced eos: log-probability 0 once the rule has set every other token to -Infinity.
        for (const prefix of open) complete.push({ tokens: [...prefix.tokens, eosId], sum: prefix.sum });
        break;
      }
      const { logits } = await reference.noCache(hidden, source.length, open.map((prefix) => [decoderStartId, ...prefix.tokens]));
      const next: typeof open = [];
      open.forEach((prefix, r) => {
        const row = logits.subarray(r * V, (r + 1) * V);
        logSoftmaxInPlace(row);
        complete.push({ tokens: [...prefix.tokens, eosId], sum: prefix.sum + row[eosId]! });
        for (const token of allowed) next.push({ tokens: [...prefix.tokens, token], sum: prefix.sum + row[token]! });
      });
      open = next;
    }
    return complete;
  }

  it('85 beams over a five-token choice return the highest-scoring of the 85 outputs, for several length penalties', async () => {
    const { eosId, padId, vocabSize: V } = fixture.info;
    let ties = 0;
    const winners = new Set<string>();
    for (const source of sources.slice(0, 4)) {
      // The four pieces the model likes most at the first place: a choice it cares about.
      const { logits } = await reference.noCache(await reference.encode(source), source.length, [[fixture.info.decoderStartId]]);
      const allowed = [...logits.keys()].filter((id) => id !== eosId && id !== padId).sort((a, b) => logits[b]! - logits[a]!).slice(0, 4);
      const keep = new Set([eosId, ...allowed]);
      const badWordsIds = [...Array(V).keys()].filter((id) => !keep.has(id));
      const all = await enumerate(source, allowed);
      assert.equal(all.length, 85);
      for (const lengthPenalty of [0, 0.5, 1, 2]) {
        const scored = all.map((s) => ({ ...s, score: s.sum / s.tokens.length ** lengthPenalty })).sort((a, b) => b.score - a.score);
        const best = scored[0]!;
        // Float32 logits: a near tie would make "the best" depend on rounding; such cases are counted, not judged.
        if (scored[1]!.score > best.score - 1e-4) {
          ties++;
          continue;
        }
        for (const earlyStopping of [true, false]) {
          const g = generator(backend, fixture, { badWordsIds: [padId, ...badWordsIds], maxActiveRows: 96 });
          const result = await g.submit({ source, maxNewTokens: LIMIT_PLACES, beams: all.length, lengthPenalty, earlyStopping });
          const label = `source ${[...source].join(' ')}, lengthPenalty ${lengthPenalty}, earlyStopping ${earlyStopping}`;
          assert.deepEqual(ids(result), asResult(best.tokens, eosId), label);
          assert.ok(Math.abs(result.score! - best.score) < 1e-4, `${label}: ${result.score} vs ${best.score}`);
          await g.close();
        }
        winners.add(best.tokens.join(' '));
      }
    }
    assert.ok(ties <= 4, `${ties} near ties`);
    assert.ok(winners.size >= 3, `the best sequence changes with the source and the length penalty: ${[...winners].join(' | ')}`);
    assert.ok([...winners].some((w) => w.split(' ').length > 1), 'some winners are longer than a lone eos');
  });
});
