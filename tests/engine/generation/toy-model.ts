// Test doubles for the generation core: a deterministic toy translation model, a backend serving it that
// checks the cache protocol and records every call, reference decoders that use no part of the core's loop,
// and a clock advanced by hand.
import type { EncodedSource, Seq2SeqBackend, StepRow } from '../../../src/engine/generation/backend.js';
import type { Clock } from '../../../src/engine/scheduler.js';

export const EOS = 0;

/** FNV-1a-style mixing of one integer into a 32-bit hash. */
function mix(hash: number, value: number): number {
  let h = hash;
  for (let shift = 0; shift < 32; shift += 8) {
    h ^= (value >>> shift) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) from a hash (a final avalanche so that neighbouring inputs differ). */
function unit(hash: number): number {
  let h = hash;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/**
 * The toy "language model": next-token logits as a hash of (source, fed tokens, candidate), so that every
 * history gives its own distribution. eos grows likelier with length, at a rate set by the source, so
 * sequences end after a few to a dozen tokens. `fed` is what the decoder has been fed: start token first.
 */
export function toyLogits(source: Int32Array, fed: readonly number[], vocabSize: number): Float32Array {
  let h = 0x811c9dc5;
  for (const id of source) h = mix(h, id);
  const eosRate = 0.3 + (h % 7) * 0.15;
  h = mix(h, 0x7fffffff);
  for (const id of fed) h = mix(h, id);
  const logits = new Float32Array(vocabSize);
  for (let v = 0; v < vocabSize; v++) logits[v] = unit(mix(h, v)) * 6;
  logits[EOS] = logits[EOS]! + (fed.length - 4) * eosRate;
  return logits;
}

interface Handle {
  id: number;
  source: Int32Array;
}

export interface RecordedRow {
  /** source[0], which the tests use as each request's tag. */
  tag: number;
  slot: number;
  position: number;
}

export interface ToyBackendOptions {
  vocabSize?: number;
  maxPositions?: number;
  /** Slots the backend has; a step on any other slot is a protocol violation. */
  slots?: number;
  /** Advanced by `stepMs` during each step. */
  clock?: FakeClock;
  stepMs?: number;
  /** Runs inside step `index` (0-based), before it answers: submit, abort, advance time... */
  duringStep?: (index: number) => void;
  /** Step `index` throws. */
  failStep?: (index: number) => boolean;
}

/**
 * Serves the toy model through the backend interface with real per-slot caches: a row's logits are computed
 * from what its slot's cache actually holds, so a wrong fork or a reused slot gives wrong tokens. Protocol
 * violations (a position that is not the cache length, a released source, a slot out of range, a slot
 * twice in one step) throw, which the generator turns into a failed batch.
 */
export class ToyBackend implements Seq2SeqBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly encodeCalls: number[][] = [];
  readonly steps: RecordedRow[][] = [];
  readonly forks: Array<[number, number]> = [];
  /** The most slots holding a cache at once, and the most tokens held (caches plus live encoded sources). */
  maxBusySlots = 0;
  maxHeldTokens = 0;
  /** Slots that held a cache at the start of a step without being in it: memory nobody uses any more. */
  readonly staleSlots: Array<{ step: number; slots: number[] }> = [];
  private readonly caches = new Map<number, number[]>();
  private readonly liveSources = new Set<Handle>();
  private nextHandle = 0;
  private held: Array<() => void> | undefined;

  constructor(private readonly options: ToyBackendOptions = {}) {
    this.vocabSize = options.vocabSize ?? 32;
    this.maxPositions = options.maxPositions ?? 64;
  }

  async encode(sources: Int32Array[]): Promise<EncodedSource[]> {
    this.encodeCalls.push(sources.map((s) => s[0]!));
    const handles = sources.map((source) => ({ id: ++this.nextHandle, source: source.slice() }));
    for (const handle of handles) this.liveSources.add(handle);
    this.measure();
    await tick();
    return handles;
  }

  async step(rows: StepRow[]): Promise<Float32Array> {
    const index = this.steps.length;
    this.steps.push(rows.map((row) => ({ tag: (row.encoded as Handle).source[0]!, slot: row.slot, position: row.position })));
    const stepped = new Set(rows.map((row) => row.slot));
    const stale = [...this.caches.keys()].filter((slot) => !stepped.has(slot));
    if (stale.length > 0) this.staleSlots.push({ step: index, slots: stale });
    this.options.duringStep?.(index);
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    if (this.options.failStep?.(index)) throw new Error(`toy step ${index} failed`);
    const seen = new Set<number>();
    const logits = new Float32Array(rows.length * this.vocabSize);
    rows.forEach((row, r) => {
      const handle = row.encoded as Handle;
      if (!this.liveSources.has(handle)) throw new Error(`step ${index}: row ${r} uses a released source`);
      if (seen.has(row.slot)) throw new Error(`step ${index}: slot ${row.slot} twice`);
      seen.add(row.slot);
      if (this.options.slots !== undefined && (row.slot < 0 || row.slot >= this.options.slots)) throw new Error(`step ${index}: slot ${row.slot} out of range`);
      if (row.position >= this.maxPositions) throw new Error(`step ${index}: position ${row.position} past maxPositions`);
      const cache = this.caches.get(row.slot) ?? [];
      if (cache.length !== row.position) throw new Error(`step ${index}: slot ${row.slot} holds ${cache.length} tokens, row feeds position ${row.position}`);
      cache.push(row.token);
      this.caches.set(row.slot, cache);
      logits.set(toyLogits(handle.source, cache, this.vocabSize), r * this.vocabSize);
    });
    this.measure();
    if (this.options.clock) this.options.clock.advance(this.options.stepMs ?? 1);
    await tick();
    return logits;
  }

  release(slot: number): void {
    this.caches.delete(slot);
  }

  fork(from: number, to: number): void {
    const cache = this.caches.get(from);
    if (!cache || cache.length === 0) throw new Error(`fork from empty slot ${from}`);
    this.forks.push([from, to]);
    this.caches.set(to, [...cache]);
    this.measure();
  }

  releaseEncoded(encoded: EncodedSource): void {
    this.liveSources.delete(encoded as Handle);
  }

  /** Slots holding a cache now, and encoded sources not yet released. */
  get busySlots(): number[] {
    return [...this.caches.keys()].sort((a, b) => a - b);
  }
  get liveSourceCount(): number {
    return this.liveSources.size;
  }

  /** Steps wait until resume(). */
  hold(): void {
    this.held ??= [];
  }
  resume(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const go of waiting) go();
  }

  /** The steps whose rows include request `tag`. */
  stepsOf(tag: number): number[] {
    return this.steps.flatMap((rows, i) => (rows.some((row) => row.tag === tag) ? [i] : []));
  }

  private measure(): void {
    let tokens = 0;
    for (const cache of this.caches.values()) tokens += cache.length;
    for (const handle of this.liveSources) tokens += handle.source.length;
    this.maxHeldTokens = Math.max(this.maxHeldTokens, tokens);
    this.maxBusySlots = Math.max(this.maxBusySlots, this.caches.size);
  }
}

/** A real macrotask turn: lets the generator's loop and any timers of the event loop run. */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FakeClock implements Clock {
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
  /** Moves time forward, firing due timers in order, synchronously. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const timer of this.timers) if (timer[1].at <= target && (!next || timer[1].at < next[1].at)) next = timer;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = target;
  }
}

export interface ReferenceOptions {
  vocabSize: number;
  startTokenId: number;
  maxNewTokens: number;
  badWordsIds?: readonly number[];
  forceEos?: boolean;
}

/**
 * The rules written out again, on their own: bad words get -Infinity, and the last place allowed by the
 * limit takes eos only (score 0, i.e. log 1).
 */
export function referenceRules(scores: Float32Array, generatedSoFar: number, options: ReferenceOptions): void {
  for (const id of options.badWordsIds ?? []) scores[id] = -Infinity;
  if ((options.forceEos ?? true) && generatedSoFar === options.maxNewTokens - 1) {
    scores.fill(-Infinity);
    scores[EOS] = 0;
  }
}

/** Greedy decoding of one source, straight over the toy model: returns the tokens, eos included if emitted. */
export function referenceGreedy(source: Int32Array, options: ReferenceOptions): number[] {
  const generated: number[] = [];
  while (generated.length < options.maxNewTokens) {
    const scores = toyLogits(source, [options.startTokenId, ...generated], options.vocabSize);
    referenceRules(scores, generated.length, options);
    let best = 0;
    for (let v = 1; v < scores.length; v++) if (scores[v]! > scores[best]!) best = v;
    generated.push(best);
    if (best === EOS) break;
  }
  return generated;
}

/** A source whose first id is its tag (how recorded rows name their request), then a few ids from the tag. */
export function sourceFor(tag: number, length = 3 + (tag % 4)): Int32Array {
  return Int32Array.from({ length }, (_, i) => (i === 0 ? tag : (tag * 7919 + i * 104_729) % 1000));
}
