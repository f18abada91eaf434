// Automatic persisted queries and GET: Apollo Client's persisted-query link sends a query's hash over GET, the
// text once when the server does not know it, then the hash alone; the cache is bounded; mutations never run
// over GET; GET keeps Apollo's CSRF prevention.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

const skip = skipWithoutPostgres;
let database: ScratchDatabase;
let server: TestServer;

before(async () => {
  if (skip) return;
  database = await createScratchDatabase();
  // A small cache, so that the eviction test below can fill it.
  server = await startTestServer({ models: [], databaseUrl: database.url, persistedQueryCacheBytes: 4096 });
});
after(async () => {
  await server?.close();
  await database?.drop();
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An Apollo Client whose every request is recorded (method, and the query string of GETs). */
function recordingClient() {
  const requests: Array<{ method: string; search: URLSearchParams }> = [];
  const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({
      uri: server.url,
      headers: { authorization: `Bearer ${testApiKey}` },
      fetch: (input, init) => {
        requests.push({ method: init?.method ?? 'GET', search: new URL(String(input)).searchParams });
        return fetch(input, init);
      },
    }),
  );
  return { client: new ApolloClient({ link, cache: new InMemoryCache() }), requests };
}

const serverQuery = gql`
  query ServerVersion {
    server {
      version
      database
    }
  }
`;

test('Apollo Client with the persisted-query link: the hash over GET, the text once, then the hash alone', { skip }, async () => {
  const first = recordingClient();
  const answer = await first.client.query({ query: serverQuery });
  assert.deepEqual(answer.data, { server: { __typename: 'ServerInfo', version: answer.data!.server.version, database: 'postgresql' } });
  // Unknown hash over GET, then the text with its hash over POST, which the server keeps.
  assert.deepEqual(
    first.requests.map((r) => r.method),
    ['GET', 'POST'],
  );
  assert.equal(first.requests[0]!.search.get('query'), null, 'the first try sends the hash only');
  assert.match(first.requests[0]!.search.get('extensions') ?? '', /"sha256Hash"/);

  // Another client (its own empty cache): the hash alone over GET is enough now.
  const second = recordingClient();
  const again = await second.client.query({ query: serverQuery });
  assert.deepEqual(again.data, answer.data);
  assert.deepEqual(
    second.requests.map((r) => r.method),
    ['GET'],
  );
  assert.equal(second.requests[0]!.search.get('query'), null);
});

test('mutations go over POST with the persisted-query link, never GET', { skip }, async () => {
  const { client, requests } = recordingClient();
  const created = await client.mutate({
    mutation: gql`
      mutation CreateKey {
        createApiKey(name: "apq-test", scopes: ["read"]) {
          name
          scopes
        }
      }
    `,
  });
  assert.deepEqual(created.data, { createApiKey: { __typename: 'CreatedApiKey', name: 'apq-test', scopes: ['read'] } });
  assert.ok(requests.length >= 1);
  assert.ok(
    requests.every((r) => r.method === 'POST'),
    JSON.stringify(requests.map((r) => r.method)),
  );
});

test('GET: a query runs, a mutation is refused, a request without the CSRF-safe header is refused as Apollo does', { skip }, async () => {
  const get = (query: string, headers: Record<string, string>) => fetch(`${server.url}?query=${encodeURIComponent(query)}`, { headers });
  const preflighted = { 'apollo-require-preflight': 'true', authorization: `Bearer ${testApiKey}` };

  const query = await get('{ server { database } }', preflighted);
  assert.equal(query.status, 200);
  assert.deepEqual(await query.json(), { data: { server: { database: 'postgresql' } } });
  // A JSON content type is as good as the header (a browser cannot send it cross-site without a preflight).
  assert.equal((await get('{ server { database } }', { 'content-type': 'application/json' })).status, 200);

  const mutation = await get('mutation { createApiKey(name: "over-get", scopes: ["read"]) { name } }', preflighted);
  assert.equal(mutation.status, 405);
  assert.match(mutation.headers.get('allow') ?? '', /POST/);
  const refused = (await mutation.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
  assert.match(refused.errors[0]!.message, /GET requests only support query operations/);
  assert.equal(refused.errors[0]!.extensions.code, 'BAD_REQUEST');
  const keys = await server.admin('{ apiKeys { name } }');
  assert.ok(!keys.data.apiKeys.some((k: { name: string }) => k.name === 'over-get'), 'the mutation did not run');

  // What a cross-site <img> or form GET would look like: no content type, no preflight header.
  const simple = await get('{ server { database } }', {});
  assert.equal(simple.status, 400);
  assert.match(((await simple.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /Cross-Site Request Forgery/);
});

test('the persisted-query cache is bounded: the least recently used text is evicted', { skip }, async () => {
  const headers = { 'content-type': 'application/json' };
  // Each text is a little over half the cache (4096 bytes): the second evicts the first.
  const texts = ['a', 'b'].map((name) => `query Padded_${name} { server { version } }\n# ${name.repeat(2200)}`);
  const persisted = (text: string) => encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash: sha256(text) } }));
  for (const text of texts) {
    const register = await fetch(`${server.url}?query=${encodeURIComponent(text)}&extensions=${persisted(text)}`, { headers });
    assert.equal(register.status, 200);
    const byHash = await fetch(`${server.url}?extensions=${persisted(text)}`, { headers });
    assert.equal(((await byHash.json()) as { data?: unknown }).data !== undefined, true, 'known right after it was sent');
  }
  const evicted = await fetch(`${server.url}?extensions=${persisted(texts[0]!)}`, { headers });
  assert.deepEqual(((await evicted.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code, 'PERSISTED_QUERY_NOT_FOUND');
  const kept = await fetch(`${server.url}?extensions=${persisted(texts[1]!)}`, { headers });
  assert.ok(((await kept.json()) as { data?: unknown }).data);
});
