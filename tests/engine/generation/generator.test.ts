import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Seq2SeqGenerator, type GenerationRequest, type GenerationResult, type GeneratorOptions, type SequenceStats, type StepStats } from '../../../src/engine/generation/generator.js';
import { applyProcessors, forceTokenAtLimit, logSoftmaxInPlace, suppressTokens } from '../../../src/engine/generation/logits-processors.js';
import { BeamSearch } from '../../../src/engine/generation/search.js';
import { EngineError, type EngineErrorCode } from '../../../src/engine/errors.js';
import { EOS, FakeClock, referenceGreedy, sourceFor, tick, toyLogits, ToyBackend, type ToyBackendOptions } from './toy-model.js';

const VOCAB = 32;
/** Marian's layout: the pad token starts the decoder and is never generated. */
const PAD = VOCAB - 1;

function setup(options: Partial<GeneratorOptions> = {}, backendOptions: ToyBackendOptions = {}) {
  const backend = new ToyBackend({ vocabSize: VOCAB, slots: options.maxActiveRows ?? 64, ...backendOptions });
  const steps: StepStats[] = [];
  const sequences: SequenceStats[] = [];
  const generator = new Seq2SeqGenerator(backend, {
    decoderStartTokenId: PAD,
    eosTokenId: EOS,
    badWordsIds: [PAD],
    onStep: (s) => steps.push(s),
    onSequence: (s) => sequences.push(s),
    ...options,
    clock: options.clock ?? backendOptions.clock,
  });
  return { backend, generator, steps, sequences };
}

/** What the generator must answer for a greedy request, from the reference loop. */
function expectedGreedy(tag: number, maxNewTokens: number, maxPositions = 64): GenerationResult {
  const limit = Math.min(maxNewTokens, maxPositions);
  const tokens = referenceGreedy(sourceFor(tag), { vocabSize: VOCAB, startTokenId: PAD, maxNewTokens: limit, badWordsIds: [PAD] });
  const endsWithEos = tokens.at(-1) === EOS;
  return {
    ids: Int32Array.from(endsWithEos ? tokens.slice(0, -1) : tokens),
    finishReason: endsWithEos && tokens.length < limit ? 'eos' : 'length',
  };
}

/** Beam search run directly over the toy model: what the generator must answer, whatever shares its batch. */
function expectedBeams(tag: number, maxNewTokens: number, beams: number, lengthPenalty = 1, earlyStopping = false) {
  const source = sourceFor(tag);
  const search = new BeamSearch({ eosTokenId: EOS, maxNewTokens, beams, lengthPenalty, earlyStopping });
  const processors = [suppressTokens([PAD]), forceTokenAtLimit(EOS, maxNewTokens)];
  while (!search.done) {
    search.advance(
      search.hypotheses.map((generated) => {
        const scores = toyLogits(source, [PAD, ...generated], VOCAB);
        logSoftmaxInPlace(scores);
        applyProcessors(processors, scores, { generated });
        return scores;
      }),
    );
  }
  const { tokens, score } = search.result();
  const endsWithEos = tokens.at(-1) === EOS;
  return { ids: Int32Array.from(endsWithEos ? tokens.slice(0, -1) : tokens), finishReason: endsWithEos && tokens.length < maxNewTokens ? 'eos' : 'length', score };
}

function request(tag: number, maxNewTokens = 16, extra: Partial<GenerationRequest> = {}): GenerationRequest {
  return { source: sourceFor(tag), maxNewTokens, ...extra };
}

/** Observes a promise without letting its rejection go unhandled. */
function track<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error: unknown) => Object.assign(state, { done: true, error }),
  );
  return state;
}

function assertCode(error: unknown, code: EngineErrorCode): asserts error is EngineError {
  assert.ok(error instanceof EngineError, `expected an EngineError, got ${String(error)}`);
  assert.equal(error.code, code);
}

const tagsOf = (rows: Array<{ tag: number }>) => [...new Set(rows.map((row) => row.tag))].sort((a, b) => a - b);

describe('greedy decoding', () => {
  it('equals a direct greedy loop, one request at a time', async () => {
    const { generator, backend } = setup();
    for (let tag = 1; tag <= 10; tag++) assert.deepEqual(await generator.submit(request(tag)), expectedGreedy(tag, 16));
    assert.equal(backend.encodeCalls.length, 10);
    assert.deepEqual(backend.busySlots, [], 'every cache released');
    assert.equal(backend.liveSourceCount, 0, 'every encoded source released');
  });

  it('gives every request the same output when many run concurrently (nothing depends on batch neighbours)', async () => {
    const { generator, backend, sequences } = setup();
    const tags = Array.from({ length: 30 }, (_, i) => i + 1);
    const results = await Promise.all(tags.map((tag) => generator.submit(request(tag, 6 + (tag % 9)))));
    results.forEach((result, i) => assert.deepEqual(result, expectedGreedy(tags[i]!, 6 + (tags[i]! % 9)), `tag ${tags[i]}`));
    assert.ok(new Set(results.map((r) => r.ids.length)).size >= 4, 'lengths vary');
    assert.ok(results.some((r) => r.finishReason === 'eos') && results.some((r) => r.finishReason === 'length'));
    assert.equal(Math.max(...backend.steps.map((rows) => rows.length)), 30, 'all of them shared steps');
    assert.equal(sequences.length, 30);
    assert.deepEqual(backend.busySlots, []);
  });
});

describe('continuous batching', () => {
  it('batches the encoder passes of requests arriving together, joins newcomers at the next step, and drops finished rows at once', async () => {
    const late: Array<ReturnType<typeof track<GenerationResult>>> = [];
    let generator!: Seq2SeqGenerator;
    const { backend, generator: g, steps } = setup({}, {
      duringStep: (index) => {
        if (index === 2) late.push(track(generator.submit(request(10))), track(generator.submit(request(11))));
      },
    });
    generator = g;
    const first = await Promise.all([1, 2, 3].map((tag) => generator.submit(request(tag))));
    while (!late.every((s) => s.done)) await tick();

    assert.deepEqual(backend.encodeCalls, [[1, 2, 3], [10, 11]], 'one encode call per admission round');
    assert.deepEqual(tagsOf(backend.steps[2]!), [1, 2, 3]);
    assert.deepEqual(tagsOf(backend.steps[3]!), [1, 2, 3, 10, 11], 'the late requests join at the very next step');
    assert.equal(steps[3]!.admitted, 2);
    for (const [tag, result] of [...[1, 2, 3].map((t, i) => [t, first[i]!] as const), [10, late[0]!.value!] as const, [11, late[1]!.value!] as const]) {
      assert.deepEqual(result, expectedGreedy(tag, 16), `tag ${tag}`);
      // One step per generated token (every sequence ends with an emitted or forced eos), in consecutive
      // steps at positions 0, 1, 2...: a finished request is in no further step.
      const stepsOfTag = backend.stepsOf(tag);
      assert.equal(stepsOfTag.length, result.ids.length + 1, `tag ${tag} ran one step per token`);
      assert.equal(stepsOfTag.at(-1)! - stepsOfTag[0]! + 1, stepsOfTag.length, `tag ${tag} ran in consecutive steps`);
      const positions = stepsOfTag.map((i) => backend.steps[i]!.find((row) => row.tag === tag)!.position);
      assert.deepEqual(positions, positions.map((_, i) => i));
    }
  });

  it('with continuous: false, admits new requests only once the running batch has drained, and runs more steps', async () => {
    const workload = async (continuous: boolean) => {
      let generator!: Seq2SeqGenerator;
      const late: Array<ReturnType<typeof track<GenerationResult>>> = [];
      const made = setup({ continuous }, {
        duringStep: (index) => {
          if (index === 1) late.push(track(generator.submit(request(20))), track(generator.submit(request(21))));
        },
      });
      generator = made.generator;
      const results = await Promise.all([1, 2, 3, 4].map((tag) => generator.submit(request(tag))));
      while (!late.every((s) => s.done)) await tick();
      return { backend: made.backend, results: [...results, ...late.map((s) => s.value!)] };
    };
    const staticRun = await workload(false);
    const continuousRun = await workload(true);
    const { backend } = staticRun;
    const lastOfFirstBatch = Math.max(...[1, 2, 3, 4].map((tag) => backend.stepsOf(tag).at(-1)!));
    assert.equal(backend.stepsOf(20)[0], lastOfFirstBatch + 1, 'the late requests start right after the first batch drains');
    assert.deepEqual(backend.encodeCalls, [[1, 2, 3, 4], [20, 21]]);
    // Static batching as generate() does it: rows of sequences already answered stay in each step as padding.
    const firstBatchSteps = backend.steps.slice(0, lastOfFirstBatch + 1);
    assert.ok(firstBatchSteps.every((rows) => tagsOf(rows).join() === '1,2,3,4'), 'every request of the first batch has a row in each of its steps');
    assert.ok(new Set([1, 2, 3, 4].map((tag) => staticRun.results[tag - 1]!.ids.length)).size > 1, 'the first batch\'s lengths differ');
    assert.deepEqual(backend.busySlots, [], 'every cache released once the batches drained');
    assert.deepEqual(staticRun.results, continuousRun.results, 'the same answers either way');
    assert.ok(continuousRun.backend.steps.length < backend.steps.length, `${continuousRun.backend.steps.length} steps continuous vs ${backend.steps.length} static`);
  });
});

describe('beam search in the running batch', () => {
  it('runs each beam as a row with its own slot and returns what a direct beam search returns, next to greedy requests', async () => {
    const { generator, backend } = setup({ maxActiveRows: 16 });
    const specs = [
      { tag: 1, beams: 4, lengthPenalty: 1, earlyStopping: false },
      { tag: 2, beams: 1, lengthPenalty: 1, earlyStopping: false },
      { tag: 3, beams: 3, lengthPenalty: 0.6, earlyStopping: true },
      { tag: 4, beams: 5, lengthPenalty: 2, earlyStopping: false },
      { tag: 5, beams: 1, lengthPenalty: 1, earlyStopping: false },
    ];
    const results = await Promise.all(specs.map((s) => generator.submit(request(s.tag, 12, s))));
    results.forEach((result, i) => {
      const { tag, beams, lengthPenalty, earlyStopping } = specs[i]!;
      const expected = beams === 1 ? expectedGreedy(tag, 12) : expectedBeams(tag, 12, beams, lengthPenalty, earlyStopping);
      assert.deepEqual(result, expected, `tag ${tag}`);
    });
    const widest = (tag: number) => Math.max(...backend.steps.map((rows) => rows.filter((row) => row.tag === tag).length));
    assert.equal(widest(1), 4);
    assert.equal(widest(4), 5);
    assert.equal(backend.steps[0]!.length, 5, 'a beam request starts from one row');
    assert.ok(backend.forks.length > 0, 'surviving beams took over caches by forking');
    assert.deepEqual(backend.staleSlots, [], 'the caches of beams that died were released at once');
    assert.deepEqual(backend.busySlots, []);
  });
});

describe('rules and limits', () => {
  it('never emits a bad word, in greedy or beam search', async () => {
    const favourite = 7;
    const { generator } = setup({ badWordsIds: [PAD, favourite] });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => generator.submit(request(i + 1, 12, { beams: 1 + (i % 3) }))));
    for (const result of results) assert.ok(!result.ids.includes(favourite) && !result.ids.includes(PAD));
    const unconstrained = setup().generator;
    const free = await Promise.all(Array.from({ length: 20 }, (_, i) => unconstrained.submit(request(i + 1, 12, { beams: 1 + (i % 3) }))));
    assert.ok(free.some((result) => result.ids.includes(favourite)), 'the toy model does like token 7');
  });

  it('ends a sequence at maxNewTokens: a forced eos fills the last place and the reason is length', async () => {
    const { generator } = setup();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => generator.submit(request(i + 1, 3, { beams: 1 + (i % 2) }))));
    const cut = results.filter((r) => r.finishReason === 'length');
    assert.ok(cut.length > 0);
    for (const result of cut) assert.equal(result.ids.length, 2, 'two tokens, then the forced eos (not returned)');
    for (const result of results.filter((r) => r.finishReason === 'eos')) assert.ok(result.ids.length < 2);
  });

  it('without forced eos, a cut sequence keeps all maxNewTokens tokens; maxPositions caps the limit', async () => {
    const { generator } = setup({ forceEosAtMaxLength: false }, { maxPositions: 64 });
    const result = await generator.submit(request(1, 2));
    assert.deepEqual(result.finishReason, 'length');
    assert.equal(result.ids.length, 2);
    const short = setup({}, { maxPositions: 3 });
    const capped = await Promise.all([1, 2, 3, 4].map((tag) => short.generator.submit(request(tag, 50))));
    capped.forEach((result, i) => assert.deepEqual(result, expectedGreedy(i + 1, 50, 3)));
    assert.ok(Math.max(...short.backend.steps.flat().map((row) => row.position)) <= 2);
  });
});

describe('cancellation and deadlines', () => {
  it('an abort stops only that request: it rejects at once, its rows leave and its slots are released', async () => {
    const controller = new AbortController();
    let aborted = -1;
    const { generator, backend } = setup({}, {
      duringStep: (index) => {
        if (index === 2) {
          controller.abort(new Error('client left'));
          aborted = index;
        }
      },
    });
    const victim = track(generator.submit(request(2, 16, { signal: controller.signal, beams: 3 })));
    const others = await Promise.all([1, 3, 4].map((tag) => generator.submit(request(tag))));
    others.forEach((result, i) => assert.deepEqual(result, expectedGreedy([1, 3, 4][i]!, 16)));
    assertCode(victim.error, 'CANCELLED');
    assert.equal((victim.error.cause as Error).message, 'client left');
    assert.equal(backend.stepsOf(2).at(-1), aborted, 'no rows of the cancelled request after the step it was cancelled in');
    assert.deepEqual(backend.staleSlots, [], 'its slots were released before the next step');
    assert.deepEqual(backend.busySlots, []);
    assert.equal(backend.liveSourceCount, 0);
  });

  it('an abort while waiting removes the request before its encoder pass', async () => {
    const { generator, backend } = setup({ maxActiveRows: 1 });
    const controller = new AbortController();
    const running = generator.submit(request(1));
    const waiting = track(generator.submit(request(2, 16, { signal: controller.signal })));
    await tick();
    controller.abort();
    await tick();
    assertCode(waiting.error, 'CANCELLED');
    assert.deepEqual(await running, expectedGreedy(1, 16));
    assert.deepEqual(backend.encodeCalls, [[1]]);
    await assert.rejects(generator.submit(request(3, 16, { signal: controller.signal })), (e) => e instanceof EngineError && e.code === 'CANCELLED');
  });

  it('a deadline stops only that request, whether it is running or waiting', async () => {
    const clock = new FakeClock();
    const { generator, backend } = setup({ maxActiveRows: 3, clock }, { clock, stepMs: 1 });
    const runningLate = track(generator.submit(request(1, 16, { deadline: 3.5 })));
    const others = Promise.all([2, 3].map((tag) => generator.submit(request(tag))));
    const waitingLate = track(generator.submit(request(9, 16, { deadline: 2 })));
    const results = await others;
    results.forEach((result, i) => assert.deepEqual(result, expectedGreedy(i + 2, 16)));
    assertCode(runningLate.error, 'DEADLINE_EXCEEDED');
    assertCode(waitingLate.error, 'DEADLINE_EXCEEDED');
    assert.deepEqual(backend.stepsOf(1), [0, 1, 2, 3], 'the step ending at 4 ms was its last');
    assert.ok(!backend.encodeCalls.flat().includes(9), 'the waiting request expired before it could join');
    assert.deepEqual(backend.busySlots, []);
  });
});

describe('bounds', () => {
  it('answers OVERLOADED with retryAfterMs past the queue bound, counting waiting requests only', async () => {
    const { generator, backend } = setup({ maxActiveRows: 1, maxQueue: 2 });
    backend.hold();
    const running = track(generator.submit(request(1)));
    await tick();
    await tick();
    const queued = [track(generator.submit(request(2))), track(generator.submit(request(3)))];
    const refused = track(generator.submit(request(4)));
    await tick();
    assertCode(refused.error, 'OVERLOADED');
    assert.equal(refused.error.retryAfterMs, 1000, 'before any request finished the estimate is the default');
    assert.deepEqual(generator.depth, { waiting: 2, requests: 1, rows: 1, slots: 1, reservedTokens: sourceFor(1).length + 16 });
    backend.resume();
    for (const state of [running, ...queued]) {
      while (!state.done) await tick();
      assert.equal(state.error, undefined);
    }
    // With recent completions the hint comes from their rate, within the clamp.
    backend.hold();
    const more = [track(generator.submit(request(5)))];
    await tick();
    await tick();
    more.push(...[6, 7].map((tag) => track(generator.submit(request(tag)))));
    const refusedAgain = track(generator.submit(request(8)));
    await tick();
    assertCode(refusedAgain.error, 'OVERLOADED');
    assert.ok(refusedAgain.error.retryAfterMs! >= 50 && refusedAgain.error.retryAfterMs! <= 5000);
    backend.resume();
    for (const state of more) while (!state.done) await tick();
  });

  it('never holds more slots or cache tokens than maxActiveRows and tokenBudget, however many wait', async () => {
    const tokenBudget = 60;
    const { generator, backend, steps } = setup({ maxActiveRows: 5, tokenBudget });
    const specs = Array.from({ length: 30 }, (_, i) => ({ tag: i + 1, beams: 1 + (i % 3), maxNewTokens: 6 + (i % 7) }));
    const results = await Promise.all(specs.map((s) => generator.submit(request(s.tag, s.maxNewTokens, { beams: s.beams }))));
    results.forEach((result, i) => {
      const { tag, beams, maxNewTokens } = specs[i]!;
      assert.deepEqual(result, beams === 1 ? expectedGreedy(tag, maxNewTokens) : expectedBeams(tag, maxNewTokens, beams), `tag ${tag}`);
    });
    assert.ok(backend.maxBusySlots <= 5, `${backend.maxBusySlots} slots`);
    assert.ok(backend.maxHeldTokens <= tokenBudget, `${backend.maxHeldTokens} tokens held`);
    assert.ok(Math.max(...steps.map((s) => s.rows)) <= 5);
    assert.ok(backend.maxHeldTokens > tokenBudget / 2, 'the budget was actually used');
    assert.deepEqual(backend.staleSlots, []);
    assert.throws(() => generator.submit(request(99, 60)), RangeError, 'a request that could never fit is refused at once');
    assert.throws(() => generator.submit(request(99, 5, { beams: 6 })), RangeError);
  });

  it('admits by token budget when it binds before the slots: each request reserves its source plus beams x limit', async () => {
    // Sources of 3-6 ids plus 16 new tokens reserve 19-22 tokens: two requests fit in 45, a third does not.
    const { generator, backend, steps } = setup({ maxActiveRows: 8, tokenBudget: 45 });
    const tags = Array.from({ length: 12 }, (_, i) => i + 1);
    const results = await Promise.all(tags.map((tag) => generator.submit(request(tag, 16))));
    results.forEach((result, i) => assert.deepEqual(result, expectedGreedy(tags[i]!, 16)));
    assert.equal(Math.max(...backend.steps.map((rows) => tagsOf(rows).length)), 2);
    assert.ok(steps.every((s) => s.requests <= 2));
    assert.ok(backend.maxHeldTokens <= 45);
  });
});

describe('failures and hooks', () => {
  it('a failed step rejects that batch with BATCH_FAILED; later requests are served', async () => {
    const { generator, backend } = setup({}, { failStep: (index) => index === 1 });
    const failed = await Promise.allSettled([1, 2].map((tag) => generator.submit(request(tag))));
    for (const outcome of failed) assertCode((outcome as PromiseRejectedResult).reason, 'BATCH_FAILED');
    assert.deepEqual(backend.busySlots, []);
    assert.deepEqual(await generator.submit(request(3)), expectedGreedy(3, 16));
    await generator.close();
    await assert.rejects(generator.submit(request(4)), (e) => e instanceof EngineError && e.code === 'SHUTTING_DOWN');
  });

  it('reports every step and every finished sequence', async () => {
    const { generator, steps, sequences, backend } = setup();
    const results = await Promise.all([1, 2, 3].map((tag) => generator.submit(request(tag, 16, { beams: tag }))));
    assert.equal(steps.length, backend.steps.length);
    assert.deepEqual(steps.map((s) => s.rows), backend.steps.map((rows) => rows.length));
    assert.equal(steps[0]!.admitted, 3);
    assert.ok(steps.every((s) => s.ms >= s.backendMs && s.backendMs >= 0));
    assert.deepEqual(sequences.map((s) => s.beams).sort(), [1, 2, 3]);
    for (const s of sequences) {
      // A beam search may go on after its best hypothesis finished; greedy stops with it.
      assert.ok(s.tokens >= 1 && (s.beams === 1 ? s.steps === s.tokens : s.steps >= s.tokens) && s.totalMs >= s.queueMs);
    }
    assert.equal(results.length, 3);
  });
});
