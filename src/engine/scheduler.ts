import { performance } from 'node:perf_hooks';
import { cheapestGroup } from './cheapest-group.js';
import { EngineError } from './errors.js';

/** One unit of work: a text to run through the backbone once, whoever asked for it. */
export interface SchedulerEntry<P> {
  /** Dedupe key: entries with equal keys run once (e.g. the text itself). */
  key: string;
  /** Sequence length after tokenization (what the padded batch costs), a positive integer. */
  tokens: number;
  payload: P;
}

export interface BatchShape {
  size: number;
  /** The longest sequence in the batch: every row is padded to it. */
  maxTokens: number;
  /** size x maxTokens: what the backbone really computes. */
  paddedTokens: number;
}

export interface BatchRunner<P, R> {
  /**
   * Runs one batch and returns one result per payload, in order. An Error at index i fails only entry i;
   * a thrown or rejected error fails every entry of the batch.
   */
  run(batch: P[], shape: BatchShape): Promise<Array<R | Error>>;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BatchStats extends BatchShape {
  /** Sum of the entries' own lengths; 1 - realTokens / paddedTokens is the padding waste. */
  realTokens: number;
  /** Per entry: from its first submit to the start of the batch, ms. */
  queueWaitMs: number[];
  runMs: number;
  /** Submitters served by the batch (more than `size` when keys were deduped). */
  requests: number;
  /** Set when the whole batch failed. */
  error?: EngineError;
}

export interface SchedulerOptions<P> {
  /** Max entries per batch. Default 64. */
  maxBatchSize: number;
  /** Token budget per batch: longest sequence x entry count (the batch is padded). Default 8192. */
  maxBatchTokens: number;
  /** How long the oldest waiting entry may wait for a batch to fill while the runner is free, ms. Default 2. */
  maxWaitMs: number;
  /** Queue bound in entries waiting (not running). Default 4096. */
  maxQueueEntries: number;
  /** Queue bound in tokens waiting (not running). Default 262144. */
  maxQueueTokens: number;
  /**
   * The fixed cost of one backbone run, in tokens' worth of compute: how much padding is worth paying to
   * save a run when grouping texts by length. Small on CPU (a run costs little beyond its tokens: measured
   * 4-7 tokens' worth on 2 cores, the server's default is 12), large on GPU (kernel launches, transfers;
   * the server's default is 4096). Default 128.
   */
  batchOverheadTokens: number;
  /** Batches run at once (the server: one per onnxruntime replica on the CPU, 2 on CUDA). Default 1. */
  maxConcurrentBatches: number;
  /** Merges the payloads of two submits with the same key (e.g. the union of heads). Default: keep the first. */
  merge: (a: P, b: P) => P;
  /** Whether a running entry's payload serves a new submit's (e.g. its heads cover the wanted ones). Default: true. */
  covers: (running: P, wanted: P) => boolean;
  /** Time source and timers; injectable for tests. Default: performance.now() and the global timers. */
  clock: Clock;
  /** Called after every batch, for metrics. Must not throw (a throw is ignored). Default: none. */
  onBatch?: (stats: BatchStats) => void;
}

export interface SubmitOptions {
  /** Aborting rejects this submit with CANCELLED (e.g. the client disconnected). */
  signal?: AbortSignal;
  /** Absolute time on this scheduler's clock (see `now()`) after which the submit rejects with DEADLINE_EXCEEDED. */
  deadline?: number;
}

/** Batch selection considers this many batches' worth of the oldest entries, to bound its cost. */
export const LOOKAHEAD_BATCHES = 2;
/** retryAfterMs is clamped to this range; the middle value is used before any batch has been timed. */
const RETRY_AFTER_MS = { min: 50, unknown: 1000, max: 5000 };
const MAX_TIMER_MS = 2 ** 31 - 1;

const defaultClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Waiter<P, R> {
  wanted: P;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  /** The deadline and abort signal this waiter shares with the other entries of its submitAll call. */
  watch: Watch<P, R>;
}

/**
 * One deadline timer and one abort listener for all the waiters of one submitAll call (a request's texts
 * share both): a timer and a listener per text cost more than the rest of a submit.
 */
interface Watch<P, R> {
  /** The waiters still waiting, with their entries. */
  members: Map<Waiter<P, R>, Item<P, R>>;
  deadline?: number;
  timer?: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Item<P, R> {
  key: string;
  tokens: number;
  payload: P;
  enqueuedAt: number;
  running: boolean;
  /** Insertion-ordered: payloads are re-merged in arrival order when a submitter leaves. */
  waiters: Set<Waiter<P, R>>;
  /** Neighbours in the waiting list, in arrival order. */
  older?: Item<P, R>;
  newer?: Item<P, R>;
}

/**
 * One queue per backbone: entries from every request are batched under a size and token budget, deduped by
 * key, grouped by length, bounded, and each submitter gets its own promise. Knows nothing of GraphQL or ONNX.
 */
export class Scheduler<P, R> {
  private readonly options: SchedulerOptions<P>;
  private readonly clock: Clock;
  /** Waiting entries by key. */
  private readonly waiting = new Map<string, Item<P, R>>();
  /**
   * The same entries in arrival order, as a linked list: O(1) removal from anywhere. (A Map's own order
   * will not do: V8 leaves deleted slots in place, so finding the first entry of a busy Map costs O(deleted).)
   */
  private oldest: Item<P, R> | undefined;
  private newest: Item<P, R> | undefined;
  /** The latest running entry of each key, for submits that can join it. */
  private readonly runningByKey = new Map<string, Item<P, R>>();
  private queuedTokens = 0;
  private longest = 0;
  private longestStale = false;
  private runningBatches = 0;
  private timer: { handle: unknown; dueAt: number } | undefined;
  private pumpQueued = false;
  /** Recent throughput (real tokens per ms of batch time), exponentially weighted; 0 until measured. */
  private tokensPerMs = 0;
  private closing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly runner: BatchRunner<P, R>,
    options: Partial<SchedulerOptions<P>> = {},
  ) {
    this.options = {
      maxBatchSize: positiveInteger('maxBatchSize', options.maxBatchSize ?? 64),
      maxBatchTokens: positiveInteger('maxBatchTokens', options.maxBatchTokens ?? 8192),
      maxWaitMs: nonNegative('maxWaitMs', options.maxWaitMs ?? 2),
      maxQueueEntries: positiveInteger('maxQueueEntries', options.maxQueueEntries ?? 4096),
      maxQueueTokens: positiveInteger('maxQueueTokens', options.maxQueueTokens ?? 262_144),
      batchOverheadTokens: nonNegative('batchOverheadTokens', options.batchOverheadTokens ?? 128),
      maxConcurrentBatches: positiveInteger('maxConcurrentBatches', options.maxConcurrentBatches ?? 1),
      merge: options.merge ?? ((a) => a),
      covers: options.covers ?? (() => true),
      clock: options.clock ?? defaultClock,
      onBatch: options.onBatch,
    };
    this.clock = this.options.clock;
  }

  /** The scheduler's clock, on which `deadline`s are expressed. */
  now(): number {
    return this.clock.now();
  }

  /** Entries and tokens waiting (dedupe counted once), and batches running. */
  get depth(): { entries: number; tokens: number; running: number } {
    return { entries: this.waiting.size, tokens: this.queuedTokens, running: this.runningBatches };
  }

  /**
   * Resolves with the entry's result. The result may have been computed for a merged payload (a superset
   * of what this submit asked for) and may be shared with other submitters of the same key: do not mutate it.
   */
  submit(entry: SchedulerEntry<P>, options: SubmitOptions = {}): Promise<R> {
    return this.submitAll([entry], options)[0]!;
  }

  /**
   * submit() for several entries that share the options (one request's texts): one promise per entry, in
   * order; each entry succeeds or fails on its own, but they share one deadline timer and one abort listener.
   */
  submitAll(entries: readonly SchedulerEntry<P>[], options: SubmitOptions = {}): Promise<R>[] {
    // Caller misuse (a missing key, a length that is not a positive integer) throws a TypeError at once.
    for (const entry of entries) {
      if (typeof entry?.key !== 'string') throw new TypeError('Scheduler.submit: entry.key must be a string');
      positiveInteger('entry.tokens', entry.tokens);
    }
    const { signal, deadline } = options;
    const refusal = this.closing
      ? new EngineError('SHUTTING_DOWN', 'The scheduler is shutting down')
      : signal?.aborted
        ? cancelled(signal)
        : deadline !== undefined && deadline <= this.clock.now()
          ? deadlineExceeded()
          : undefined;
    if (refusal) return entries.map(() => Promise.reject(refusal));

    const watch: Watch<P, R> = { members: new Map() };
    const promises = entries.map((entry) => {
      const item = this.findOrEnqueue(entry);
      if (item instanceof EngineError) return Promise.reject(item);
      return new Promise<R>((resolve, reject) => {
        const waiter: Waiter<P, R> = { wanted: entry.payload, resolve, reject, watch };
        item.waiters.add(waiter);
        watch.members.set(waiter, item);
      });
    });
    if (watch.members.size > 0) {
      if (signal) {
        watch.signal = signal;
        watch.onAbort = () => this.expire(watch, cancelled(signal));
        signal.addEventListener('abort', watch.onAbort, { once: true });
      }
      if (deadline !== undefined) {
        watch.deadline = deadline;
        this.armDeadline(watch);
      }
    }
    return promises;
  }

  /**
   * Node's timers count from the event loop's cached time, so one may fire a little before `deadline` on the
   * scheduler's clock; it is then re-armed for the rest, and a deadline is never reported early.
   */
  private armDeadline(watch: Watch<P, R>): void {
    watch.timer = undefined;
    const ms = watch.deadline! - this.clock.now();
    // Beyond what a timer can hold (~24.8 days) a deadline cannot matter.
    if (ms > MAX_TIMER_MS) return;
    if (ms <= 0) return this.expire(watch, deadlineExceeded());
    watch.timer = this.clock.setTimeout(() => this.armDeadline(watch), ms);
  }

  /** Every waiter still in the watch leaves with `error` (deadline or abort). */
  private expire(watch: Watch<P, R>, error: EngineError): void {
    for (const [waiter, item] of [...watch.members]) this.leave(item, waiter, error);
  }

  /** Stops taking work (new submits reject with SHUTTING_DOWN); resolves once waiting and running work is done. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.onIdle = resolve;
      this.requestPump();
      this.checkIdle();
    });
    return this.closing;
  }

  private findOrEnqueue(entry: SchedulerEntry<P>): Item<P, R> | EngineError {
    const running = this.runningByKey.get(entry.key);
    if (running && this.options.covers(running.payload, entry.payload)) return running;
    const waiting = this.waiting.get(entry.key);
    if (waiting) {
      waiting.payload = this.options.merge(waiting.payload, entry.payload);
      if (entry.tokens > waiting.tokens) {
        this.queuedTokens += entry.tokens - waiting.tokens;
        waiting.tokens = entry.tokens;
        if (!this.longestStale) this.longest = Math.max(this.longest, entry.tokens);
      }
      return waiting;
    }
    // An empty queue takes any entry, so that a misconfigured bound cannot reject one forever.
    const { maxQueueEntries, maxQueueTokens } = this.options;
    if (this.waiting.size > 0 && (this.waiting.size >= maxQueueEntries || this.queuedTokens + entry.tokens > maxQueueTokens)) {
      const retryAfterMs = this.estimateRetryAfterMs();
      return new EngineError('OVERLOADED', `The queue is full (${this.waiting.size} texts, ${this.queuedTokens} tokens waiting); retry in ${retryAfterMs} ms`, { retryAfterMs });
    }
    const item: Item<P, R> = {
      key: entry.key,
      tokens: entry.tokens,
      payload: entry.payload,
      enqueuedAt: this.clock.now(),
      running: false,
      waiters: new Set(),
    };
    this.waiting.set(item.key, item);
    item.older = this.newest;
    if (this.newest) this.newest.newer = item;
    else this.oldest = item;
    this.newest = item;
    this.queuedTokens += item.tokens;
    if (!this.longestStale) this.longest = Math.max(this.longest, item.tokens);
    this.requestPump();
    return item;
  }

  /** A submitter leaves (deadline or abort); a waiting entry nobody wants any more leaves the queue. */
  private leave(item: Item<P, R>, waiter: Waiter<P, R>, error: EngineError): void {
    if (!item.waiters.delete(waiter)) return;
    this.release(waiter);
    if (!item.running) {
      if (item.waiters.size === 0) this.dequeue(item);
      else item.payload = mergeAll([...item.waiters].map((w) => w.wanted), this.options.merge);
    }
    waiter.reject(error);
    this.checkIdle();
  }

  /** The waiter no longer waits: the last one of its watch stops the shared timer and listener. */
  private release(waiter: Waiter<P, R>): void {
    const { watch } = waiter;
    if (!watch.members.delete(waiter) || watch.members.size > 0) return;
    if (watch.timer !== undefined) this.clock.clearTimeout(watch.timer);
    if (watch.onAbort) watch.signal?.removeEventListener('abort', watch.onAbort);
    watch.timer = watch.onAbort = undefined;
  }

  private dequeue(item: Item<P, R>): void {
    this.waiting.delete(item.key);
    if (item.older) item.older.newer = item.newer;
    else this.oldest = item.newer;
    if (item.newer) item.newer.older = item.older;
    else this.newest = item.older;
    item.older = item.newer = undefined;
    this.queuedTokens -= item.tokens;
    if (item.tokens >= this.longest) this.longestStale = true;
  }

  private longestWaiting(): number {
    if (this.longestStale) {
      this.longest = 0;
      for (let item = this.oldest; item; item = item.newer) this.longest = Math.max(this.longest, item.tokens);
      this.longestStale = false;
    }
    return this.longest;
  }

  /*
   * When a batch leaves — the timing from first principles.
   *
   * A padded backbone run costs a fixed overhead plus work proportional to its padded tokens. Batching
   * amortises the overhead and keeps every core (or the GPU) busy; waiting to batch costs latency. Hence:
   *
   * 1. Never wait while the runner is busy. Entries accumulate and the next batch fills while the current
   *    one runs (continuous batching, as in TEI). When a batch completes, its callback dispatches the next
   *    at once if the waiting entries have waited maxWaitMs already — under load they always have.
   * 2. With a free runner, waiting helps only if more entries can still join the batch. A batch that is
   *    full — maxBatchSize entries, or no entry as long as the longest waiting one would fit the token
   *    budget any more — leaves now. Otherwise the oldest entry has been promised at most maxWaitMs of
   *    waiting: a single timer, armed for oldest.enqueuedAt + maxWaitMs, dispatches then. The timer passes
   *    the time it was armed for, so a timer that fires a hair early by the clock's reckoning still counts.
   *    (At one client this wait is pure latency; maxWaitMs = 0 turns it off and keeps points 1 and 3.)
   * 3. Never decide inside submit(). Decisions run in a microtask queued once per tick, so that every
   *    submit of one synchronous tick (e.g. the texts a DataLoader batch hands over) is in the queue when
   *    the decision is taken and shares a batch even with maxWaitMs = 0; and a runner that calls submit()
   *    re-entrantly cannot disturb a dispatch half done.
   * 4. Closing flushes: nothing more can arrive, so waiting is pure loss.
   *
   * Which entries go is selectBatch's business; this function only decides when.
   */
  private pump(firedFor = -Infinity): void {
    const { maxConcurrentBatches, maxWaitMs } = this.options;
    while (this.runningBatches < maxConcurrentBatches && this.oldest) {
      const dueAt = this.oldest.enqueuedAt + maxWaitMs;
      if (!this.closing && Math.max(this.clock.now(), firedFor) < dueAt && !this.isFull()) {
        this.armTimer(dueAt);
        return;
      }
      void this.runBatch(this.selectBatch());
    }
    this.disarmTimer();
  }

  private requestPump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private isFull(): boolean {
    const n = this.waiting.size;
    return n >= this.options.maxBatchSize || (n + 1) * this.longestWaiting() > this.options.maxBatchTokens;
  }

  private armTimer(dueAt: number): void {
    if (this.timer?.dueAt === dueAt) return;
    this.disarmTimer();
    const handle = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.pump(dueAt);
    }, Math.max(0, dueAt - this.clock.now()));
    this.timer = { handle, dueAt };
  }

  private disarmTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  /*
   * Which entries go. The oldest waiting entry always goes, so none can starve: an entry at position k of
   * the queue leaves within k batches. Its companions are chosen to waste little padding without giving up
   * on full batches: a run costs about batchOverheadTokens + count x longest, so the oldest
   * LOOKAHEAD_BATCHES x maxBatchSize entries, sorted by length, are split into the contiguous groups that
   * cost least in total under the budget (a dynamic programme, O(candidates x maxBatchSize)), and the group
   * holding the oldest entry leaves. Padding is paid only where it saves a run. This runs once per batch,
   * never per submit. An entry longer than the whole budget goes alone.
   */
  private selectBatch(): Item<P, R>[] {
    const { maxBatchSize, maxBatchTokens, batchOverheadTokens } = this.options;
    const limit = maxBatchSize * LOOKAHEAD_BATCHES;
    const candidates: Item<P, R>[] = [];
    for (let item = this.oldest; item && candidates.length < limit; item = item.newer) candidates.push(item);
    const oldest = candidates[0]!;
    // Stable sort: among equal lengths, older entries stay first.
    candidates.sort((a, b) => a.tokens - b.tokens);
    const lengths = Float64Array.from(candidates, (item) => item.tokens);
    const [from, to] = cheapestGroup(lengths, candidates.indexOf(oldest), maxBatchSize, maxBatchTokens, batchOverheadTokens);
    return candidates.slice(from, to + 1);
  }

  private async runBatch(items: Item<P, R>[]): Promise<void> {
    const start = this.clock.now();
    let maxTokens = 0;
    let realTokens = 0;
    for (const item of items) {
      this.dequeue(item);
      item.running = true;
      this.runningByKey.set(item.key, item);
      maxTokens = Math.max(maxTokens, item.tokens);
      realTokens += item.tokens;
    }
    const shape: BatchShape = { size: items.length, maxTokens, paddedTokens: items.length * maxTokens };
    const queueWaitMs = items.map((item) => start - item.enqueuedAt);
    this.runningBatches++;

    let results: Array<R | Error> | undefined;
    let failure: EngineError | undefined;
    try {
      results = await this.runner.run(items.map((item) => item.payload), shape);
      if (!Array.isArray(results) || results.length !== items.length) {
        const got = Array.isArray(results) ? `${results.length} results` : String(results);
        failure = new EngineError('BATCH_FAILED', `A batch of ${items.length} texts failed: the runner returned ${got} for ${items.length} entries`);
      }
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      failure = new EngineError('BATCH_FAILED', `A batch of ${items.length} texts failed: ${reason}`, { cause });
    }
    const runMs = this.clock.now() - start;
    this.runningBatches--;

    let requests = 0;
    items.forEach((item, i) => {
      item.running = false;
      if (this.runningByKey.get(item.key) === item) this.runningByKey.delete(item.key);
      const outcome = failure ?? results![i]!;
      for (const waiter of item.waiters) {
        this.release(waiter);
        if (outcome instanceof Error) waiter.reject(outcome);
        else waiter.resolve(outcome);
        requests++;
      }
      item.waiters.clear();
    });
    if (!failure && runMs > 0) {
      const rate = realTokens / runMs;
      this.tokensPerMs = this.tokensPerMs === 0 ? rate : 0.8 * this.tokensPerMs + 0.2 * rate;
    }
    try {
      this.options.onBatch?.({ ...shape, realTokens, queueWaitMs, runMs, requests, error: failure });
    } catch {
      // Metrics must never stop the queue.
    }
    this.pump();
    this.checkIdle();
  }

  /** Time for the runner(s) to work through the queue at the recent rate, clamped. */
  private estimateRetryAfterMs(): number {
    if (this.tokensPerMs === 0) return RETRY_AFTER_MS.unknown;
    const ms = this.queuedTokens / (this.tokensPerMs * this.options.maxConcurrentBatches);
    return Math.round(Math.min(RETRY_AFTER_MS.max, Math.max(RETRY_AFTER_MS.min, ms)));
  }

  private checkIdle(): void {
    if (this.onIdle && this.waiting.size === 0 && this.runningBatches === 0) {
      this.disarmTimer();
      this.onIdle();
      this.onIdle = undefined;
    }
  }
}

function mergeAll<P>(payloads: P[], merge: (a: P, b: P) => P): P {
  return payloads.reduce((merged, payload) => merge(merged, payload));
}

function cancelled(signal: AbortSignal): EngineError {
  return new EngineError('CANCELLED', 'The request was cancelled', { cause: signal.reason });
}

function deadlineExceeded(): EngineError {
  return new EngineError('DEADLINE_EXCEEDED', 'The deadline passed before the text was processed');
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Scheduler: ${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`Scheduler: ${name} must be a finite number >= 0, got ${value}`);
  }
  return value;
}
