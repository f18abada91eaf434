// The caller's trace from W3C Trace Context headers (traceparent, tracestate), so that a client's trace goes
// on through Polyhead. Written here rather than taken from the SDK: its propagator lives in @opentelemetry/core,
// which Polyhead does not depend on directly, and the API reaches it only through a global propagator that
// one process's several servers (or a host program with its own set-up) would share.
import { ROOT_CONTEXT, TraceFlags, createTraceState, isSpanContextValid, trace, type Context, type SpanContext } from '@opentelemetry/api';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The remote parent the headers name, else undefined (absent or malformed headers start a new trace). */
export function remoteSpanContext(traceparent: string | string[] | undefined, tracestate: string | string[] | undefined): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version ff is forbidden; version 00 has exactly four fields (later versions may add more).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const context: SpanContext = { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) & TraceFlags.SAMPLED, isRemote: true };
  if (!isSpanContextValid(context)) return undefined; // all-zero ids
  const state = Array.isArray(tracestate) ? tracestate.join(',') : tracestate;
  if (state) context.traceState = createTraceState(state);
  return context;
}

/** The context a server span starts in: under the caller's span when the headers name one. */
export function parentContextOf(headers: Readonly<Record<string, string | string[] | undefined>>): Context {
  const remote = remoteSpanContext(headers['traceparent'], headers['tracestate']);
  return remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
}
