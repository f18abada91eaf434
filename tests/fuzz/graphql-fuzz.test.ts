// The short fuzz run of the suite (scripts/fuzz.ts is the full one): generated and mutated GraphQL
// documents, hostile variables and malformed HTTP requests against a real server with the default model.
// The server never answers 5xx, every error has extensions.code, and a valid request keeps succeeding.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStats, fuzzGraphQL } from '../helpers/graphql-fuzz.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('fuzzed GraphQL documents and requests never crash the server, never get a 5xx, always carry a code', { timeout: 120_000 }, async () => {
  const runs = Number(process.env.POLYHEAD_FUZZ_RUNS ?? 600);
  const seed = process.env.POLYHEAD_FUZZ_SEED ? Number(process.env.POLYHEAD_FUZZ_SEED) : undefined;
  const stats = await fuzzGraphQL({ url: server.url, runs, seed });
  console.log(`fuzz (seed ${stats.seed}):\n${formatStats(stats)}`);
  assert.deepEqual(stats.failures, [], `counterexample: ${JSON.stringify(stats.counterexample)?.slice(0, 2000)}`);
  assert.ok(stats.sent >= runs);
  assert.ok(stats.validChecks >= runs / 25);
});
