// OpenTelemetry traces over a real server and PostgreSQL: an OTLP/HTTP receiver in this test takes what the
// server exports, and the span tree of one multi-task request is checked from the HTTP span down to each head.
// Without an endpoint the server does no tracing and never loads the SDK.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** A span as the receiver decoded it from OTLP/JSON. */
interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
  service: unknown;
}

const SPAN_KIND_SERVER = 2;
const STATUS_ERROR = 2;

/** OTLP's AnyValue as a plain value (ints come as strings or numbers in OTLP/JSON). */
function valueOf(value: Record<string, any>): unknown {
  if ('stringValue' in value) return value.stringValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('boolValue' in value) return value.boolValue;
  if ('arrayValue' in value) return (value.arrayValue.values ?? []).map(valueOf);
  throw new Error(`unexpected OTLP value ${JSON.stringify(value)}`);
}

const attributesOf = (list: Array<{ key: string; value: Record<string, any> }> = []) => Object.fromEntries(list.map(({ key, value }) => [key, valueOf(value)]));

/** An OTLP/HTTP traces receiver on loopback (JSON bodies: what the installed exporter sends). */
async function startReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; contentTypes: string[]; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      contentTypes.push(String(req.headers['content-type']));
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = attributesOf(resourceSpans.resource?.attributes)['service.name'];
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              start: BigInt(span.startTimeUnixNano),
              end: BigInt(span.endTimeUnixNano),
              attributes: attributesOf(span.attributes),
              status: span.status ?? {},
              service,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const texts = ['Maria Lopez loved the new Pixar film she saw in Madrid.', 'The delivery was late and the box was damaged.', 'Apple opened an office in Berlin.'];
const other = 'A fourth text, asked only for its embedding.';
const multiTask = `query MultiTask($texts: [String!]!, $other: [String!]!) {
  analyze(texts: $texts) { tokenCount sentiment { label } entities { text label } embedding }
  embed(texts: $other)
}`;
const sdkLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('exporter-trace-otlp-http') || path.includes('sdk-trace-base'));

let receiver: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  receiver = await startReceiver();
});
after(() => receiver.close());

describe('traces', { skip: skipWithoutPostgres }, () => {
  let scratch: ScratchDatabase;
  before(async () => {
    scratch = await createScratchDatabase();
  });
  after(() => scratch.drop());

  // First: the SDK must not have been loaded by anything before.
  test('without an endpoint: no tracing, no spans, the SDK never loaded', async () => {
    const server = await startTestServer({ databaseUrl: scratch.url, models: [] }, { OTEL_SERVICE_NAME: 'polyhead-untraced' });
    try {
      assert.equal(server.config.tracing, undefined);
      const answer = await server.gql('{ server { version } }', undefined, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      assert.equal(answer.errors, undefined);
    } finally {
      await server.close();
    }
    assert.equal(receiver.spans.length, 0);
    assert.equal(sdkLoaded(), false, 'no tracer provider or exporter was made');
  });

  test('one multi-task request: HTTP, GraphQL parse/validate/execute, engine calls, queue waits, the batch, each head', async () => {
    // A large per-run overhead puts all three texts in one backbone batch, whatever their lengths.
    const server: TestServer = await startTestServer(
      { databaseUrl: scratch.url },
      { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_SERVICE_NAME: 'polyhead-test', POLYHEAD_BATCH_OVERHEAD_TOKENS: '100000' },
    );
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const unsampledTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
    const openAiTrace = '6bf92f3577b34da6a3ce929d0e0e4738';
    let answer;
    try {
      assert.ok(server.config.tracing);
      answer = await server.gql(multiTask, { texts, other: [other] }, { traceparent: `00-${traceId}-${callerSpan}-01` });
      assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      // The caller decided not to sample this one: parent-based sampling keeps nothing of it.
      const unsampled = await server.gql(multiTask, { texts, other: [other] }, { traceparent: `00-${unsampledTrace}-${callerSpan}-00` });
      assert.equal(unsampled.errors, undefined);
      assert.equal((await fetch(server.url.replace('/graphql', '/healthz'))).status, 200);
      // The OpenAI-compatible route: its engine call is traced under its HTTP span too.
      const v1 = await fetch(server.url.replace('/graphql', '/v1/embeddings'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${openAiTrace}-${callerSpan}-01` },
        body: JSON.stringify({ model: 'default', input: [other] }),
      });
      assert.equal(v1.status, 200, await v1.clone().text());
    } finally {
      await server.close(); // flushes what the batch span processor holds
    }
    assert.equal(sdkLoaded(), true);
    assert.ok(receiver.contentTypes.every((type) => type.startsWith('application/json')), receiver.contentTypes.join());
    assert.equal(receiver.spans.filter((span) => span.traceId === unsampledTrace).length, 0, 'an unsampled trace exports nothing');

    // POST /v1/embeddings: HTTP span (named by its route), the engine call, its queue wait and batch.
    const openAiSpans = receiver.spans.filter((span) => span.traceId === openAiTrace);
    const v1Http = openAiSpans.find((span) => span.parentSpanId === callerSpan)!;
    assert.ok(v1Http, 'a span for POST /v1/embeddings');
    assert.equal(v1Http.name, 'POST /v1/embeddings');
    assert.equal(v1Http.attributes['http.route'], '/v1/embeddings');
    const v1Infer = openAiSpans.find((span) => span.name === 'polyhead.infer' && span.parentSpanId === v1Http.spanId);
    assert.ok(v1Infer, `polyhead.infer under the /v1 span: ${openAiSpans.map((span) => span.name).join(', ')}`);
    for (const name of ['polyhead.queue_wait', 'polyhead.backbone.batch']) {
      assert.equal(openAiSpans.filter((span) => span.name === name && span.parentSpanId === v1Infer.spanId).length, 1, `${name} under the /v1 engine call`);
    }

    // A route express answers is named by its route.
    const health = receiver.spans.find((span) => span.name === 'GET /healthz')!;
    assert.ok(health, 'a span for GET /healthz');
    assert.equal(health.parentSpanId, '', 'a new trace: the request named no parent');
    assert.equal(health.attributes['http.route'], '/healthz');
    assert.equal(health.attributes['http.response.status_code'], 200);

    const spans = receiver.spans.filter((span) => span.traceId === traceId);
    assert.ok(spans.every((span) => span.service === 'polyhead-test'));
    const childrenOf = (parent: ReceivedSpan, name?: string) => spans.filter((span) => span.parentSpanId === parent.spanId && (!name || span.name === name));
    const only = (parent: ReceivedSpan, name: string) => {
      const found = childrenOf(parent, name);
      assert.equal(found.length, 1, `one ${name} under ${parent.name}, got ${found.length}`);
      return found[0]!;
    };
    const within = (child: ReceivedSpan, parent: ReceivedSpan) =>
      assert.ok(child.start >= parent.start && child.end <= parent.end, `${child.name} [${child.start}, ${child.end}] within ${parent.name} [${parent.start}, ${parent.end}]`);

    // The HTTP server span continues the caller's trace.
    const http = spans.find((span) => span.parentSpanId === callerSpan)!;
    assert.ok(http, 'a span whose parent is the caller span');
    assert.equal(http.name, 'POST /graphql');
    assert.equal(http.kind, SPAN_KIND_SERVER);
    assert.equal(http.attributes['http.request.method'], 'POST');
    assert.equal(http.attributes['http.route'], '/graphql');
    assert.equal(http.attributes['url.path'], '/graphql');
    assert.equal(http.attributes['http.response.status_code'], 200);

    for (const name of ['graphql.parse', 'graphql.validate']) within(only(http, name), http);
    const execute = only(http, 'graphql.execute');
    within(execute, http);
    assert.equal(execute.attributes['graphql.operation.type'], 'query');
    assert.equal(execute.attributes['graphql.operation.name'], 'MultiTask');

    // Two engine calls: analyze's texts with its two heads, embed's one text with none.
    const infers = childrenOf(execute, 'polyhead.infer');
    assert.equal(infers.length, 2);
    const analyze = infers.find((span) => (span.attributes['polyhead.heads'] as string[]).length === 2)!;
    const embed = infers.find((span) => (span.attributes['polyhead.heads'] as string[]).length === 0)!;
    assert.deepEqual(analyze.attributes['polyhead.heads'], ['entities', 'sentiment']);
    assert.equal(analyze.attributes['polyhead.model'], 'default');
    assert.equal(analyze.attributes['polyhead.texts'], 3);
    assert.equal(embed.attributes['polyhead.texts'], 1);
    for (const infer of infers) {
      within(infer, execute);
      within(only(infer, 'polyhead.tokenize'), infer);
    }

    // One queue wait per text, each ending when its batch started; the four texts of both calls in one batch.
    const waits = childrenOf(analyze, 'polyhead.queue_wait');
    assert.equal(waits.length, 3);
    assert.deepEqual(waits.map((span) => span.attributes['polyhead.text.index']).sort(), [0, 1, 2]);
    const otherWait = only(embed, 'polyhead.queue_wait');
    const batch = only(analyze, 'polyhead.backbone.batch');
    within(batch, analyze);
    for (const wait of [...waits, otherWait]) {
      assert.equal(wait.attributes['polyhead.batch.id'], batch.attributes['polyhead.batch.id']);
      assert.equal(wait.end, batch.start, 'the wait ends as the batch starts');
      assert.ok(wait.start <= wait.end);
    }
    const tokens = [...waits, otherWait].map((span) => span.attributes['polyhead.text.tokens'] as number);
    assert.deepEqual(
      waits.sort((a, b) => (a.attributes['polyhead.text.index'] as number) - (b.attributes['polyhead.text.index'] as number)).map((span) => span.attributes['polyhead.text.tokens']),
      answer.data.analyze.map((a: { tokenCount: number }) => a.tokenCount),
    );
    assert.equal(batch.attributes['polyhead.batch.size'], 4);
    assert.equal(batch.attributes['polyhead.batch.request_texts'], 3);
    assert.equal(batch.attributes['polyhead.batch.max_tokens'], Math.max(...tokens));
    assert.equal(batch.attributes['polyhead.batch.padded_tokens'], 4 * Math.max(...tokens));
    assert.equal(batch.attributes['polyhead.batch.tokens'], tokens.reduce((a, b) => a + b));

    // One span per head that ran for this request, each inside the batch.
    const heads = childrenOf(batch, 'polyhead.head');
    assert.deepEqual(heads.map((span) => span.attributes['polyhead.head.name']).sort(), ['entities', 'sentiment']);
    for (const head of heads) {
      assert.equal(head.attributes['polyhead.head.rows'], 3, 'the rows of the texts that asked for it');
      assert.ok((head.attributes['polyhead.head.model_ms'] as number) > 0);
      assert.ok(head.start >= batch.start - 1_000_000n && head.end <= batch.end, `${head.attributes['polyhead.head.name']} within the batch (1 ms for the worker's clock)`);
    }

    // embed's text was queued in the same tick: it rode in the same batch, where no head ran for it.
    const embedBatch = only(embed, 'polyhead.backbone.batch');
    assert.equal(embedBatch.attributes['polyhead.batch.id'], batch.attributes['polyhead.batch.id']);
    assert.equal(embedBatch.attributes['polyhead.batch.request_texts'], 1);
    assert.equal(childrenOf(embedBatch).length, 0);
    assert.ok(spans.every((span) => span.status.code !== STATUS_ERROR), 'no span failed');
  });
});
