// Registry queries per inference request = 0, counted where PostgreSQL sees them: every statement that reaches
// the database through a proxy in front of it, from any of the server's connections, while a server on real
// PostgreSQL answers multi-task inference requests. Statements that the server also sends while idle (a
// background poller, if one is ever added) are told apart by their text: they are not the requests' doing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startSqlCountingProxy, type SqlCountingProxy } from '../helpers/sql-counting-proxy.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

let scratch: ScratchDatabase | undefined;
let proxy: SqlCountingProxy | undefined;
let server: TestServer | undefined;

before(async () => {
  if (skipWithoutPostgres) return;
  scratch = await createScratchDatabase();
  proxy = await startSqlCountingProxy(scratch.url);
  server = await startTestServer({ databaseUrl: proxy.url });
});
after(async () => {
  await server?.close();
  await proxy?.close();
  await scratch?.drop();
});

const requests = [
  `query($t: [String!]!) { analyze(texts: $t) { tokenCount sentiment { label score } entities { text label start end } embedding classify(head: "sentiment") { label } } }`,
  `query($t: [String!]!) { sentiment(texts: $t) { label } entities(texts: $t) { label } embed(texts: $t) }`,
  `query($t: [String!]!) { similarity(query: "a question", candidates: $t) analyze(texts: $t) { sentiment { label } } }`,
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('inference requests send no SQL: 0 registry queries per request, on PostgreSQL', { skip: skipWithoutPostgres, timeout: 120_000 }, async () => {
  const { statements } = proxy!;
  // The proxy sees the server's statements: a registry read goes through it.
  let mark = statements.length;
  const registryRead = await server!.gql('{ models(first: 5) { edges { node { name } } } }');
  assert.equal(registryRead.errors, undefined);
  assert.ok(statements.length > mark, 'a registry read reaches PostgreSQL through the proxy');

  const n = 60;
  mark = statements.length;
  const started = Date.now();
  for (let i = 0; i < n; i++) {
    const texts = [`Maria Lopez from Madrid liked request ${i}.`, `The box of order ${i} arrived damaged.`];
    // Anonymous and with the bootstrap admin key (checked in memory, not in the key table).
    const headers: Record<string, string> = i % 2 ? { authorization: `Bearer ${testApiKey}` } : {};
    const answer = await server!.gql(requests[i % requests.length]!, { t: texts }, headers);
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  }
  const duringInference = statements.slice(mark);
  const inferenceMs = Date.now() - started;

  // As long again with no requests: what the server sends by itself.
  mark = statements.length;
  await sleep(Math.max(inferenceMs, 2_000));
  const background = new Set(statements.slice(mark).map((s) => s.sql));

  const caused = duringInference.filter((s) => !background.has(s.sql));
  assert.deepEqual(caused.map((s) => s.sql), [], `${caused.length} statements for ${n} inference requests`);
  const backgroundSql = [...new Set(duringInference.map((s) => s.sql))].map((sql) => sql.slice(0, 60));
  console.log(`${n} inference requests in ${inferenceMs} ms: ${caused.length} statements of their own, ${duringInference.length - caused.length} background ones ${JSON.stringify(backgroundSql)}`);
});
