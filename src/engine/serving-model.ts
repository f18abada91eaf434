// One loaded model version: its backbone, its heads and the queue that batches every request for it.
import type { Backbone } from './backbone.js';
import { EngineError } from './errors.js';
import type { HeadOutput, HeadRow, LoadedHead } from './heads/head.js';
import { Scheduler, type BatchShape, type BatchStats, type SchedulerOptions } from './scheduler.js';
import type { TextEncoding } from './tokenizer.js';

export interface TextResult {
  tokenCount: number;
  truncated: boolean;
  /** The backbone's pooled sentence embedding; absent for a model without one (a task model's graph). */
  embedding?: Float32Array;
  /** Outputs of the heads that ran for this text (at least those asked for). */
  heads: ReadonlyMap<string, HeadOutput>;
  /** The backbone batch that computed it (shared by every text of that batch). */
  batch: BatchRecord;
}

/**
 * One backbone batch as it ran, for tracing: one object per batch, shared by its texts' results. Times are
 * on performance.now()'s clock, ms.
 */
export interface BatchRecord {
  /** This model's batches, counted from 1 in the order they started. */
  id: number;
  size: number;
  /** The longest sequence: every row is padded to it. */
  maxTokens: number;
  /** size x maxTokens: what the backbone computed. */
  paddedTokens: number;
  /** The rows' own tokens. */
  realTokens: number;
  startedAt: number;
  /** When the backbone, and the head models chained after it in its worker thread, came back. */
  backboneEndedAt: number;
  endedAt: number;
  /** Each head that ran, in the order its model ran after the backbone. */
  heads: readonly HeadTiming[];
}

/** What one text needs: a backbone pass and these heads. */
interface TextJob {
  text: string;
  encoding: TextEncoding;
  heads: ReadonlySet<string>;
}

export interface HeadTiming {
  head: string;
  rows: number;
  /** modelMs + decodeMs. */
  ms: number;
  /** Its ONNX model's run in the backbone's worker thread (0 for a head without a model). */
  modelMs: number;
  /** Decoding its output on this thread, which started at decodeStartedAt (performance.now(), ms). */
  decodeMs: number;
  decodeStartedAt: number;
}

export interface ServingModelObserver {
  onBatch?(model: string, stats: BatchStats): void;
  /** After the heads of one batch ran (batches may overlap, so this is reported apart from onBatch). */
  onHeads?(model: string, heads: HeadTiming[]): void;
}

export class ServingModel {
  readonly scheduler: Scheduler<TextJob, TextResult>;
  private batchesStarted = 0;

  constructor(
    readonly name: string,
    readonly version: string,
    readonly backbone: Backbone,
    readonly heads: ReadonlyMap<string, LoadedHead>,
    schedulerOptions: Partial<SchedulerOptions<TextJob>>,
    private readonly observer: ServingModelObserver = {},
  ) {
    this.scheduler = new Scheduler<TextJob, TextResult>(
      { run: (batch, shape) => this.runBatch(batch, shape) },
      {
        ...schedulerOptions,
        merge: (a, b) => ({ ...a, heads: new Set([...a.heads, ...b.heads]) }),
        covers: (running, wanted) => [...wanted.heads].every((head) => running.heads.has(head)),
        onBatch: (stats) => observer.onBatch?.(this.name, stats),
      },
    );
  }

  /** Queues one text; resolves when its batch has run. */
  submit(text: string, encoding: TextEncoding, heads: ReadonlySet<string>, options: { signal?: AbortSignal; deadline?: number }): Promise<TextResult> {
    return this.submitAll([{ text, encoding }], heads, options)[0]!;
  }

  /** Queues several texts of one request (same heads, deadline and signal); one promise per text, in order. */
  submitAll(texts: ReadonlyArray<{ text: string; encoding: TextEncoding }>, heads: ReadonlySet<string>, options: { signal?: AbortSignal; deadline?: number }): Promise<TextResult>[] {
    return this.scheduler.submitAll(
      texts.map(({ text, encoding }) => ({ key: text, tokens: Math.max(1, encoding.ids.length), payload: { text, encoding, heads } })),
      options,
    );
  }

  /**
   * The backbone runs once for the whole batch; each head runs once, on just the rows that asked for it,
   * in the backbone's worker thread right after it (token states never leave that thread). A failing head
   * fails only its rows.
   */
  private async runBatch(batch: TextJob[], shape: BatchShape): Promise<Array<TextResult | Error>> {
    const startedAt = performance.now();
    const id = ++this.batchesStarted;
    const wanted = [...new Set(batch.flatMap((job) => [...job.heads]))].map((name) => this.heads.get(name)!);
    const rowsOf = wanted.map((head) => {
      const rows: HeadRow[] = [];
      batch.forEach((job, index) => job.heads.has(head.spec.name) && rows.push({ index, text: job.text, encoding: job.encoding }));
      return rows;
    });
    // Heads with a model run in the backbone's worker thread right after it (Backbone.run).
    const modelled = wanted.flatMap((head, h) => (head.model ? [{ model: head.model, rows: rowsOf[h]!.map((row) => row.index), h }] : []));
    // Token states come back to this thread only for a head that reads them without a model of its own.
    const tokensHere = wanted.some((head) => !head.model && head.spec.reads === 'tokens');
    // Heads inside the backbone's graph (task models) decode graph outputs, fetched only when asked for.
    const graphOutputs = [...new Set(wanted.flatMap((head) => (head.spec.reads === 'graph' ? [head.spec.output!] : [])))];
    const features = await this.backbone.run(
      batch.map((job) => job.encoding),
      tokensHere,
      modelled,
      graphOutputs,
    );
    const backboneEndedAt = performance.now();
    const modelOutput = new Map(modelled.map(({ h }, i) => [h, features.heads[i]!]));
    const outputs = batch.map(() => new Map<string, HeadOutput>());
    const failures: Array<Error | undefined> = batch.map(() => undefined);
    const timings: HeadTiming[] = [];
    wanted.forEach((head, h) => {
      const rows = rowsOf[h]!;
      const decodeStarted = performance.now();
      const output = modelOutput.get(h);
      try {
        if (output instanceof Error) throw output;
        const results = head.decode(output, features, rows);
        rows.forEach((row, i) => outputs[row.index]!.set(head.spec.name, results[i]!));
      } catch (error) {
        const failure = new EngineError('INFERENCE_FAILED', `head ${head.spec.name} failed: ${(error as Error).message}`, { cause: error });
        for (const row of rows) failures[row.index] ??= failure;
      }
      const modelMs = output && !(output instanceof Error) ? (output.ms ?? 0) : 0;
      const decodeMs = performance.now() - decodeStarted;
      timings.push({ head: head.spec.name, rows: rows.length, ms: modelMs + decodeMs, modelMs, decodeMs, decodeStartedAt: decodeStarted });
    });
    this.observer.onHeads?.(this.name, timings);
    let realTokens = 0;
    for (const job of batch) realTokens += Math.max(1, job.encoding.ids.length);
    const record: BatchRecord = { id, size: shape.size, maxTokens: shape.maxTokens, paddedTokens: shape.paddedTokens, realTokens, startedAt, backboneEndedAt, endedAt: performance.now(), heads: timings };
    const { hidden, pooled } = features;
    return batch.map((job, i) =>
      failures[i] ?? {
        tokenCount: job.encoding.tokenCount,
        truncated: job.encoding.truncated,
        // A view, not a copy: a copy per text was a 2 KB allocation each, most never read (GPU batches).
        embedding: pooled?.subarray(i * hidden, (i + 1) * hidden),
        heads: outputs[i]!,
        batch: record,
      },
    );
  }

  /** Stops taking work, lets queued and running batches finish, then frees the sessions. */
  async close(): Promise<void> {
    await this.scheduler.close();
    await Promise.all([this.backbone.release(), ...[...this.heads.values()].map((head) => head.release())]);
  }
}
