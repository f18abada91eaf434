// OpenAI's embeddings API (/v1) over a real server, driven by the official openai npm client: its vectors equal
// GraphQL embed's in float and base64, in input order, with the tokenizer's counts as usage; each refusal has
// OpenAI's error shape and HTTP status (400, 401, 403, 404, 413, 429 with Retry-After); GET /v1/models lists the
// loaded embedding models. One raw fetch pins the exact JSON of an answer and of an error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError } from 'openai';
import { EngineError } from '../../src/engine/errors.js';
import { openAiErrorOf, openAiErrorResponse } from '../../src/server/openai/openai-error.js';
import { cosine, loadSentences } from '../convert/use-lite-fixture.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

let server: TestServer;
let client: OpenAI;
let sentences: string[];
const v1 = (s: TestServer) => `http://127.0.0.1:${s.port}/v1`;
// maxRetries 0: the client would otherwise retry 429s and 5xx on its own, and the tests look at each answer.
const clientOf = (s: TestServer, apiKey = testApiKey) => new OpenAI({ baseURL: v1(s), apiKey, maxRetries: 0 });

before(async () => {
  // A fresh server with no configuration but an API key.
  server = await startTestServer();
  client = clientOf(server);
  sentences = await loadSentences();
});
after(() => server.close());

async function graphqlEmbed(texts: string[]): Promise<number[][]> {
  const answer = await server.gql('query($t: [String!]!) { embed(texts: $t) }', { t: texts });
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  return answer.data.embed;
}

async function graphqlTokenCounts(texts: string[]): Promise<number[]> {
  const answer = await server.gql('query($t: [String!]!) { analyze(texts: $t) { tokenCount } }', { t: texts });
  return answer.data.analyze.map((a: { tokenCount: number }) => a.tokenCount);
}

function assertSameVectors(actual: ArrayLike<number>[], expected: number[][]) {
  assert.equal(actual.length, expected.length);
  actual.forEach((vector, i) => {
    assert.equal(vector.length, expected[i]!.length);
    const c = cosine(vector, expected[i]!);
    assert.ok(c >= 0.99999, `input ${i}: cosine ${c}`);
  });
}

/** The error the client raised, with OpenAI's fields. */
async function refusal(work: Promise<unknown>): Promise<APIError> {
  const error = await work.then(
    () => assert.fail('expected the request to be refused'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof APIError, `not an APIError: ${String(error)}`);
  return error;
}

test('float vectors equal GraphQL embed, in input order, with the tokenizer counts as usage', async () => {
  const texts = [sentences[0]!, sentences[1]!, 'A short one.', sentences[0]!, sentences[7]!];
  const answer = await client.embeddings.create({ model: 'default', input: texts, encoding_format: 'float' });
  assert.equal(answer.object, 'list');
  assert.equal(answer.model, 'default');
  assert.deepEqual(answer.data.map((d) => [d.object, d.index]), texts.map((_, i) => ['embedding', i]));
  assertSameVectors(answer.data.map((d) => d.embedding), await graphqlEmbed(texts));
  assert.deepEqual(answer.data[0]!.embedding, answer.data[3]!.embedding, 'the same text twice, the same vector');
  const tokens = (await graphqlTokenCounts(texts)).reduce((a, b) => a + b, 0);
  assert.ok(tokens > texts.length);
  assert.deepEqual(answer.usage, { prompt_tokens: tokens, total_tokens: tokens });
  const norm = Math.hypot(...answer.data[2]!.embedding);
  assert.ok(Math.abs(norm - 1) < 1e-6, `unit length, got ${norm}`);
});

test('base64 vectors (asked for, and the client default) decode to the same vectors', async () => {
  const texts = [sentences[2]!, sentences[3]!];
  const expected = await graphqlEmbed(texts);
  const raw = await client.embeddings.create({ model: 'default', input: texts, encoding_format: 'base64' });
  const decoded = raw.data.map((d) => {
    assert.equal(typeof d.embedding, 'string');
    const bytes = Buffer.from(d.embedding as unknown as string, 'base64');
    return Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  });
  assertSameVectors(decoded, expected);
  // With no encoding_format the client asks for base64 itself and decodes it.
  const byDefault = await client.embeddings.create({ model: 'default', input: texts });
  assertSameVectors(byDefault.data.map((d) => d.embedding), expected);
});

test('one string input; the model:head id names an embedding head; dimensions equal to the width are accepted', async () => {
  const one = await client.embeddings.create({ model: 'default', input: sentences[4]!, encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  assertSameVectors([one.data[0]!.embedding], await graphqlEmbed([sentences[4]!]));
  // The default model's embedding head has no projection of its own: it is the pooled sentence embedding.
  const head = await client.embeddings.create({ model: 'default:embedding', input: sentences[4]!, encoding_format: 'float', dimensions: 512 });
  assert.equal(head.model, 'default:embedding');
  assertSameVectors([head.data[0]!.embedding], [one.data[0]!.embedding]);
});

test('a batch of 200 inputs comes back whole and in order', async () => {
  const texts = Array.from({ length: 200 }, (_, i) => sentences[i % sentences.length]! + (i >= sentences.length ? ` (${i})` : ''));
  const answer = await client.embeddings.create({ model: 'default', input: texts, encoding_format: 'float' });
  assert.deepEqual(answer.data.map((d) => d.index), texts.map((_, i) => i));
  assertSameVectors(answer.data.map((d) => d.embedding), await graphqlEmbed(texts));
  const tokens = (await graphqlTokenCounts(texts)).reduce((a, b) => a + b, 0);
  assert.equal(answer.usage.prompt_tokens, tokens);
});

test('bad requests are 400 invalid_request_error naming the param', async () => {
  const cases: Array<[body: Record<string, unknown>, param: string | null, message: RegExp]> = [
    [{ model: 'default', input: 'x', encoding_format: 'int8' }, 'encoding_format', /"float" or "base64"/],
    [{ model: 'default', input: 'x', dimensions: 64 }, 'dimensions', /512-dimensional.*cannot shorten/],
    [{ model: 'default', input: [[1, 2, 3]] }, 'input', /token ids are not supported/],
    [{ model: 'default', input: [101, 102] }, 'input', /token ids are not supported/],
    [{ model: 'default', input: [] }, 'input', /at least one text/],
    [{ model: 'default', input: ['fine', '   '] }, 'input', /input\[1\]: empty text/],
    [{ model: 'default', input: { text: 'x' } }, 'input', /a string or an array of strings/],
    [{ input: 'x' }, 'model', /give the model id/],
    [{ model: 'default', input: 'x', temperature: 1 }, 'temperature', /unrecognized request argument: temperature/],
  ];
  for (const [body, param, message] of cases) {
    const error = await refusal(client.embeddings.create(body as never));
    assert.equal(error.status, 400, JSON.stringify(body));
    assert.equal(error.type, 'invalid_request_error');
    assert.equal(error.param, param, JSON.stringify(body));
    assert.match(error.message, message);
  }
});

test('an unknown model is 404 model_not_found, listing the loaded ones', async () => {
  for (const model of ['text-embedding-3-small', 'default:sentiment', 'default:nope']) {
    const error = await refusal(client.embeddings.create({ model, input: 'x' }));
    assert.equal(error.status, 404);
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');
    assert.match(error.message, /loaded: default, default:embedding/);
  }
});

test('too many inputs, too long an input, too large a body: 413', async () => {
  const many = await refusal(client.embeddings.create({ model: 'default', input: Array.from({ length: 257 }, (_, i) => `text ${i}`) }));
  assert.deepEqual([many.status, many.code, many.param], [413, 'too_many_inputs', 'input']);
  assert.match(many.message, /at most 256 inputs/);
  const long = await refusal(client.embeddings.create({ model: 'default', input: ['short', 'y'.repeat(100_001)] }));
  assert.deepEqual([long.status, long.code], [413, 'input_too_long']);
  assert.match(long.message, /input\[1\]: 100001 characters, at most 100000/);
  const body = await refusal(client.embeddings.create({ model: 'default', input: 'z'.repeat(5 * 1024 * 1024) }));
  assert.deepEqual([body.status, body.code, body.type], [413, 'request_too_large', 'invalid_request_error']);
});

test('GET /v1/models lists the loaded embedding models; retrieve one, 404 for another', async () => {
  const listed = [];
  for await (const model of client.models.list()) listed.push(model);
  assert.deepEqual(listed.map((m) => m.id), ['default', 'default:embedding']);
  for (const model of listed) {
    assert.equal(model.object, 'model');
    assert.equal(model.owned_by, 'polyhead');
    assert.ok(Number.isInteger(model.created) && Math.abs(model.created - Date.now() / 1000) < 3600);
  }
  assert.equal((await client.models.retrieve('default:embedding')).id, 'default:embedding');
  const missing = await refusal(client.models.retrieve('gpt-4o'));
  assert.deepEqual([missing.status, missing.code], [404, 'model_not_found']);
});

test('raw HTTP: the exact JSON of an answer and of an error, never a stack trace', async () => {
  const response = await fetch(`${v1(server)}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${testApiKey}` },
    body: JSON.stringify({ model: 'default', input: 'Exact shape.', encoding_format: 'float', user: 'someone' }),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type')!, /^application\/json/);
  const body = (await response.json()) as any;
  assert.deepEqual(Object.keys(body), ['object', 'data', 'model', 'usage']);
  assert.deepEqual(Object.keys(body.data[0]), ['object', 'index', 'embedding']);
  assert.deepEqual({ ...body, data: body.data.map((d: any) => ({ ...d, embedding: d.embedding.length })) }, {
    object: 'list',
    data: [{ object: 'embedding', index: 0, embedding: 512 }],
    model: 'default',
    usage: { prompt_tokens: (await graphqlTokenCounts(['Exact shape.']))[0], total_tokens: body.usage.prompt_tokens },
  });
  assert.ok(body.data[0].embedding.every((x: unknown) => typeof x === 'number'));

  const errors: Array<[init: RequestInit, path: string, status: number, code: string | null]> = [
    [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "default", "input": ' }, 'embeddings', 400, null],
    [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }, 'embeddings', 415, 'unsupported_media_type'],
    [{ method: 'GET' }, 'embeddings', 405, 'method_not_allowed'],
    [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }, 'chat/completions', 404, 'unknown_url'],
  ];
  for (const [init, path, status, code] of errors) {
    const refused = await fetch(`${v1(server)}/${path}`, init);
    assert.equal(refused.status, status, path);
    const text = await refused.text();
    const parsed = JSON.parse(text);
    assert.deepEqual(Object.keys(parsed), ['error']);
    assert.deepEqual(Object.keys(parsed.error), ['message', 'type', 'param', 'code']);
    assert.equal(parsed.error.code, code);
    assert.equal(typeof parsed.error.message, 'string');
    assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+|node_modules|\/src\//, 'no stack trace or path');
  }
});

test('the error table: overload is 429 with Retry-After, shutting down 503, anything unexpected a masked 500', () => {
  const overloaded = openAiErrorOf(new EngineError('OVERLOADED', 'The queue is full', { retryAfterMs: 1500 }));
  assert.equal(overloaded.status, 429);
  assert.deepEqual(openAiErrorResponse(overloaded).headers, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '2', 'retry-after-ms': '1500' });
  assert.deepEqual([openAiErrorOf(new EngineError('SHUTTING_DOWN', 'closing')).status, openAiErrorOf(new EngineError('SHUTTING_DOWN', 'closing')).code], [503, 'shutting_down']);
  assert.equal(openAiErrorOf(new EngineError('DEADLINE_EXCEEDED', 'late')).status, 504);
  const unexpected = openAiErrorOf(new TypeError('secret detail at /srv/app/x.js:1'));
  assert.deepEqual([unexpected.status, unexpected.message, unexpected.type], [500, 'Internal server error', 'server_error']);
});

describe('a server that needs read keys, on PostgreSQL, with a tiny queue', { skip: skipWithoutPostgres }, () => {
  let guarded: TestServer;
  let database: ScratchDatabase;
  before(async () => {
    database = await createScratchDatabase();
    guarded = await startTestServer({ databaseUrl: database.url, requireReadKey: true, maxQueueTexts: 16, maxBatchSize: 1 });
  });
  after(async () => {
    await guarded?.close();
    await database?.drop();
  });

  test('401 without a valid key, 403 for a key without the read scope, 200 with one', async () => {
    const create = async (scopes: string[]) => (await guarded.admin('mutation($s: [String!]!) { createApiKey(name: "k", scopes: $s) { key } }', { s: scopes })).data.createApiKey.key as string;
    const reader = await create(['read']);
    const writer = await create(['write']);
    const unknown = await refusal(clientOf(guarded, 'ph_aaaaaaaaaaaa_notarealkeynotarealkeynotarealkey00').embeddings.create({ model: 'default', input: 'x' }));
    assert.deepEqual([unknown.status, unknown.code, unknown.type], [401, 'invalid_api_key', 'authentication_error']);
    const listing = await refusal(clientOf(guarded, 'wrong').models.list());
    assert.equal(listing.status, 401);
    const missing = await fetch(`${v1(guarded)}/models`);
    assert.equal(missing.status, 401);
    assert.match(((await missing.json()) as any).error.message, /Authorization: Bearer/);
    const forbidden = await refusal(clientOf(guarded, writer).embeddings.create({ model: 'default', input: 'x' }));
    assert.deepEqual([forbidden.status, forbidden.code], [403, 'insufficient_permissions']);
    const allowed = await clientOf(guarded, reader).embeddings.create({ model: 'default', input: ['x', 'y'], encoding_format: 'float' });
    assert.equal(allowed.data.length, 2);
  });

  test('past the queue bound: 429 with Retry-After, for one large request and in a burst; then it serves again', async () => {
    const texts = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} overload text number ${i}.`);
    const large = await fetch(`${v1(guarded)}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${testApiKey}` },
      body: JSON.stringify({ model: 'default', input: texts(40, 'large') }),
    });
    assert.equal(large.status, 429);
    assert.ok(Number(large.headers.get('retry-after')) >= 1);
    const body = (await large.json()) as any;
    assert.deepEqual([body.error.type, body.error.code], ['rate_limit_error', 'overloaded']);

    const admin = clientOf(guarded);
    const burst = await Promise.all(
      Array.from({ length: 10 }, (_, r) => admin.embeddings.create({ model: 'default', input: texts(12, `burst ${r}`), encoding_format: 'float' }).then((answer) => answer, (error: unknown) => error)),
    );
    const refused = burst.filter((outcome): outcome is APIError => outcome instanceof APIError);
    for (const outcome of burst) if (!(outcome instanceof APIError)) assert.equal((outcome as OpenAI.CreateEmbeddingResponse).data.length, 12);
    assert.ok(refused.length >= 1, 'some of the burst is refused');
    for (const error of refused) {
      assert.equal(error.status, 429);
      assert.ok(Number(error.headers?.get('retry-after')) >= 1);
    }
    const afterwards = await admin.embeddings.create({ model: 'default', input: 'the server keeps serving', encoding_format: 'float' });
    assert.equal(afterwards.data.length, 1);
  });
});
