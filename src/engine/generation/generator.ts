import { performance } from 'node:perf_hooks';
import { EngineError } from '../errors.js';
import type { Clock } from '../scheduler.js';
import type { EncodedSource, Seq2SeqBackend, StepRow } from './backend.js';
import { applyProcessors, forceTokenAtLimit, logSoftmaxInPlace, minNewTokens, suppressTokens, type LogitsProcessor } from './logits-processors.js';
import { createSearch, type Search } from './search.js';
import { planBeamSlots, SlotPool } from './slot-pool.js';

export interface GenerationRequest {
  /** Source token ids, already tokenized and truncated; not empty. */
  source: Int32Array;
  /** Length limit, a forced or emitted eos included; capped by the backend's maxPositions. */
  maxNewTokens: number;
  /** 1 (default) is greedy search. */
  beams?: number;
  /** Beam search ranks finished hypotheses by sumLogProbs / length^lengthPenalty. Default 1. */
  lengthPenalty?: number;
  /** Beam search: true stops once `beams` hypotheses finished; false (default) uses Hugging Face's heuristic. */
  earlyStopping?: boolean;
  /** No eos before this many tokens. Default 0. */
  minNewTokens?: number;
  /** Aborting rejects with CANCELLED; a running request's rows leave before the next step. */
  signal?: AbortSignal;
  /** Absolute time on this generator's clock (see `now()`); past it the request rejects with DEADLINE_EXCEEDED. */
  deadline?: number;
}

export type FinishReason = 'eos' | 'length';

export interface GenerationResult {
  /** The generated tokens, without the decoder start token and without eos. */
  ids: Int32Array;
  /**
   * 'eos' when the model chose to end; 'length' when the limit (maxNewTokens or maxPositions) ended it,
   * including by the eos that forceEosAtMaxLength puts in the last place.
   */
  finishReason: FinishReason;
  /** Beam search only: the sequence's length-penalised log-probability. */
  score?: number;
}

export interface StepStats {
  /** Rows in the step: every live hypothesis of every running request, padding rows included. */
  rows: number;
  /** Static batching only: rows of sequences already answered, carried until their batch drains. */
  paddingRows: number;
  requests: number;
  /** Requests that joined at this step (their encoder pass ran just before it). */
  admitted: number;
  /** The backend's step call alone, ms. */
  backendMs: number;
  /** The whole iteration (encode, step, search), ms. */
  ms: number;
}

export interface SequenceStats {
  /** Tokens in the result, eos included when there was one. */
  tokens: number;
  finishReason: FinishReason;
  beams: number;
  steps: number;
  /** From submit to joining the running batch, ms. */
  queueMs: number;
  /** From submit to the result, ms. */
  totalMs: number;
}

export interface GeneratorOptions {
  /** The token every decoder row starts from (Marian: the pad token). Required. */
  decoderStartTokenId: number;
  /** Required. */
  eosTokenId: number;
  /** Tokens never generated (Marian: [pad]). Default []. */
  badWordsIds: readonly number[];
  /** The last token a length limit allows is eos (Marian's forced_eos_token_id). Default true. */
  forceEosAtMaxLength: boolean;
  /** Rows (cache slots) in the running batch; a beam search request takes `beams` of them. Default 64. */
  maxActiveRows: number;
  /**
   * Cache tokens reserved by the running batch: per request, its source length plus beams x its length
   * limit (see SlotPool). This is what bounds the backend's cache memory. Default 65536.
   */
  tokenBudget: number;
  /** Requests waiting to join (not running); past it submit rejects with OVERLOADED. Default 1024. */
  maxQueue: number;
  /**
   * true: waiting requests join the running batch at any step, as soon as slots and budget allow (iteration-
   * level batching), and a finished sequence leaves at once. false: static batching as Hugging Face's generate()
   * does it: a batch is admitted only when the previous one has drained, and a sequence that finished early is
   * answered but its rows stay in every step as padding (fed eos, outputs dropped) until the batch's longest
   * sequence ends. Its reservation therefore covers maxPositions tokens per beam. Default true.
   */
  continuous: boolean;
  /** Time source and timers; injectable for tests. Default: performance.now() and the global timers. */
  clock: Clock;
  /** After every step, for metrics. Must not throw (a throw is ignored). */
  onStep?: (stats: StepStats) => void;
  /** After every request that resolved, for metrics. Must not throw (a throw is ignored). */
  onSequence?: (stats: SequenceStats) => void;
}

const RETRY_AFTER_MS = { min: 50, unknown: 1000, max: 5000 };
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Weight of history in the completion-rate estimate behind retryAfterMs, per step. */
const RATE_DECAY = 0.9;

const defaultClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Job {
  readonly source: Int32Array;
  readonly beams: number;
  readonly lengthPenalty: number;
  readonly earlyStopping: boolean;
  /** maxNewTokens capped by the backend's positions. */
  readonly limit: number;
  /** Tokens held in the pool while admitted. */
  readonly reservation: number;
  readonly processors: readonly LogitsProcessor[];
  readonly enqueuedAt: number;
  readonly deadline?: number;
  readonly signal?: AbortSignal;
  resolve: (result: GenerationResult) => void;
  reject: (error: EngineError) => void;
  /** Resolved or rejected; an admitted job still holds its slots until the next sweep. */
  settled: boolean;
  /** Reserved slots, empty until admitted and after retiring. */
  slots: number[];
  /** The slot of each live hypothesis, in the search's order. */
  rowSlots: number[];
  encoded?: EncodedSource;
  search?: Search;
  admittedAt: number;
  steps: number;
  timer?: unknown;
  onAbort?: () => void;
}

/**
 * The decoding loop for one sequence-to-sequence model, batching at the level of iterations: every step
 * runs one backend call over the live rows of all running requests, each row at its own length; a request
 * joins the batch at the next step boundary once slots and token budget allow, and leaves the moment it
 * finishes. Knows nothing of GraphQL or ONNX.
 *
 * Each iteration:
 * 1. Sweep: requests that finished, were cancelled or passed their deadline give back their slots and budget.
 * 2. Admit waiting requests in arrival order while they fit (the first that does not fit blocks the rest,
 *    so a large request cannot starve), with all their encoder passes in one encode call.
 * 3. Step every live row once; per request, log-softmax (beam search), the logits processors and the search
 *    pick the next tokens, and forks hand surviving beams their parents' caches.
 * Submits never decide anything: the loop starts in a microtask, so requests of one tick share an encode.
 */
export class Seq2SeqGenerator {
  private readonly options: GeneratorOptions;
  private readonly clock: Clock;
  private readonly pool: SlotPool;
  private readonly suppressBadWords: LogitsProcessor | undefined;
  private readonly waiting: Job[] = [];
  /** Admitted requests in admission order, which is their rows' order in each step. */
  private active: Job[] = [];
  /** Static batching: answered requests whose rows still run as padding until the batch drains. */
  private padding: Job[] = [];
  private looping = false;
  private closing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;
  /** Requests finished and time spent, decayed per step: the completion rate behind retryAfterMs. */
  private recentFinished = 0;
  private recentMs = 0;

  constructor(
    private readonly backend: Seq2SeqBackend,
    options: Partial<GeneratorOptions> & Pick<GeneratorOptions, 'decoderStartTokenId' | 'eosTokenId'>,
  ) {
    const vocabSize = positiveInteger('backend.vocabSize', backend.vocabSize);
    positiveInteger('backend.maxPositions', backend.maxPositions);
    const tokenId = (name: string, id: number) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new TypeError(`Seq2SeqGenerator: ${name} must be a token id below ${vocabSize}, got ${id}`);
      return id;
    };
    this.options = {
      decoderStartTokenId: tokenId('decoderStartTokenId', options.decoderStartTokenId),
      eosTokenId: tokenId('eosTokenId', options.eosTokenId),
      badWordsIds: (options.badWordsIds ?? []).map((id) => tokenId('badWordsIds[]', id)),
      forceEosAtMaxLength: options.forceEosAtMaxLength ?? true,
      maxActiveRows: positiveInteger('maxActiveRows', options.maxActiveRows ?? 64),
      tokenBudget: positiveInteger('tokenBudget', options.tokenBudget ?? 65_536),
      maxQueue: positiveInteger('maxQueue', options.maxQueue ?? 1024),
      continuous: options.continuous ?? true,
      clock: options.clock ?? defaultClock,
      onStep: options.onStep,
      onSequence: options.onSequence,
    };
    this.clock = this.options.clock;
    this.pool = new SlotPool(this.options.maxActiveRows, this.options.tokenBudget);
    this.suppressBadWords = this.options.badWordsIds.length > 0 ? suppressTokens(this.options.badWordsIds) : undefined;
  }

  /** The generator's clock, on which `deadline`s are expressed. */
  now(): number {
    return this.clock.now();
  }

  get depth(): { waiting: number; requests: number; rows: number; slots: number; reservedTokens: number } {
    const rows = [...this.active, ...this.padding].reduce((n, job) => n + job.rowSlots.length, 0);
    return { waiting: this.waiting.length, requests: this.active.length, rows, slots: this.pool.busySlots, reservedTokens: this.pool.reservedTokens };
  }

  /**
   * Resolves with the generated sequence. Caller misuse (a bad field, a request that could never fit the
   * slots or the token budget) throws a TypeError or RangeError at once; refusals (OVERLOADED, SHUTTING_DOWN,
   * an aborted signal, a past deadline) reject.
   */
  submit(request: GenerationRequest): Promise<GenerationResult> {
    const job = this.createJob(request);
    const refusal = this.closing
      ? new EngineError('SHUTTING_DOWN', 'The generator is shutting down')
      : request.signal?.aborted
        ? cancelled(request.signal)
        : job.deadline !== undefined && job.deadline <= job.enqueuedAt
          ? deadlineExceeded()
          : this.waiting.length >= this.options.maxQueue
            ? this.overloaded()
            : undefined;
    if (refusal) return Promise.reject(refusal);
    return new Promise<GenerationResult>((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
      this.waiting.push(job);
      this.watch(job);
      this.startLoop();
    });
  }

  /** Stops taking work (new submits reject with SHUTTING_DOWN); resolves once waiting and running requests are done. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.onIdle = resolve;
      this.checkIdle();
    });
    return this.closing;
  }

  private createJob(request: GenerationRequest): Job {
    const { source, maxNewTokens } = request;
    if (!(source instanceof Int32Array) || source.length === 0) throw new TypeError('Seq2SeqGenerator.submit: source must be a non-empty Int32Array');
    positiveInteger('maxNewTokens', maxNewTokens);
    const beams = positiveInteger('beams', request.beams ?? 1);
    const lengthPenalty = request.lengthPenalty ?? 1;
    if (!Number.isFinite(lengthPenalty)) throw new TypeError(`Seq2SeqGenerator.submit: lengthPenalty must be finite, got ${lengthPenalty}`);
    const minNew = request.minNewTokens ?? 0;
    if (!Number.isInteger(minNew) || minNew < 0) throw new TypeError(`Seq2SeqGenerator.submit: minNewTokens must be an integer >= 0, got ${minNew}`);
    if (request.deadline !== undefined && Number.isNaN(request.deadline)) throw new TypeError('Seq2SeqGenerator.submit: deadline is NaN');

    const limit = Math.min(maxNewTokens, this.backend.maxPositions);
    // A static batch's padding rows run on to the batch's longest sequence, at most maxPositions.
    const reservation = source.length + beams * (this.options.continuous ? limit : this.backend.maxPositions);
    if (beams > this.options.maxActiveRows) throw new RangeError(`Seq2SeqGenerator.submit: ${beams} beams exceed maxActiveRows (${this.options.maxActiveRows})`);
    if (reservation > this.options.tokenBudget) {
      throw new RangeError(`Seq2SeqGenerator.submit: a reservation of ${reservation} tokens (${source.length} source tokens + ${beams} beams) exceeds the token budget (${this.options.tokenBudget})`);
    }
    const { eosTokenId, forceEosAtMaxLength } = this.options;
    const processors: LogitsProcessor[] = [];
    if (this.suppressBadWords) processors.push(this.suppressBadWords);
    if (minNew > 0) processors.push(minNewTokens(eosTokenId, minNew));
    // Last, so that the forced eos wins over every other rule.
    if (forceEosAtMaxLength) processors.push(forceTokenAtLimit(eosTokenId, limit));
    return {
      source,
      beams,
      lengthPenalty,
      earlyStopping: request.earlyStopping ?? false,
      limit,
      reservation,
      processors,
      enqueuedAt: this.clock.now(),
      deadline: request.deadline,
      signal: request.signal,
      resolve: () => {},
      reject: () => {},
      settled: false,
      slots: [],
      rowSlots: [],
      admittedAt: 0,
      steps: 0,
    };
  }

  private watch(job: Job): void {
    if (job.signal) {
      const signal = job.signal;
      job.onAbort = () => this.fail(job, cancelled(signal));
      signal.addEventListener('abort', job.onAbort, { once: true });
    }
    if (job.deadline !== undefined) this.armDeadline(job);
  }

  /** Node's timers may fire a little early by this clock; the timer then re-arms, so a deadline is never reported early. */
  private armDeadline(job: Job): void {
    job.timer = undefined;
    const ms = job.deadline! - this.clock.now();
    if (ms > MAX_TIMER_MS) return;
    if (ms <= 0) return this.fail(job, deadlineExceeded());
    job.timer = this.clock.setTimeout(() => this.armDeadline(job), ms);
  }

  private unwatch(job: Job): void {
    if (job.timer !== undefined) this.clock.clearTimeout(job.timer);
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    job.timer = job.onAbort = undefined;
  }

  /**
   * Rejects at once. A waiting job leaves the queue; an admitted one keeps its slots until the loop's next
   * sweep, because a step in flight may still be writing to its caches.
   */
  private fail(job: Job, error: EngineError): void {
    if (job.settled) return;
    job.settled = true;
    this.unwatch(job);
    const queued = this.waiting.indexOf(job);
    if (queued >= 0) this.waiting.splice(queued, 1);
    job.reject(error);
    this.checkIdle();
  }

  private startLoop(): void {
    if (this.looping) return;
    this.looping = true;
    queueMicrotask(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        const startedAt = this.clock.now();
        this.sweep();
        const admitted = await this.admit();
        this.sweep();
        if (this.active.length > 0) await this.step(admitted, startedAt);
        // A backend that answers at once must still let I/O in between steps: new submits, aborts, timers.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.looping = false;
      this.checkIdle();
    }
  }

  /** Overdue requests fail; settled ones give their slots and budget back. */
  private sweep(): void {
    const now = this.clock.now();
    for (const job of [...this.waiting, ...this.active]) {
      if (job.deadline !== undefined && job.deadline <= now) this.fail(job, deadlineExceeded());
    }
    if (this.active.some((job) => job.settled)) {
      this.active = this.active.filter((job) => {
        if (job.settled) this.retire(job);
        return !job.settled;
      });
    }
    if (this.active.length === 0 && this.padding.length > 0) {
      for (const job of this.padding) this.retire(job);
      this.padding = [];
    }
  }

  private retire(job: Job): void {
    for (const slot of job.slots) this.backend.release(slot);
    if (job.encoded !== undefined) this.backend.releaseEncoded?.(job.encoded);
    this.pool.give(job.slots, job.reservation);
    job.slots = [];
    job.rowSlots = [];
    job.encoded = undefined;
  }

  /** Returns how many requests joined. */
  private async admit(): Promise<number> {
    if (!this.options.continuous && this.active.length > 0) return 0;
    const joining: Job[] = [];
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (!this.pool.fits(next.beams, next.reservation)) break;
      this.waiting.shift();
      next.slots = this.pool.take(next.beams, next.reservation);
      joining.push(next);
    }
    if (joining.length === 0) return 0;

    let encoded: EncodedSource[];
    try {
      encoded = await this.backend.encode(joining.map((job) => job.source));
      if (!Array.isArray(encoded) || encoded.length !== joining.length) {
        if (Array.isArray(encoded)) for (const handle of encoded) this.backend.releaseEncoded?.(handle);
        throw new Error(`encode returned ${Array.isArray(encoded) ? encoded.length : String(encoded)} handles for ${joining.length} sources`);
      }
    } catch (cause) {
      const error = batchFailed(`The encoder pass of ${joining.length} requests failed`, cause);
      for (const job of joining) {
        this.fail(job, error);
        this.retire(job);
      }
      return 0;
    }
    const now = this.clock.now();
    joining.forEach((job, i) => {
      job.encoded = encoded[i];
      job.admittedAt = now;
      const { beams, lengthPenalty, earlyStopping, limit } = job;
      job.search = createSearch({ eosTokenId: this.options.eosTokenId, maxNewTokens: limit, beams, lengthPenalty, earlyStopping });
      job.rowSlots = [job.slots[0]!];
      // Cancelled while encoding: it never joins.
      if (job.settled) this.retire(job);
      else this.active.push(job);
    });
    return joining.length;
  }

  private async step(admitted: number, startedAt: number): Promise<void> {
    const running = [...this.active];
    const rows: StepRow[] = [];
    for (const job of running) {
      job.search!.hypotheses.forEach((tokens, i) => {
        rows.push({
          slot: job.rowSlots[i]!,
          token: tokens.length > 0 ? tokens[tokens.length - 1]! : this.options.decoderStartTokenId,
          position: tokens.length,
          encoded: job.encoded,
        });
      });
    }
    const liveRows = rows.length;
    // Padding rows go last, so the live rows' logits keep their offsets. Each feeds eos at the position its
    // cache has reached (every row of a job has run job.steps steps).
    const padding = [...this.padding];
    for (const job of padding) {
      for (const slot of job.rowSlots) rows.push({ slot, token: this.options.eosTokenId, position: job.steps, encoded: job.encoded });
    }
    const paddingRows = rows.length - liveRows;
    const stepStart = this.clock.now();
    let backendMs = 0;
    let finished = 0;
    try {
      const logits = await this.backend.step(rows).finally(() => {
        backendMs = this.clock.now() - stepStart;
      });
      const { vocabSize } = this.backend;
      if (!(logits instanceof Float32Array) || logits.length !== rows.length * vocabSize) {
        throw new Error(`step returned ${logits instanceof Float32Array ? logits.length : String(logits)} logits for ${rows.length} rows x ${vocabSize}`);
      }
      let row = 0;
      for (const job of running) {
        const hypotheses = job.search!.hypotheses;
        const first = row;
        row += hypotheses.length;
        // Cancelled during the step: its rows are dropped and its slots leave at the sweep.
        if (job.settled) continue;
        const scores = hypotheses.map((generated, i) => {
          const rowScores = logits.subarray((first + i) * vocabSize, (first + i + 1) * vocabSize);
          if (job.search!.wantsLogProbs) logSoftmaxInPlace(rowScores);
          applyProcessors(job.processors, rowScores, { generated });
          return rowScores;
        });
        const parents = job.search!.advance(scores);
        job.steps++;
        if (job.search!.done) {
          this.complete(job);
          finished++;
          if (!this.options.continuous) {
            // Answered, but its rows (slots as they were in this step) stay in the batch until it drains.
            this.active.splice(this.active.indexOf(job), 1);
            this.padding.push(job);
          }
          continue;
        }
        const plan = planBeamSlots(job.slots, job.rowSlots, parents);
        for (const slot of plan.released) this.backend.release(slot);
        for (const [from, to] of plan.forks) this.backend.fork(from, to);
        job.rowSlots = plan.slots;
      }
      for (const job of padding) job.steps++;
    } catch (cause) {
      // The caches of every row are in doubt now: the whole batch fails, as the encoder scheduler does.
      const error = batchFailed(`A decoding step of ${rows.length} rows failed`, cause);
      for (const job of running) this.fail(job, error);
    }
    const endedAt = this.clock.now();
    this.sweep();
    this.recentFinished = RATE_DECAY * this.recentFinished + finished;
    this.recentMs = RATE_DECAY * this.recentMs + (endedAt - startedAt);
    try {
      this.options.onStep?.({ rows: rows.length, paddingRows, requests: running.length, admitted, backendMs, ms: endedAt - startedAt });
    } catch {
      // Metrics must never stop the loop.
    }
  }

  private complete(job: Job): void {
    const { tokens, score } = job.search!.result();
    const { eosTokenId, forceEosAtMaxLength } = this.options;
    const endsWithEos = tokens[tokens.length - 1] === eosTokenId;
    const eosWasForced = forceEosAtMaxLength && tokens.length >= job.limit;
    const finishReason: FinishReason = endsWithEos && !eosWasForced ? 'eos' : 'length';
    const ids = Int32Array.from(endsWithEos ? tokens.slice(0, -1) : tokens);
    job.settled = true;
    this.unwatch(job);
    job.resolve(score === undefined ? { ids, finishReason } : { ids, finishReason, score });
    const now = this.clock.now();
    try {
      this.options.onSequence?.({
        tokens: tokens.length,
        finishReason,
        beams: job.beams,
        steps: job.steps,
        queueMs: job.admittedAt - job.enqueuedAt,
        totalMs: now - job.enqueuedAt,
      });
    } catch {
      // Metrics must never stop the loop.
    }
  }

  /** Time for the recent completion rate to work through the queue, clamped. */
  private overloaded(): EngineError {
    let retryAfterMs = RETRY_AFTER_MS.unknown;
    if (this.recentFinished > 0) {
      const ms = (this.waiting.length * this.recentMs) / this.recentFinished;
      retryAfterMs = Math.round(Math.min(RETRY_AFTER_MS.max, Math.max(RETRY_AFTER_MS.min, ms)));
    }
    return new EngineError('OVERLOADED', `The generation queue is full (${this.waiting.length} requests waiting); retry in ${retryAfterMs} ms`, { retryAfterMs });
  }

  private checkIdle(): void {
    if (this.onIdle && !this.looping && this.waiting.length === 0 && this.active.length === 0) {
      this.onIdle();
      this.onIdle = undefined;
    }
  }
}

function cancelled(signal: AbortSignal): EngineError {
  return new EngineError('CANCELLED', 'The request was cancelled', { cause: signal.reason });
}

function deadlineExceeded(): EngineError {
  return new EngineError('DEADLINE_EXCEEDED', 'The deadline passed before the translation was complete');
}

function batchFailed(what: string, cause: unknown): EngineError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new EngineError('BATCH_FAILED', `${what}: ${reason}`, { cause });
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Seq2SeqGenerator: ${name} must be a positive integer, got ${value}`);
  return value;
}
