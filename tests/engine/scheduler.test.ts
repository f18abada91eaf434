import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Scheduler, type BatchRunner, type BatchShape, type BatchStats, type Clock, type SchedulerOptions } from '../../src/engine/scheduler.js';
import { EngineError, type EngineErrorCode } from '../../src/engine/errors.js';

// ---------------------------------------------------------------------------------------------------------
// Test doubles: a clock advanced by hand and a backend that records the shape of every batch.

/** Lets every pending promise job and microtask run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

class FakeClock implements Clock {
  time = 0;
  private nextId = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.nextId;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }
  /** Moves time forward, firing due timers in order and letting the promise jobs they start run. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const timer of this.timers) if (timer[1].at <= target && (!next || timer[1].at < next[1].at)) next = timer;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

interface Payload {
  text: string;
  heads: string[];
}

interface RecordedBatch {
  keys: string[];
  payloads: Payload[];
  shape: BatchShape;
  startedAt: number;
}

interface RunnerBehaviour {
  /** Batches wait for release() before answering. */
  hold?: boolean;
  /** Simulated run time on the fake clock. */
  clock?: FakeClock;
  costMs?: (shape: BatchShape) => number;
  /** Per-entry answer; default `text:heads`. */
  respond?: (payload: Payload) => string | Error;
  /** Fail the nth batch (0-based) as a whole by rejecting with the returned error. */
  failBatch?: (index: number) => unknown;
}

class FakeRunner implements BatchRunner<Payload, string> {
  readonly batches: RecordedBatch[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly gates: Array<() => void> = [];

  constructor(private readonly behaviour: RunnerBehaviour = {}) {}

  async run(payloads: Payload[], shape: BatchShape): Promise<Array<string | Error>> {
    const index = this.batches.length;
    this.batches.push({ keys: payloads.map((p) => p.text), payloads: payloads.map((p) => ({ ...p })), shape, startedAt: this.behaviour.clock?.now() ?? 0 });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.behaviour.hold) await new Promise<void>((resolve) => this.gates.push(resolve));
      if (this.behaviour.costMs) await this.behaviour.clock!.sleep(this.behaviour.costMs(shape));
      const failure = this.behaviour.failBatch?.(index);
      if (failure) throw failure;
      return payloads.map(this.behaviour.respond ?? answer);
    } finally {
      this.inFlight--;
    }
  }

  get held(): number {
    return this.gates.length;
  }
  /** Lets the oldest held batch answer. */
  async release(): Promise<void> {
    this.gates.shift()?.();
    await settle();
  }
  get sizes(): number[] {
    return this.batches.map((b) => b.shape.size);
  }
}

const answer = (p: Payload) => `${p.text}:${p.heads.join('+')}`;

function entry(text: string, tokens = 10, heads = ['a']) {
  return { key: text, tokens, payload: { text, heads } };
}

const unionHeads = (a: Payload, b: Payload): Payload => ({ text: a.text, heads: [...new Set([...a.heads, ...b.heads])].sort() });
const coversHeads = (running: Payload, wanted: Payload) => wanted.heads.every((h) => running.heads.includes(h));

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

function setup(options: Partial<SchedulerOptions<Payload>> = {}, behaviour: RunnerBehaviour = {}) {
  const clock = new FakeClock();
  const runner = new FakeRunner({ clock, ...behaviour });
  const stats: BatchStats[] = [];
  const scheduler = new Scheduler<Payload, string>(runner, { clock, onBatch: (s) => stats.push(s), ...options });
  return { clock, runner, scheduler, stats };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs one second of a seeded stream of mixed lengths through a scheduler on the fake clock. */
async function simulateStream(options: Partial<SchedulerOptions<Payload>>) {
  const rnd = random(42);
  const costMs = (shape: BatchShape) => 0.1 + shape.paddedTokens / 400;
  const { clock, scheduler, stats } = setup({ maxBatchTokens: 4096, ...options }, { costMs });
  const states: Array<{ done: boolean; error?: unknown }> = [];
  for (let ms = 0; ms < 1000; ms++) {
    for (let k = 0; k < 5; k++) {
      const tokens = rnd() < 0.7 ? 5 + Math.floor(rnd() * 25) : 60 + Math.floor(rnd() * 190);
      states.push(track(scheduler.submit(entry(`s${states.length}`, tokens))));
    }
    await clock.advance(1);
  }
  await clock.advance(1000);
  await scheduler.close();
  const sum = (f: (s: BatchStats) => number) => stats.reduce((n, s) => n + f(s), 0);
  return {
    unfinished: states.filter((s) => !s.done || s.error).length,
    waste: 1 - sum((s) => s.realTokens) / sum((s) => s.paddedTokens),
    busyMs: sum((s) => s.runMs),
    maxWaitMs: Math.max(...stats.flatMap((s) => s.queueWaitMs)),
  };
}

// ---------------------------------------------------------------------------------------------------------

describe('batch formation and timing', () => {
  it('puts entries submitted in one tick into one batch and gives each submitter its own result', async () => {
    const { clock, runner, scheduler } = setup();
    const results = Promise.all(['x', 'y', 'z'].map((t) => scheduler.submit(entry(t))));
    await clock.advance(2);
    assert.deepEqual(await results, ['x:a', 'y:a', 'z:a']);
    assert.deepEqual(runner.batches.map((b) => b.keys), [['x', 'y', 'z']]);
    assert.deepEqual(runner.batches[0]!.shape, { size: 3, maxTokens: 10, paddedTokens: 30 });
  });

  it('waits at most maxWaitMs from the oldest entry, and later arrivals within it join', async () => {
    const { clock, runner, scheduler } = setup({ maxWaitMs: 2 });
    const a = track(scheduler.submit(entry('a')));
    await clock.advance(1);
    const b = track(scheduler.submit(entry('b')));
    await clock.advance(0.9);
    assert.equal(runner.batches.length, 0, 'nothing leaves before the oldest has waited maxWaitMs');
    await clock.advance(0.1);
    assert.deepEqual(runner.batches.map((x) => [x.keys, x.startedAt]), [[['a', 'b'], 2]]);
    const c = track(scheduler.submit(entry('c')));
    await clock.advance(1.9);
    assert.equal(runner.batches.length, 1);
    await clock.advance(0.1);
    assert.deepEqual(runner.batches[1]!.keys, ['c']);
    assert.equal(runner.batches[1]!.startedAt, 4);
    assert.ok(a.done && b.done && c.done);
  });

  it('re-arms the wait for the next oldest entry when the oldest leaves', async () => {
    const { clock, runner, scheduler } = setup({ maxWaitMs: 2 });
    const controller = new AbortController();
    const gone = track(scheduler.submit(entry('gone'), { signal: controller.signal }));
    await clock.advance(1);
    controller.abort();
    await clock.advance(0.5);
    const b = track(scheduler.submit(entry('b')));
    await clock.advance(1.9);
    assert.equal(runner.batches.length, 0, 'b has waited 1.9 ms only');
    await clock.advance(0.1);
    assert.deepEqual(runner.batches.map((x) => [x.keys, x.startedAt]), [[['b'], 3.5]]);
    assertCode(gone.error, 'CANCELLED');
    assert.equal(b.value, 'b:a');
  });

  it('with maxWaitMs = 0 still batches everything submitted in one synchronous tick', async () => {
    const { runner, scheduler } = setup({ maxWaitMs: 0 });
    const all = Promise.all(['a', 'b', 'c', 'd'].map((t) => scheduler.submit(entry(t))));
    await settle();
    await all;
    assert.deepEqual(runner.sizes, [4]);
  });

  it('dispatches a batch as soon as it is full by size, without waiting', async () => {
    const { clock, runner, scheduler } = setup({ maxBatchSize: 4, maxWaitMs: 1000 });
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => scheduler.submit(entry(`t${i}`))));
    await clock.advance(0);
    assert.deepEqual(runner.sizes, [4, 4], 'two full batches leave at once, one after the other');
    await clock.advance(999);
    assert.deepEqual(runner.sizes, [4, 4]);
    await clock.advance(1);
    assert.deepEqual(runner.sizes, [4, 4, 2], 'the partial batch leaves when its oldest entry has waited maxWaitMs');
    assert.equal((await all).length, 10);
  });

  it('respects the token budget (longest x count) and leaves at once when no more rows fit', async () => {
    const { clock, runner, scheduler } = setup({ maxBatchTokens: 100, maxWaitMs: 1000 });
    const all = Promise.all(Array.from({ length: 7 }, (_, i) => scheduler.submit(entry(`t${i}`, 30))));
    await clock.advance(0);
    assert.deepEqual(runner.sizes, [3, 3], 'a fourth row of 30 tokens would make 120 > 100');
    for (const b of runner.batches) assert.ok(b.shape.paddedTokens <= 100);
    await clock.advance(1000);
    assert.deepEqual(runner.sizes, [3, 3, 1]);
    await all;
  });

  it('runs an entry longer than the whole budget alone, at once, and keeps serving the rest', async () => {
    const { clock, runner, scheduler } = setup({ maxBatchTokens: 100 });
    const big = scheduler.submit(entry('big', 500));
    const small = Promise.all(['s1', 's2'].map((t) => scheduler.submit(entry(t, 10))));
    await clock.advance(0);
    assert.deepEqual(runner.batches[0]!.keys, ['big']);
    assert.deepEqual(runner.batches[0]!.shape, { size: 1, maxTokens: 500, paddedTokens: 500 });
    await clock.advance(2);
    assert.equal(await big, 'big:a');
    assert.deepEqual(await small, ['s1:a', 's2:a']);
    assert.deepEqual(runner.batches[1]!.keys, ['s1', 's2']);
  });

  it('fills the next batch while one runs and dispatches it the moment the runner frees up', async () => {
    const { clock, runner, scheduler } = setup({ maxWaitMs: 2 }, { hold: true });
    const first = track(scheduler.submit(entry('a')));
    await clock.advance(2);
    assert.equal(runner.held, 1);
    const later = ['b', 'c', 'd', 'e'].map((t) => track(scheduler.submit(entry(t))));
    await clock.advance(5);
    assert.equal(runner.batches.length, 1, 'nothing else starts while the only runner slot is busy');
    assert.deepEqual(scheduler.depth, { entries: 4, tokens: 40, running: 1 });
    await runner.release();
    assert.ok(first.done);
    assert.deepEqual(runner.batches[1]!.keys, ['b', 'c', 'd', 'e'], 'dispatched without advancing the clock');
    assert.equal(runner.batches[1]!.startedAt, 7);
    await runner.release();
    assert.ok(later.every((s) => s.done && s.value!.endsWith(':a')));
  });

  it('when the runner frees up early, waits only the rest of the oldest entry\'s maxWaitMs', async () => {
    const { clock, runner, scheduler } = setup({ maxWaitMs: 10 }, { hold: true });
    track(scheduler.submit(entry('a')));
    await clock.advance(10);
    await clock.advance(5);
    const b = track(scheduler.submit(entry('b')));
    await clock.advance(3);
    await runner.release();
    assert.equal(runner.batches.length, 1);
    await clock.advance(6.9);
    assert.equal(runner.batches.length, 1);
    await clock.advance(0.1);
    assert.deepEqual(runner.batches.map((x) => x.startedAt), [10, 25]);
    await runner.release();
    assert.equal(b.value, 'b:a');
  });

  it('runs at most maxConcurrentBatches batches at once', async () => {
    const { clock, runner, scheduler } = setup({ maxConcurrentBatches: 2, maxBatchSize: 2 }, { hold: true });
    const all = Array.from({ length: 10 }, (_, i) => track(scheduler.submit(entry(`t${i}`))));
    await clock.advance(2);
    assert.equal(runner.inFlight, 2);
    assert.deepEqual(scheduler.depth, { entries: 6, tokens: 60, running: 2 });
    await runner.release();
    assert.equal(runner.batches.length, 3, 'a freed slot is refilled at once');
    assert.equal(runner.inFlight, 2);
    while (runner.held > 0) await runner.release();
    assert.equal(runner.maxInFlight, 2);
    assert.deepEqual(runner.sizes, [2, 2, 2, 2, 2]);
    assert.ok(all.every((s) => s.done && !s.error));
  });
});

describe('length grouping and fairness', () => {
  it('groups a mix of short and long texts into batches of similar length', async () => {
    const { clock, runner, scheduler, stats } = setup({ maxBatchTokens: 1024 });
    const all = Promise.all(Array.from({ length: 64 }, (_, i) => scheduler.submit(entry(`t${i}`, i % 2 === 0 ? 8 : 120))));
    await clock.advance(2);
    await all;
    for (const b of runner.batches) {
      const lengths = new Set(b.payloads.map((p) => (Number(p.text.slice(1)) % 2 === 0 ? 8 : 120)));
      assert.equal(lengths.size, 1, `batch ${b.keys.join(',')} mixes lengths`);
    }
    const real = stats.reduce((n, s) => n + s.realTokens, 0);
    const padded = stats.reduce((n, s) => n + s.paddedTokens, 0);
    assert.equal(real, padded, 'no padding at all');
    // FIFO would have padded every 8-token text to 120 tokens in mixed batches of 8.
    assert.deepEqual(runner.sizes, [32, 8, 8, 8, 8]);
  });

  it('keeps padding low and finishes every entry under a continuous stream of mixed lengths', async () => {
    // A CPU-like backend: 0.1 ms per run plus 400 padded tokens per ms; 5 texts arrive per ms, 70% short.
    const grouped = await simulateStream({ batchOverheadTokens: 40 });
    // The same stream batched for fullness alone (padding deemed free), i.e. close to FIFO.
    const fullest = await simulateStream({ batchOverheadTokens: 1e9 });
    for (const run of [grouped, fullest]) assert.equal(run.unfinished, 0, 'every entry finished');
    assert.ok(grouped.waste < 0.15, `padding waste ${(grouped.waste * 100).toFixed(1)}% should stay under 15%`);
    assert.ok(grouped.waste < fullest.waste / 2, `grouping wastes ${grouped.waste} vs ${fullest.waste} without it`);
    assert.ok(grouped.busyMs < fullest.busyMs, 'less padding is less backend time');
    assert.ok(grouped.maxWaitMs < 50, `the longest queue wait was ${grouped.maxWaitMs} ms: nothing starves`);
    assert.ok(grouped.maxWaitMs < fullest.maxWaitMs);
  });

  it('never starves a long entry behind a stream of short ones that would make fuller batches', async () => {
    const { runner, scheduler } = setup({ maxBatchSize: 8, maxBatchTokens: 800 }, { hold: true });
    let n = 0;
    const submitShorts = (count: number) => Array.from({ length: count }, () => track(scheduler.submit(entry(`s${n++}`, 10))));
    submitShorts(8);
    await settle();
    const long = track(scheduler.submit(entry('long', 400)));
    submitShorts(16);
    for (let i = 0; i < 6 && !long.done; i++) {
      submitShorts(8); // the queue never runs dry of short texts
      await runner.release();
    }
    const longBatch = runner.batches.findIndex((b) => b.keys.includes('long'));
    assert.equal(longBatch, 1, 'the oldest entry leaves in the next batch');
    assert.equal(runner.batches[1]!.shape.maxTokens, 400);
    assert.equal(long.value, 'long:a');
    while (runner.held > 0) await runner.release();
  });
});

describe('dedupe', () => {
  it('runs a key once when several submitters want it while it waits, with merged payloads', async () => {
    const { clock, runner, scheduler } = setup({ merge: unionHeads });
    const a = scheduler.submit(entry('same', 10, ['sentiment']));
    const b = scheduler.submit(entry('same', 10, ['entities']));
    const c = scheduler.submit(entry('other', 10, ['sentiment']));
    assert.deepEqual(scheduler.depth, { entries: 2, tokens: 20, running: 0 }, 'a dedupe does not count twice');
    await clock.advance(2);
    assert.deepEqual(runner.batches.map((x) => x.keys), [['same', 'other']]);
    assert.deepEqual(await Promise.all([a, b, c]), ['same:entities+sentiment', 'same:entities+sentiment', 'other:sentiment']);
  });

  it('lets a submit join a running entry whose payload covers it', async () => {
    const { clock, runner, scheduler } = setup({ merge: unionHeads, covers: coversHeads }, { hold: true });
    const first = scheduler.submit(entry('same', 10, ['entities', 'sentiment']));
    await clock.advance(2);
    const joined = scheduler.submit(entry('same', 10, ['sentiment']));
    assert.deepEqual(scheduler.depth, { entries: 0, tokens: 0, running: 1 });
    await runner.release();
    assert.deepEqual(await Promise.all([first, joined]), ['same:entities+sentiment', 'same:entities+sentiment']);
    await clock.advance(10);
    assert.equal(runner.batches.length, 1);
  });

  it('queues a submit whose payload a running entry does not cover', async () => {
    const { clock, runner, scheduler } = setup({ merge: unionHeads, covers: coversHeads }, { hold: true });
    const first = scheduler.submit(entry('same', 10, ['sentiment']));
    await clock.advance(2);
    const second = scheduler.submit(entry('same', 10, ['entities']));
    assert.deepEqual(scheduler.depth, { entries: 1, tokens: 10, running: 1 });
    await runner.release();
    await clock.advance(2);
    await runner.release();
    assert.equal(await first, 'same:sentiment');
    assert.equal(await second, 'same:entities');
    assert.deepEqual(runner.batches.map((x) => x.payloads[0]!.heads), [['sentiment'], ['entities']]);
  });
});

describe('bounded queue', () => {
  it('rejects at once with OVERLOADED past maxQueueEntries, counting waiting entries only', async () => {
    const { clock, runner, scheduler } = setup({ maxQueueEntries: 2, maxBatchSize: 2 }, { hold: true });
    const running = [track(scheduler.submit(entry('r1'))), track(scheduler.submit(entry('r2')))];
    await clock.advance(0);
    assert.equal(runner.held, 1);
    const waiting = [track(scheduler.submit(entry('w1'))), track(scheduler.submit(entry('w2'))), track(scheduler.submit(entry('w1')))];
    const rejected = track(scheduler.submit(entry('w3')));
    await settle();
    assertCode(rejected.error, 'OVERLOADED');
    assert.equal(rejected.error.retryAfterMs, 1000, 'before any batch was timed the estimate is the default');
    assert.match(rejected.error.message, /queue is full/);
    assert.deepEqual(scheduler.depth, { entries: 2, tokens: 20, running: 1 });
    while (runner.held > 0 || scheduler.depth.entries > 0) {
      await runner.release();
      await clock.advance(2);
    }
    assert.ok([...running, ...waiting].every((s) => s.done && !s.error));
    const retried = track(scheduler.submit(entry('w3')));
    await clock.advance(2);
    await runner.release();
    assert.equal(retried.value, 'w3:a');
  });

  it('rejects past maxQueueTokens with a retryAfterMs estimated from recent throughput', async () => {
    const { clock, runner, scheduler } = setup({ maxQueueTokens: 1000, maxBatchSize: 1 }, { hold: true });
    const timed = track(scheduler.submit(entry('timed', 100)));
    await clock.advance(0); // a batch of one is full: it leaves at once
    assert.equal(runner.held, 1);
    await clock.advance(10); // 100 real tokens in 10 ms: 10 tokens per ms
    await runner.release();
    assert.equal(timed.value, 'timed:a');
    track(scheduler.submit(entry('busy', 1)));
    await clock.advance(2);
    const queued = Array.from({ length: 10 }, (_, i) => track(scheduler.submit(entry(`q${i}`, 100))));
    assert.equal(scheduler.depth.tokens, 1000);
    const over = track(scheduler.submit(entry('over', 1)));
    await settle();
    assertCode(over.error, 'OVERLOADED');
    assert.equal(over.error.retryAfterMs, 100, '1000 queued tokens at 10 tokens/ms');
    while (runner.held > 0) await runner.release();
    assert.ok(queued.every((s) => s.done && !s.error));
  });

  it('clamps retryAfterMs and takes an oversized entry into an empty queue', async () => {
    const { clock, runner, scheduler } = setup({ maxQueueTokens: 50, maxBatchSize: 1 }, { hold: true });
    const big = track(scheduler.submit(entry('big', 400)));
    await clock.advance(0);
    await clock.advance(0.001); // 400 tokens in 1 µs: absurdly fast
    await runner.release();
    assert.equal(big.value, 'big:a', 'an empty queue accepts an entry above maxQueueTokens');
    track(scheduler.submit(entry('busy', 1)));
    await clock.advance(2);
    track(scheduler.submit(entry('w', 40)));
    const over = track(scheduler.submit(entry('over', 40)));
    await settle();
    assertCode(over.error, 'OVERLOADED');
    assert.equal(over.error.retryAfterMs, 50);
    while (runner.held > 0) await runner.release();
  });
});

describe('deadlines and cancellation', () => {
  it('removes an entry whose deadline passes while it waits and frees its place', async () => {
    const { clock, runner, scheduler } = setup({ maxQueueEntries: 1 }, { hold: true });
    track(scheduler.submit(entry('busy')));
    await clock.advance(2);
    const late = track(scheduler.submit(entry('late'), { deadline: 5 }));
    await clock.advance(2.9);
    assert.equal(late.done, false);
    await clock.advance(0.1);
    assertCode(late.error, 'DEADLINE_EXCEEDED');
    assert.deepEqual(scheduler.depth, { entries: 0, tokens: 0, running: 1 });
    const next = track(scheduler.submit(entry('next')));
    await runner.release();
    await clock.advance(2);
    await runner.release();
    assert.equal(next.value, 'next:a');
    assert.deepEqual(runner.batches.map((x) => x.keys), [['busy'], ['next']], 'the runner never saw the late entry');
  });

  it('removes an entry whose submitter aborts while it waits', async () => {
    const { clock, runner, scheduler } = setup();
    const controller = new AbortController();
    const gone = track(scheduler.submit(entry('gone'), { signal: controller.signal }));
    const kept = track(scheduler.submit(entry('kept')));
    controller.abort(new Error('client disconnected'));
    await settle();
    assertCode(gone.error, 'CANCELLED');
    assert.equal((gone.error.cause as Error).message, 'client disconnected');
    assert.equal(scheduler.depth.entries, 1);
    await clock.advance(2);
    assert.deepEqual(runner.batches.map((x) => x.keys), [['kept']]);
    assert.equal(kept.value, 'kept:a');
  });

  it('keeps a merged entry for the submitters who stay and drops what only the leaver wanted', async () => {
    const { clock, runner, scheduler } = setup({ merge: unionHeads });
    const controller = new AbortController();
    const leaver = track(scheduler.submit(entry('same', 10, ['entities']), { signal: controller.signal }));
    const stayer = track(scheduler.submit(entry('same', 10, ['sentiment'])));
    controller.abort();
    await clock.advance(2);
    assertCode(leaver.error, 'CANCELLED');
    assert.equal(stayer.value, 'same:sentiment');
    assert.deepEqual(runner.batches[0]!.payloads[0]!.heads, ['sentiment']);
  });

  it('rejects a running submitter at its deadline or abort while the batch completes for the others', async () => {
    const { clock, runner, scheduler, stats } = setup({}, { hold: true });
    const controller = new AbortController();
    const timedOut = track(scheduler.submit(entry('a'), { deadline: 10 }));
    const aborted = track(scheduler.submit(entry('b'), { signal: controller.signal }));
    const waitsTogether = track(scheduler.submit(entry('a')));
    const other = track(scheduler.submit(entry('c')));
    await clock.advance(2);
    assert.equal(runner.held, 1);
    await clock.advance(8);
    controller.abort();
    await settle();
    assertCode(timedOut.error, 'DEADLINE_EXCEEDED');
    assertCode(aborted.error, 'CANCELLED');
    assert.equal(waitsTogether.done, false);
    await runner.release();
    assert.equal(waitsTogether.value, 'a:a');
    assert.equal(other.value, 'c:a');
    assert.equal(stats[0]!.size, 3);
    assert.equal(stats[0]!.requests, 2, 'only the submitters still there were served');
  });

  it('rejects at once a submit that is already aborted or past its deadline', async () => {
    const { clock, runner, scheduler } = setup();
    await clock.advance(100);
    await assert.rejects(scheduler.submit(entry('x'), { signal: AbortSignal.abort() }), (e) => (assertCode(e, 'CANCELLED'), true));
    await assert.rejects(scheduler.submit(entry('y'), { deadline: 100 }), (e) => (assertCode(e, 'DEADLINE_EXCEEDED'), true));
    assert.equal(scheduler.depth.entries, 0);
    await clock.advance(10);
    assert.equal(runner.batches.length, 0);
  });
});

describe('submitAll: the texts of one request', () => {
  it('answers each entry on its own, in order, with one shared deadline timer that stops when the last is answered', async () => {
    const { clock, runner, scheduler } = setup({ maxBatchSize: 2 }, { hold: true });
    const [first, second, third] = scheduler.submitAll([entry('one'), entry('two'), entry('three')], { deadline: 50 }).map(track);
    await clock.advance(2);
    await runner.release(); // the first batch: one, two
    assert.equal(first!.value, 'one:a');
    assert.equal(second!.value, 'two:a');
    assert.equal(third!.done, false);
    await clock.advance(50);
    assertCode(third!.error, 'DEADLINE_EXCEEDED', 'the entry still running when the deadline passed');
    assert.equal(clock.now(), 52);
    await runner.release();
    const pending = track(scheduler.submitAll([entry('x'), entry('y')], { deadline: 1_000 })[0]!);
    await clock.advance(2);
    await runner.release();
    assert.equal(pending.value, 'x:a');
    // Every entry answered: no deadline timer is left to fire later.
    assert.equal((clock as unknown as { timers: Map<number, unknown> }).timers.size, 0);
  });

  it('cancels every entry still waiting or running when the shared signal aborts, and only those', async () => {
    const { clock, runner, scheduler } = setup({ maxBatchSize: 1 }, { hold: true });
    const controller = new AbortController();
    let listeners = 0;
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => (listeners++, add(...args))) as AbortSignal['addEventListener'];
    const outcomes = scheduler.submitAll([entry('a'), entry('b'), entry('c')], { signal }).map(track);
    assert.equal(listeners, 1, 'one abort listener for the whole request');
    const bystander = track(scheduler.submit(entry('b')));
    await clock.advance(2);
    await runner.release(); // a answered
    controller.abort();
    await settle();
    assert.equal(outcomes[0]!.value, 'a:a');
    assertCode(outcomes[1]!.error, 'CANCELLED');
    assertCode(outcomes[2]!.error, 'CANCELLED');
    await runner.release();
    await clock.advance(2);
    assert.equal(bystander.value, 'b:a', 'another request for the same text is still served');
    assert.deepEqual(runner.batches.map((x) => x.keys), [['a'], ['b']], 'c left the queue before it ran');
  });

  it('refuses a bad entry at once, before anything is queued', () => {
    const { scheduler } = setup();
    assert.throws(() => scheduler.submitAll([entry('fine'), { key: 'bad', tokens: 0, payload: { text: 'bad', heads: [] } }]), TypeError);
    assert.equal(scheduler.depth.entries, 0);
  });
});

describe('errors', () => {
  it('fails only the entry whose result is an Error', async () => {
    const boom = new Error('head failed on this text');
    const { clock, scheduler } = setup({}, { respond: (p) => (p.text === 'bad' ? boom : answer(p)) });
    const [good, bad, alsoBad] = [track(scheduler.submit(entry('good'))), track(scheduler.submit(entry('bad'))), track(scheduler.submit(entry('bad')))];
    await clock.advance(2);
    assert.equal(good.value, 'good:a');
    assert.equal(bad.error, boom);
    assert.equal(alsoBad.error, boom);
  });

  it('fails a whole batch with BATCH_FAILED when the runner rejects, and keeps serving', async () => {
    const cause = new Error('ORT session exploded');
    const { clock, scheduler, stats } = setup({}, { failBatch: (i) => (i === 0 ? cause : undefined) });
    const first = [track(scheduler.submit(entry('a'))), track(scheduler.submit(entry('b')))];
    await clock.advance(2);
    for (const s of first) {
      assertCode(s.error, 'BATCH_FAILED');
      assert.equal(s.error.cause, cause);
      assert.match(s.error.message, /batch of 2 texts failed: ORT session exploded/i);
    }
    assertCode(stats[0]!.error, 'BATCH_FAILED');
    const again = track(scheduler.submit(entry('a')));
    await clock.advance(2);
    assert.equal(again.value, 'a:a', 'the next batch runs normally');
  });

  it('fails the batch when the runner throws synchronously or answers the wrong number of results', async () => {
    let mode: 'throw' | 'short' | 'ok' = 'throw';
    const runner: BatchRunner<Payload, string> = {
      run(batch) {
        if (mode === 'throw') throw new Error('sync throw');
        if (mode === 'short') return Promise.resolve(batch.slice(1).map(answer));
        return Promise.resolve(batch.map(answer));
      },
    };
    const clock = new FakeClock();
    const scheduler = new Scheduler<Payload, string>(runner, { clock });
    const thrown = track(scheduler.submit(entry('a')));
    await clock.advance(2);
    assertCode(thrown.error, 'BATCH_FAILED');
    mode = 'short';
    const short = track(scheduler.submit(entry('a')));
    await clock.advance(2);
    assertCode(short.error, 'BATCH_FAILED');
    assert.match(short.error.message, /returned 0 results for 1 entries/);
    mode = 'ok';
    const ok = track(scheduler.submit(entry('a')));
    await clock.advance(2);
    assert.equal(ok.value, 'a:a');
  });

  it('reports batch stats, and a throwing onBatch hook does not stop the queue', async () => {
    const seen: BatchStats[] = [];
    const costMs = () => 4;
    const { clock, scheduler } = setup(
      { onBatch: (s) => { seen.push(s); throw new Error('metrics bug'); } },
      { costMs },
    );
    track(scheduler.submit(entry('a', 5)));
    await clock.advance(1);
    track(scheduler.submit(entry('b', 20)));
    track(scheduler.submit(entry('b', 20)));
    await clock.advance(10);
    const again = track(scheduler.submit(entry('c')));
    await clock.advance(10);
    assert.equal(again.value, 'c:a');
    assert.deepEqual(seen[0], { size: 2, maxTokens: 20, paddedTokens: 40, realTokens: 25, queueWaitMs: [2, 1], runMs: 4, requests: 3, error: undefined });
  });
});

describe('close', () => {
  it('rejects new work, flushes waiting work without waiting, and resolves once idle', async () => {
    const { clock, runner, scheduler } = setup({ maxWaitMs: 1000, maxBatchSize: 2 }, { hold: true });
    const work = ['a', 'b', 'c'].map((t) => track(scheduler.submit(entry(t))));
    await clock.advance(0);
    assert.equal(runner.batches.length, 1, 'a full batch left; c waits for company');
    const closed = track(scheduler.close());
    assert.equal(scheduler.close(), scheduler.close(), 'close is idempotent');
    const late = track(scheduler.submit(entry('late')));
    await settle();
    assertCode(late.error, 'SHUTTING_DOWN');
    await runner.release();
    assert.deepEqual(runner.batches.map((x) => x.keys), [['a', 'b'], ['c']], 'c left without waiting maxWaitMs');
    assert.equal(closed.done, false);
    await runner.release();
    assert.ok(closed.done);
    assert.ok(work.every((s) => s.done && !s.error));
    assert.equal(clock.now(), 0);
  });

  it('resolves at once when idle', async () => {
    const { scheduler } = setup();
    await scheduler.close();
    await assert.rejects(scheduler.submit(entry('x')), (e) => (assertCode(e, 'SHUTTING_DOWN'), true));
  });
});

describe('with real timers', () => {
  it('batches submits from separate timer callbacks within maxWaitMs', async () => {
    const runner = new FakeRunner();
    const scheduler = new Scheduler<Payload, string>(runner, { maxWaitMs: 50 });
    const a = scheduler.submit(entry('a'));
    await sleep(5);
    const b = scheduler.submit(entry('b'));
    assert.deepEqual(await Promise.all([a, b]), ['a:a', 'b:a']);
    assert.deepEqual(runner.batches.map((x) => x.keys), [['a', 'b']]);
    await scheduler.close();
  });

  it('rejects at a real deadline while the batch runs', async () => {
    const runner = new FakeRunner({ hold: true });
    const scheduler = new Scheduler<Payload, string>(runner, { maxWaitMs: 0 });
    const started = scheduler.now();
    await assert.rejects(scheduler.submit(entry('a'), { deadline: scheduler.now() + 20 }), (e) => (assertCode(e, 'DEADLINE_EXCEEDED'), true));
    assert.ok(scheduler.now() - started >= 20, "never reported before the deadline");
    const closed = scheduler.close();
    await runner.release();
    await closed;
  });

  it('serves many concurrent clients with few batches and closes cleanly', async () => {
    const sizes: number[] = [];
    const runner: BatchRunner<Payload, string> = {
      async run(batch, shape) {
        sizes.push(shape.size);
        await sleep(3);
        return batch.map(answer);
      },
    };
    const scheduler = new Scheduler<Payload, string>(runner, { maxBatchSize: 32 });
    const clients = Array.from({ length: 16 }, async (_, c) => {
      const out: string[] = [];
      for (let i = 0; i < 10; i++) out.push(await scheduler.submit(entry(`c${c}-${i % 5}`, 5 + ((c * 7 + i) % 40))));
      return out;
    });
    const results = await Promise.all(clients);
    await scheduler.close();
    assert.equal(results.flat().length, 160);
    assert.equal(results[3]![7], 'c3-2:a');
    assert.ok(sizes.length < 40, `${sizes.length} batches for 160 requests`);
    assert.deepEqual(scheduler.depth, { entries: 0, tokens: 0, running: 0 });
  });
});

describe('misuse', () => {
  const runner = new FakeRunner();
  it('rejects invalid options and entries with a TypeError', () => {
    assert.throws(() => new Scheduler(runner, { maxBatchSize: 0 }), TypeError);
    assert.throws(() => new Scheduler(runner, { maxBatchTokens: 1.5 }), TypeError);
    assert.throws(() => new Scheduler(runner, { maxWaitMs: -1 }), TypeError);
    assert.throws(() => new Scheduler(runner, { maxWaitMs: Number.NaN }), TypeError);
    assert.throws(() => new Scheduler(runner, { maxConcurrentBatches: 0 }), TypeError);
    const scheduler = new Scheduler<Payload, string>(runner);
    assert.throws(() => scheduler.submit(entry('x', 0)), /entry.tokens must be a positive integer/);
    assert.throws(() => scheduler.submit({ key: undefined as unknown as string, tokens: 1, payload: { text: '', heads: [] } }), TypeError);
  });

  it('ignores a deadline too far away for a timer', async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler<Payload, string>(new FakeRunner(), { clock });
    const far = track(scheduler.submit(entry('x'), { deadline: Number.POSITIVE_INFINITY }));
    await clock.advance(2);
    assert.equal(far.value, 'x:a');
  });
});
