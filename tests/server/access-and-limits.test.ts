// Access (API keys with scopes, bundle roots, CSRF, CORS, introspection and GraphiQL switches) and input
// limits (body size, depth, aliases, fields, cost, texts), each with its typed error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { basename, join } from 'node:path';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

let server: TestServer;
const importMutation = 'mutation($path: String!) { importBundle(path: $path) { created } }';

before(async () => {
  server = await startTestServer({ maxTexts: 8, maxBodyBytes: 64 * 1024, queryLimits: { maxDepth: 6, maxAliases: 3, maxFields: 40, maxCost: 500 } });
});
after(() => server.close());

async function post(body: string, headers: Record<string, string> = {}) {
  const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: response.status, headers: response.headers, body: (await response.json().catch(() => ({}))) as any };
}

test('API keys: scopes decide what a key may do; revoked keys stop working; only a hash is stored', async () => {
  const create = (name: string, scopes: string[]) => server.admin('mutation($n: String!, $s: [String!]!) { createApiKey(name: $n, scopes: $s) { id key scopes } }', { n: name, s: scopes });
  const writer = (await create('writer', ['write'])).data.createApiKey;
  const reader = (await create('reader', ['read'])).data.createApiKey;
  assert.match(writer.key, /^ph_[a-z0-9]{12}_/);
  const as = (key: string, query: string, variables?: object) => server.gql(query, variables as Record<string, unknown>, { authorization: `Bearer ${key}` });

  const imported = await as(writer.key, importMutation, { path: writeFixtureBundle(tempDir(), { name: 'scoped' }) });
  assert.equal(imported.errors, undefined);
  const forbidden = await as(reader.key, 'mutation { setAlias(model: "scoped", alias: "production", version: "1.0.0") { version } }');
  assert.equal(forbidden.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  const notAdmin = await as(writer.key, 'mutation { unloadModel(model: "default") }');
  assert.equal(notAdmin.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  const badKey = await as(`${writer.key.slice(0, -2)}xx`, importMutation, { path: writeFixtureBundle(tempDir(), { name: 'nope' }) });
  assert.equal(badKey.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');

  const stored = await server.db.prisma.apiKey.findMany();
  assert.ok(stored.every((row) => !writer.key.includes(row.hash) && row.hash.length === 64), 'only the scrypt hash is stored');
  assert.equal((await server.admin(`mutation { revokeApiKey(id: ${writer.id}) }`)).data.revokeApiKey, true);
  const revoked = await as(writer.key, importMutation, { path: writeFixtureBundle(tempDir(), { name: 'after-revoke' }) });
  assert.equal(revoked.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  const listed = await server.admin('{ apiKeys { name scopes revokedAt } }');
  assert.deepEqual(listed.data.apiKeys.map((k: any) => [k.name, k.revokedAt !== null]), [['writer', true], ['reader', false]]);
  const badScope = await create('bad', ['superuser']);
  assert.equal(badScope.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
});

test('importBundle reads only below the bundle roots, and not through a symlink out', async () => {
  const root = tempDir('polyhead-root-');
  const outside = tempDir('polyhead-outside-'); // a sibling of the root, not below it
  const guarded = await startTestServer({ models: [], bundleRoots: [root] });
  try {
    const inside = writeFixtureBundle(join(root, 'inside'), { name: 'inside' });
    assert.equal((await guarded.admin(importMutation, { path: inside })).errors, undefined);
    writeFixtureBundle(outside, { name: 'outside' });
    const refused = await guarded.admin(importMutation, { path: outside });
    assert.equal(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.match(refused.errors![0]!.message, /POLYHEAD_BUNDLE_ROOTS/);
    const link = join(root, 'link-out');
    symlinkSync(outside, link);
    assert.equal((await guarded.admin(importMutation, { path: link })).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const traversal = await guarded.admin(importMutation, { path: `${root}/../${basename(outside)}` });
    assert.equal(traversal.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  } finally {
    await guarded.close();
  }
});

test('CSRF prevention refuses simple cross-site GET requests; CORS is off unless configured', async () => {
  const simpleGet = await fetch(`${server.url}?query=${encodeURIComponent('{ server { version } }')}`);
  assert.equal(simpleGet.status, 400, 'a GET without a preflight-forcing header is refused');
  const preflighted = await fetch(`${server.url}?query=${encodeURIComponent('{ server { version } }')}`, { headers: { 'apollo-require-preflight': 'true' } });
  assert.equal(preflighted.status, 200);
  const fromBrowser = await post('{"query":"{ server { version } }"}', { origin: 'https://evil.example' });
  assert.equal(fromBrowser.headers.get('access-control-allow-origin'), null);
});

test('the GraphQL endpoint: compressed bodies, charsets, +json types, CORS when configured', async () => {
  const query = JSON.stringify({ query: '{ server { version } }' });
  const gzipped = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(query) });
  assert.equal(gzipped.status, 200);
  assert.ok(((await gzipped.json()) as any).data.server.version);
  const unknownEncoding = await post(query, { 'content-encoding': 'zstd-42' });
  assert.equal(unknownEncoding.status, 415);
  assert.equal(unknownEncoding.body.errors[0].extensions.code, 'BAD_REQUEST');
  const latin1 = await post(query, { 'content-type': 'application/json; charset=latin1' });
  assert.equal(latin1.status, 415);
  assert.match(latin1.body.errors[0].message, /charset/);
  assert.equal((await post(query, { 'content-type': 'application/graphql-response+json' })).status, 200);
  const bomb = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{"query":"' + ' '.repeat(200 * 1024) + '"}') });
  assert.equal(bomb.status, 413, 'the limit counts decompressed bytes');
  const notGzip = await post(query, { 'content-encoding': 'gzip' });
  assert.equal(notGzip.status, 400);
  assert.equal(notGzip.body.errors[0].extensions.code, 'BAD_REQUEST');

  const open = await startTestServer({ corsOrigins: ['https://app.example'] });
  try {
    const preflight = await fetch(open.url, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
    const allowed = await fetch(open.url, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://app.example' }, body: query });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
    const other = await fetch(open.url, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: query });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  } finally {
    await open.close();
  }
});

test('limits: body size, depth, aliases, fields, cost and texts each give a typed error', async () => {
  const big = await post(JSON.stringify({ query: '{ embed(texts: ["x"]) }', variables: { pad: 'x'.repeat(70 * 1024) } }));
  assert.equal(big.status, 413);
  assert.equal(big.body.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
  const garbage = await post('{"query": ');
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.errors[0].extensions.code, 'BAD_REQUEST');

  const deep = await server.gql('{ models { edges { node { versions { heads { backbone { heads { backbone { name } } } } } } } } }');
  assert.match(deep.errors![0]!.message, /query depth \d+ is over the limit of 6/);
  const aliases = await server.gql('{ a: server { version } b: server { version } c: server { version } d: server { version } }');
  assert.match(aliases.errors![0]!.message, /aliases 4 is over the limit of 3/);
  const fields = await server.gql(`{ server { ${'version '.repeat(50)} } }`);
  assert.match(fields.errors![0]!.message, /fields \d+ is over the limit of 40/);
  const texts = Array.from({ length: 8 }, (_, i) => `text ${i}`);
  const cost = await server.gql('query($t: [String!]!) { a: analyze(texts: $t) { embedding } b: analyze(texts: $t) { embedding } c: embed(texts: $t) }', { t: [...texts] });
  assert.equal(cost.errors, undefined, 'within budget: 3 x 8 texts x 20');
  const fragment = await server.gql(
    'query($t: [String!]!) { a: analyze(texts: $t) { ...all } b: analyze(texts: $t) { ...all } c: analyze(texts: $t) { ...all } } fragment all on TextAnalysis { embedding classify(head: "x") { label } }',
    { t: texts },
  );
  assert.equal(fragment.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  assert.match(fragment.errors![0]!.message, /query cost \d+ is over the limit of 500/);
  for (const response of [deep, aliases, fields, fragment]) assert.equal(response.errors![0]!.extensions!.code, 'BAD_USER_INPUT');
  const tooMany = await server.gql('query($t: [String!]!) { embed(texts: $t) }', { t: [...texts, 'ninth'] });
  assert.match(tooMany.errors![0]!.message, /at most 8 texts/);
});

test('unusual text is handled deterministically: lone surrogates, NUL bytes, mixed scripts, with exact offsets', async () => {
  const inputs = ['lone \ud800 surrogate', 'nul\u0000byte', 'Москва and 東京 and القاهرة', 'e\u0301clair café', '👩‍👩‍👧 family'];
  const first = await server.gql('query($t: [String!]!) { analyze(texts: $t) { text tokenCount truncated embedding } }', { t: inputs });
  assert.equal(first.errors, undefined);
  const second = await server.gql('query($t: [String!]!) { analyze(texts: $t) { text tokenCount embedding } }', { t: inputs });
  first.data.analyze.forEach((a: any, i: number) => {
    assert.equal(a.tokenCount, second.data.analyze[i].tokenCount);
    assert.deepEqual(a.embedding, second.data.analyze[i].embedding);
    assert.ok(a.embedding.every((x: number) => Number.isFinite(x)));
  });
});

test('introspection and GraphiQL can be switched off; unexpected errors never leak details', async () => {
  const locked = await startTestServer({ models: [], introspection: false, graphiql: false });
  try {
    const introspection = await locked.gql('{ __schema { types { name } } }');
    assert.equal(introspection.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    const page = await fetch(locked.url, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 404);
  } finally {
    await locked.close();
  }
  const enabled = await server.gql('{ __schema { queryType { name } } }', {}, { authorization: `Bearer ${testApiKey}` });
  assert.equal(enabled.data.__schema.queryType.name, 'Query');
});
