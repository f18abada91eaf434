/*
 * The spans of one traced request below its HTTP span: GraphQL's steps (tracing.plugin.ts starts them here)
 * and the engine's work, which the engine reports after each infer call (InferTrace) and which becomes spans
 * here, after the fact, with the times it measured. Nothing of this runs while a text waits or a batch runs,
 * and the engine knows no tracer.
 *
 * A backbone batch serves texts of many requests, and a span has one parent. So every request gets its own
 * `polyhead.backbone.batch` span for each batch its texts rode in: same start and end, and attributes that
 * describe the whole batch (size, padded tokens, its id, shared by every request it served), so that one
 * trace shows everything its request waited for. Head spans sit under it, for the heads this request asked.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { InferReport, InferTrace } from '../engine/engine.js';
import type { BatchRecord } from '../engine/serving-model.js';
import { spanNow, spanTime } from './clock.js';

export class RequestTrace implements InferTrace {
  /** Where the engine's spans go: graphql.execute once it has started, else the HTTP span. */
  private engineParent: Span;

  constructor(
    private readonly tracer: Tracer,
    /** The request's HTTP server span. */
    readonly span: Span,
  ) {
    this.engineParent = span;
  }

  /** A child of the HTTP span, starting now. */
  startChild(name: string, attributes?: Attributes): Span {
    return this.tracer.startSpan(name, { startTime: spanNow(), attributes }, trace.setSpan(ROOT_CONTEXT, this.span));
  }

  /** The engine's spans go under `span` from now on. */
  nestEngineWorkUnder(span: Span): void {
    this.engineParent = span;
  }

  onInfer(report: InferReport): void {
    const { tracer } = this;
    const infer = tracer.startSpan(
      'polyhead.infer',
      {
        startTime: spanTime(report.startedAt),
        attributes: { 'polyhead.model': report.model, 'polyhead.heads': [...report.heads], 'polyhead.texts': report.texts, 'polyhead.texts.distinct': report.outcomes.length },
      },
      trace.setSpan(ROOT_CONTEXT, this.engineParent),
    );
    const inside = trace.setSpan(ROOT_CONTEXT, infer);
    tracer.startSpan('polyhead.tokenize', { startTime: spanTime(report.startedAt), attributes: { 'polyhead.texts': report.outcomes.length } }, inside).end(spanTime(report.queuedAt));

    const textsPerBatch = new Map<BatchRecord, number>();
    let failed = 0;
    report.outcomes.forEach((outcome, i) => {
      const wait = tracer.startSpan('polyhead.queue_wait', { startTime: spanTime(report.queuedAt), attributes: { 'polyhead.text.index': i, 'polyhead.text.tokens': report.tokens[i] } }, inside);
      if (outcome instanceof Error) {
        failed++;
        wait.setAttribute('error.type', errorType(outcome));
        wait.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
        wait.end(spanTime(report.settledAt[i]!));
        return;
      }
      const { batch } = outcome;
      textsPerBatch.set(batch, (textsPerBatch.get(batch) ?? 0) + 1);
      wait.setAttribute('polyhead.batch.id', batch.id);
      // A text that joined a batch already running for the same text (another request's) waited for nothing.
      if (batch.startedAt < report.queuedAt) wait.setAttribute('polyhead.text.joined_running_batch', true);
      wait.end(spanTime(Math.max(report.queuedAt, batch.startedAt)));
    });
    for (const [batch, texts] of textsPerBatch) this.batchSpans(batch, texts, report.heads, inside);

    if (failed > 0) {
      infer.setAttribute('polyhead.texts.failed', failed);
      infer.setStatus({ code: SpanStatusCode.ERROR, message: `${failed} of ${report.outcomes.length} texts failed` });
    }
    infer.end(spanTime(report.endedAt));
  }

  /** The batch as this request saw it, and a span for each head it asked for that ran there. */
  private batchSpans(batch: BatchRecord, texts: number, heads: readonly string[], parent: Context): void {
    const span = this.tracer.startSpan(
      'polyhead.backbone.batch',
      {
        startTime: spanTime(batch.startedAt),
        attributes: {
          'polyhead.batch.id': batch.id,
          'polyhead.batch.size': batch.size,
          'polyhead.batch.padded_tokens': batch.paddedTokens,
          'polyhead.batch.tokens': batch.realTokens,
          'polyhead.batch.max_tokens': batch.maxTokens,
          'polyhead.batch.request_texts': texts,
        },
      },
      parent,
    );
    const inside = trace.setSpan(ROOT_CONTEXT, span);
    // The head models ran one after another right after the backbone, in its worker thread, whose clock is
    // not this thread's: each start is placed back from the moment they all came back, by the durations
    // measured there. Each head's span then runs on to the end of its decoding on this thread.
    const modelStarts: number[] = [];
    let next = batch.backboneEndedAt;
    for (let h = batch.heads.length - 1; h >= 0; h--) modelStarts[h] = next -= batch.heads[h]!.modelMs;
    batch.heads.forEach((head, h) => {
      if (!heads.includes(head.head)) return; // it ran for another request in the batch
      this.tracer
        .startSpan(
          'polyhead.head',
          {
            startTime: spanTime(head.modelMs > 0 ? modelStarts[h]! : head.decodeStartedAt),
            attributes: { 'polyhead.head.name': head.head, 'polyhead.head.rows': head.rows, 'polyhead.head.model_ms': head.modelMs, 'polyhead.head.decode_ms': head.decodeMs },
          },
          inside,
        )
        .end(spanTime(head.decodeStartedAt + head.decodeMs));
    });
    span.end(spanTime(batch.endedAt));
  }
}

/** An engine error's code (DEADLINE_EXCEEDED, OVERLOADED, ...), else the error's class. */
function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}
