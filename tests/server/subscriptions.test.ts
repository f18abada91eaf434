// Subscriptions over WebSocket with graphql-ws's own client: a real trainHead job followed to SUCCEEDED, model
// changes, GraphiQL running a subscription, the API key in the connection_init payload, and the limits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { defaultQueryLimits } from '../../src/server/query-limits.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';
import { topicExamples, topicLabels } from '../helpers/topic-examples.js';

const skip = skipWithoutPostgres;
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skipBrowser = skip || (existsSync(chromiumPath) || process.env.CI ? false : `no Chromium at ${chromiumPath} (apt-get install chromium; .ci/run does)`);

const wsUrl = (server: TestServer) => server.url.replace(/^http/, 'ws');

function connect(server: TestServer, connectionParams?: Record<string, unknown>): Client {
  return createClient({ url: wsUrl(server), webSocketImpl: WebSocket, connectionParams, retryAttempts: 0 });
}

/** Every result of a subscription, until the server completes it. */
async function collect(client: Client, query: string, variables?: Record<string, unknown>): Promise<any[]> {
  const results: any[] = [];
  for await (const result of client.iterate({ query, variables })) results.push(result);
  return results;
}

/** What a refused subscription throws: the server's errors, or the close event of a refused connection. */
async function refusal(client: Client, query: string): Promise<any> {
  try {
    await collect(client, query);
  } catch (error) {
    return error;
  }
  assert.fail('the subscription was not refused');
}

const missingJob = 'subscription { trainingJobUpdates(id: "no-such-job") { id } }';

describe('on a server with the default model', () => {
  let database: ScratchDatabase;
  let server: TestServer;
  let finishedJob: string;

  before(async () => {
    if (skip) return;
    database = await createScratchDatabase();
    server = await startTestServer({ databaseUrl: database.url });
  });
  after(async () => {
    await server?.close();
    await database?.drop();
  });

  test('a graphql-ws client follows a real trainHead job to SUCCEEDED', { skip, timeout: 240_000 }, async () => {
    const started = await server.admin(
      `mutation($e: [TrainingExampleInput!]) { trainHead(model: "default", head: "topic", task: CLASSIFICATION, labels: ${JSON.stringify(topicLabels)}, examples: $e) { id } }`,
      { e: topicExamples },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const id = started.data.trainHead.id as string;
    // The key as a client would send it (this server does not need one for reads).
    const client = connect(server, { authorization: `Bearer ${testApiKey}` });
    const results = await collect(client, 'subscription($id: ID!) { trainingJobUpdates(id: $id) { id status phase progress metrics { metric value split } version error } }', { id });
    await client.dispose();

    assert.ok(results.every((r) => r.errors === undefined), JSON.stringify(results.find((r) => r.errors)));
    const states = results.map((r) => r.data.trainingJobUpdates);
    assert.ok(states.every((s) => s.id === id));
    assert.ok(states.length >= 2, `the current state first, then changes: got ${states.length}`);
    const order = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    const ranks = states.map((s) => order.indexOf(s.status));
    assert.ok(
      ranks.every((rank, i) => rank >= 0 && (i === 0 || rank >= ranks[i - 1]!)),
      states.map((s) => s.status).join(' '),
    );
    assert.ok(
      states.some((s) => s.status === 'RUNNING'),
      'progress while it ran',
    );
    const last = states.at(-1);
    assert.equal(last.status, 'SUCCEEDED', last.error);
    assert.equal(last.phase, 'done');
    assert.equal(last.progress, 1);
    assert.match(last.version, /\+topic\./);
    const accuracy = last.metrics.find((m: any) => m.metric === 'accuracy');
    assert.ok(accuracy && accuracy.value >= 0.8, JSON.stringify(last.metrics));
    // The stream ended by itself (the loop above returned) and says the same as the query.
    const queried = await server.gql('query($id: ID!) { trainingJob(id: $id) { status version } }', { id });
    assert.deepEqual(queried.data.trainingJob, { status: 'SUCCEEDED', version: last.version });
    finishedJob = id;
  });

  test('a job that has ended gives its final state and completes; an unknown one is NOT_FOUND', { skip }, async () => {
    assert.ok(finishedJob, 'needs the job of the test before');
    const client = connect(server);
    const results = await collect(client, `subscription { trainingJobUpdates(id: "${finishedJob}") { status } }`);
    assert.deepEqual(
      results.map((r) => r.data.trainingJobUpdates.status),
      ['SUCCEEDED'],
    );
    const errors = await refusal(client, missingJob);
    assert.equal(errors[0].extensions.code, 'NOT_FOUND');
    assert.match(errors[0].message, /no training job "no-such-job"/);
    await client.dispose();
  });

  test('modelChanges streams an unload and a load', { skip, timeout: 60_000 }, async () => {
    const client = connect(server);
    const events = client.iterate({ query: 'subscription { modelChanges(model: "default") { kind model version at } }' });
    // A later operation on the same connection answered: the subscription above is in place.
    await refusal(client, missingJob);
    const unloaded = await server.admin('mutation { unloadModel(model: "default") }');
    assert.equal(unloaded.data?.unloadModel, true, JSON.stringify(unloaded.errors));
    const loaded = await server.admin('mutation { loadModel(model: "default") { version } }');
    assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));

    const seen: any[] = [];
    for await (const result of events) {
      seen.push(result.data!.modelChanges);
      if (seen.some((e) => e.kind === 'LOADED')) break; // ends the subscription
    }
    const kinds = seen.map((e) => e.kind);
    assert.deepEqual(kinds.slice(kinds.indexOf('UNLOADED')), ['UNLOADED', 'LOADED'], JSON.stringify(seen));
    const load = seen.at(-1);
    assert.equal(load.model, 'default');
    assert.equal(load.version, loaded.data.loadModel.version);
    assert.ok(Math.abs(Date.parse(load.at) - Date.now()) < 60_000);
    await client.dispose();
  });

  test('GraphiQL runs a subscription over the WebSocket', { skip: skipBrowser, timeout: 90_000 }, async () => {
    assert.ok(finishedJob, 'needs the job of the first test');
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const sockets: string[] = [];
      page.on('websocket', (socket) => sockets.push(socket.url()));
      await page.goto(server.url);
      const editor = page.locator('.graphiql-query-editor').first();
      await editor.waitFor({ timeout: 30_000 });
      await editor.click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      await page.keyboard.type(`subscription FollowJob { trainingJobUpdates(id: "${finishedJob}") { status phase } }`);
      // GraphiQL takes in an edit after a short delay; the tab's title (the operation's name) shows it has.
      await page.getByRole('tab', { name: 'FollowJob' }).waitFor({ timeout: 30_000 });
      await page.locator('.graphiql-execute-button').click();
      await page.locator('.graphiql-response').getByText('"SUCCEEDED"').waitFor({ timeout: 30_000 });
      assert.deepEqual(sockets, [wsUrl(server)]);
    } finally {
      await browser.close();
    }
  });
});

describe('on a server that needs a key for reads, with small limits', () => {
  let database: ScratchDatabase;
  let server: TestServer;

  before(async () => {
    if (skip) return;
    database = await createScratchDatabase();
    server = await startTestServer({
      models: [],
      databaseUrl: database.url,
      requireReadKey: true,
      subscriptions: { maxConnections: 2, maxPerConnection: 1 },
      queryLimits: { ...defaultQueryLimits, maxDepth: 2 },
    });
  });
  after(async () => {
    await server?.close();
    await database?.drop();
  });

  test('a connection without a key, with a bad key, or with a key lacking the read scope is refused', { skip }, async () => {
    const trainOnly = await server.admin('mutation { createApiKey(name: "train-only", scopes: ["train"]) { key } }');
    const cases: Array<[Record<string, unknown> | undefined, number, RegExp]> = [
      [undefined, 4401, /needs an API key: send \{ authorization: "Bearer <key>" \} in connection_init/],
      [{ authorization: 'Bearer not-a-key' }, 4401, /not accepted/],
      [{ authorization: `Bearer ${trainOnly.data.createApiKey.key}` }, 4403, /lacks the "read" scope/],
      [{ authorization: 42 }, 4400, /must be a string/],
    ];
    for (const [params, code, reason] of cases) {
      const client = connect(server, params);
      const closed = await refusal(client, missingJob);
      assert.equal(closed.code, code, `${JSON.stringify(params)}: ${closed.reason}`);
      assert.match(closed.reason, reason);
      await client.dispose();
    }
    // The key in the payload as HTTP's header would carry it: accepted.
    const client = connect(server, { authorization: `Bearer ${testApiKey}` });
    const errors = await refusal(client, missingJob);
    assert.equal(errors[0].extensions.code, 'NOT_FOUND');
    await client.dispose();
  });

  test('per connection: one subscription at a time here, subscriptions only, the query limits of HTTP', { skip }, async () => {
    const client = connect(server, { authorization: `Bearer ${testApiKey}` });
    const first = client.iterate({ query: 'subscription { modelChanges { kind } }' });
    const second = await refusal(client, missingJob);
    assert.equal(second[0].extensions.code, 'BAD_USER_INPUT');
    assert.match(second[0].message, /2 subscriptions at once on this connection: over the limit of 1 \(POLYHEAD_WS_MAX_SUBSCRIPTIONS\)/);
    await first.return!(); // frees the slot

    const query = await refusal(client, '{ server { version } }');
    assert.equal(query[0].extensions.code, 'BAD_USER_INPUT');
    assert.match(query[0].message, /send queries over HTTP/);
    const deep = await refusal(client, 'subscription { trainingJobUpdates(id: "x") { metrics { metric } } }');
    assert.equal(deep[0].extensions.code, 'BAD_USER_INPUT');
    assert.match(deep[0].message, /query depth 3 is over the limit of 2/);
    const invalid = await refusal(client, 'subscription { trainingJobUpdates { id } }');
    assert.equal(invalid[0].extensions.code, 'GRAPHQL_VALIDATION_FAILED');
    const unparsable = await refusal(client, 'subscription {');
    assert.equal(unparsable[0].extensions.code, 'GRAPHQL_PARSE_FAILED');
    await client.dispose();
  });

  test('connections over the limit are refused with 503 until one closes; other paths and HTTP subscriptions are refused', { skip }, async () => {
    const open = async () => {
      const socket = new WebSocket(wsUrl(server), 'graphql-transport-ws');
      return new Promise<{ socket?: WebSocket; status?: number; body?: string }>((resolve, reject) => {
        socket.once('open', () => resolve({ socket }));
        socket.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        socket.once('error', reject);
      });
    };
    const closeSocket = (socket: WebSocket) => new Promise((resolve) => (socket.once('close', resolve), socket.close()));
    // Connections of the tests before may take a moment to be gone on the server's side.
    const openWhenFree = async () => {
      for (const until = Date.now() + 5_000; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
        const attempt = await open();
        if (attempt.socket || Date.now() > until) return attempt;
      }
    };
    const a = await openWhenFree();
    const b = await openWhenFree();
    assert.ok(a.socket && b.socket);
    const c = await open();
    assert.equal(c.status, 503);
    assert.equal(JSON.parse(c.body!).errors[0].extensions.code, 'OVERLOADED');
    assert.match(JSON.parse(c.body!).errors[0].message, /POLYHEAD_WS_MAX_CONNECTIONS/);
    await closeSocket(a.socket);
    const d = await openWhenFree();
    assert.ok(d.socket, 'a closed connection frees its place');
    await closeSocket(b.socket);
    await closeSocket(d.socket);

    const elsewhere = await new Promise<number>((resolve) => new WebSocket(`${wsUrl(server).replace('/graphql', '/elsewhere')}`, 'graphql-transport-ws').once('unexpected-response', (_req, res) => resolve(res.statusCode!)).once('error', () => {}));
    assert.equal(elsewhere, 404);

    const overHttp = await server.admin('subscription { modelChanges { kind } }');
    assert.equal(overHttp.status, 400);
    assert.equal(overHttp.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(overHttp.errors![0]!.message, /over WebSocket/);
  });

  test('stopping the server closes open subscriptions (1001) and stops promptly', { skip }, async () => {
    const client = connect(server, { authorization: `Bearer ${testApiKey}` });
    const subscription = refusal(client, 'subscription { modelChanges { kind } }');
    await refusal(client, missingJob); // refused (one at a time here), but answered: the server has the first in hand
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 5_000, `close took ${Date.now() - started} ms`);
    const closed = await subscription;
    assert.equal(closed.code, 1001);
    await client.dispose();
  });
});
