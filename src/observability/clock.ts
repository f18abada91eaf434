// Span times from one clock. The SDK turns a performance.now() time into wall time with an offset each span
// measures for itself from Date.now(), which has whole milliseconds: two spans given the same instant could
// differ by up to 1 ms, and a child could start before its parent. Every Polyhead span takes its times from
// here instead: the process's time origin plus performance.now().
import type { HrTime } from '@opentelemetry/api';

// The origin split into whole seconds and the rest, so that the sum below stays small and keeps nanoseconds.
const originSeconds = Math.floor(performance.timeOrigin / 1000);
const originRestMs = performance.timeOrigin - originSeconds * 1000;

/** A performance.now() time (ms) as OpenTelemetry's [seconds, nanoseconds] since the epoch. */
export function spanTime(performanceMs: number): HrTime {
  const ms = originRestMs + performanceMs;
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos === 1e9 ? [originSeconds + seconds + 1, 0] : [originSeconds + seconds, nanos];
}

/** Now, as a span time. */
export const spanNow = (): HrTime => spanTime(performance.now());
