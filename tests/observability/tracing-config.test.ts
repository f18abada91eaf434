// The tracing settings read from OpenTelemetry's environment variables, and the caller's trace read from W3C
// Trace Context headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { readTracingConfig } from '../../src/observability/tracing-config.js';
import { parentContextOf, remoteSpanContext } from '../../src/observability/trace-context.js';
import { spanTime } from '../../src/observability/clock.js';

test('tracing is off without an endpoint, or when switched off', () => {
  assert.equal(readTracingConfig({}), undefined);
  assert.equal(readTracingConfig({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), undefined);
  assert.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }), undefined);
  assert.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' }), undefined);
});

test('the endpoint, service name, sampler and headers, with the specification defaults', () => {
  assert.deepEqual(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), {
    url: 'http://collector:4318/v1/traces',
    headers: {},
    serviceName: 'polyhead',
    sampler: 'parentbased_always_on',
    ratio: 1,
  });
  // The traces endpoint is used as it is, and wins over the general one.
  const config = readTracingConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otlp.example.com/custom/path',
    OTEL_EXPORTER_OTLP_HEADERS: 'ignored=1',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'api-key=a%20b%3Dc, x-tenant = blue ',
    OTEL_SERVICE_NAME: 'polyhead-eu',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  })!;
  assert.equal(config.url, 'https://otlp.example.com/custom/path');
  assert.deepEqual(config.headers, { 'api-key': 'a b=c', 'x-tenant': 'blue' });
  assert.equal(config.serviceName, 'polyhead-eu');
  assert.equal(config.sampler, 'parentbased_traceidratio');
  assert.equal(config.ratio, 0.25);
  // The ratio belongs to the ratio samplers only.
  assert.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: '0.1' })!.ratio, 1);
});

test('values it cannot honour are refused, naming the variable', () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
  const refused: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http\(s\) URL/],
    [{ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/json or http\/protobuf.*gRPC/],
    [{ ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL/],
    [{ ...endpoint, OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER must be otlp or none/],
    [{ ...endpoint, OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER must be one of/],
    [{ ...endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/],
    [{ ...endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, /OTEL_TRACES_SAMPLER_ARG/],
    [{ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, /OTEL_EXPORTER_OTLP_HEADERS: "novalue" is not key=value/],
    [{ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'k=%zz' }, /percent-encoded/],
  ];
  for (const [env, message] of refused) assert.throws(() => readTracingConfig(env), message, JSON.stringify(env));
});

test('traceparent: a valid header names the remote parent, anything else starts a new trace', () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  assert.deepEqual(remoteSpanContext(`00-${traceId}-${spanId}-01`, undefined), { traceId, spanId, traceFlags: 1, isRemote: true });
  assert.equal(remoteSpanContext(`00-${traceId}-${spanId}-00`, undefined)!.traceFlags, 0);
  // A later version may carry more fields; flags other than "sampled" are not kept.
  assert.equal(remoteSpanContext(`01-${traceId}-${spanId}-03-more`, undefined)!.traceFlags, 1);
  assert.equal(remoteSpanContext(`00-${traceId}-${spanId}-01`, 'vendor=a,other=b')!.traceState!.get('other'), 'b');
  for (const bad of [undefined, '', 'garbage', `00-${traceId}-${spanId}`, `00-${traceId}-${spanId}-01-extra`, `ff-${traceId}-${spanId}-01`, `00-${'0'.repeat(32)}-${spanId}-01`, `00-${traceId}-${'0'.repeat(16)}-01`, `00-${traceId.toUpperCase()}-${spanId}-01`]) {
    assert.equal(remoteSpanContext(bad, undefined), undefined, String(bad));
  }
  assert.equal(remoteSpanContext([`00-${traceId}-${spanId}-01`, `00-${traceId}-${spanId}-01`], undefined), undefined, 'a repeated traceparent is ambiguous');
  assert.equal(trace.getSpanContext(parentContextOf({ traceparent: `00-${traceId}-${spanId}-01` }))!.spanId, spanId);
  assert.equal(trace.getSpanContext(parentContextOf({})), undefined);
});

test('span times keep sub-millisecond order on one clock', () => {
  const nanos = (time: [number, number]) => BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
  assert.equal(nanos(spanTime(1000.000002)) - nanos(spanTime(1000)), 2n);
  assert.equal(nanos(spanTime(2500)) - nanos(spanTime(1000)), 1_500_000_000n);
  const [seconds, rest] = spanTime(0);
  assert.ok(rest >= 0 && rest < 1e9);
  assert.ok(Math.abs(seconds * 1000 + rest / 1e6 - performance.timeOrigin) < 0.001);
});
