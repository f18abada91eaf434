/*
 * An async iterator that producers push into: the shape a GraphQL subscription source takes. Written here
 * rather than taken from a library because of two properties the subscriptions need and neither an async
 * generator nor node's events.on() has:
 * - return() ends the stream at once, even while a next() is waiting (an async generator's return() waits
 *   for its next yield, which for a quiet source may never come, and a closed connection would hang on it);
 * - the buffer is bounded: a consumer that stops reading (a client that stopped reading its socket) ends
 *   with an error instead of buffering forever (events.on() and a bare Repeater grow without bound).
 */
import { PolyheadError } from '../errors.js';

type Waiter<T> = { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void };

export class PushStream<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = [];
  private readonly waiting: Array<Waiter<T>> = [];
  private state: 'open' | 'ending' | 'done' = 'open';
  private failure: { error: unknown } | undefined;
  private readonly cleanups: Array<() => void> = [];

  /** @param maxBuffered values held for a consumer that is behind (default 256); one more ends it with OVERLOADED. */
  constructor(private readonly maxBuffered = 256) {}

  /** Runs once when the stream ends, whoever ends it (the producer, the consumer, an overflow). */
  onClose(cleanup: () => void): this {
    if (this.state === 'open') this.cleanups.push(cleanup);
    else cleanup();
    return this;
  }

  get closed(): boolean {
    return this.state !== 'open';
  }

  push(value: T): void {
    if (this.state !== 'open') return;
    const waiter = this.waiting.shift();
    if (waiter) return waiter.resolve({ value, done: false });
    if (this.buffered.length >= this.maxBuffered) {
      return this.fail(new PolyheadError('OVERLOADED', `the subscriber fell behind by more than ${this.maxBuffered} events; subscribe again`));
    }
    this.buffered.push(value);
  }

  /** Ends the stream after what is already buffered. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ending';
    this.release();
    this.settleWaiters();
  }

  /** Ends the stream with an error, delivered after what is already buffered. */
  fail(error: unknown): void {
    if (this.state !== 'open') return;
    this.failure = { error };
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffered.length) return Promise.resolve({ value: this.buffered.shift()!, done: false });
    if (this.state === 'open') return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    return this.finish();
  }

  return(): Promise<IteratorResult<T>> {
    this.buffered.length = 0;
    this.failure = undefined;
    this.end();
    this.state = 'done';
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The end of the stream: its error once, then done. */
  private finish(): Promise<IteratorResult<T>> {
    this.state = 'done';
    const failure = this.failure;
    this.failure = undefined;
    return failure ? Promise.reject(failure.error) : Promise.resolve({ value: undefined, done: true });
  }

  private settleWaiters(): void {
    for (const waiter of this.waiting.splice(0)) this.finish().then(waiter.resolve, waiter.reject);
  }

  private release(): void {
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        cleanup();
      } catch {
        // a producer's cleanup must not keep the stream from ending
      }
    }
  }
}
