// One desired state of loaded models across replicas: two servers on one PostgreSQL registry follow each
// other's loadModel / unloadModel / setAlias through LISTEN/NOTIFY, a replica that was stopped or lost its
// listening connection catches up, an unload survives a restart, and a failed load changes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import pg from 'pg';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { listenerApplicationName } from '../../src/registry/notifications.js';
import type { ModelEvent } from '../../src/serving/desired-state.js';

const model = 'replicated';

function serving(server: TestServer): string | null {
  return server.engine.list().find((m) => m.name === model)?.version ?? null;
}

/** Milliseconds until `server` serves `version` (null: nothing), polled every 5 ms; fails after `ms`. */
async function until(server: TestServer, version: string | null, what: string, ms = 10_000): Promise<number> {
  const started = performance.now();
  while (serving(server) !== version) {
    if (performance.now() - started > ms) assert.fail(`${what}: still serving ${serving(server)} after ${ms} ms, expected ${version}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

/**
 * When `server`'s engine next starts loading a model: an upper bound of when the change reached that replica
 * (after it read the row and checked the bundle's files; serving it also takes the load itself, most of a
 * second for this backbone on a busy 2-core machine). A timing tap only: the real load runs unchanged.
 */
function nextLoadStart(server: TestServer): () => number | undefined {
  const engine = server.engine;
  const load = engine.load;
  let startedAt: number | undefined;
  engine.load = function (this: typeof engine, ...args: Parameters<typeof load>) {
    startedAt ??= performance.now();
    engine.load = load;
    return load.apply(this, args);
  };
  return () => startedAt;
}

/**
 * A TCP pass-through to PostgreSQL that can refuse new connections while keeping those it has (no library at
 * hand does this; bytes pass unchanged). `upstreamPorts` are its own ports towards PostgreSQL, which
 * pg_stat_activity shows as client_port, so the test can tell the sessions behind the gate from the others.
 */
async function startGate(targetUrl: string) {
  const target = new URL(targetUrl);
  const upstreams = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    upstreams.add(upstream);
    for (const socket of [client, upstream]) socket.on('error', () => {});
    upstream.once('close', () => (upstreams.delete(upstream), client.destroy()));
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    refuse: (on: boolean) => void (refusing = on),
    upstreamPorts: () => [...upstreams].map((socket) => socket.localPort).filter((port): port is number => port !== undefined),
    close: () => {
      for (const socket of upstreams) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function mutate(server: TestServer, query: string) {
  const response = await server.admin(query);
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data;
}

describe('desired state across replicas', { skip: skipWithoutPostgres }, () => {
  let db: ScratchDatabase;
  let a: TestServer;
  let b: TestServer;
  let admin: pg.Client;
  const propagation: Record<string, number> = {};

  const startReplica = () => startTestServer({ databaseUrl: db.url, models: [] });
  const revision = async () =>
    (await admin.query<{ revision: number; loaded: boolean }>('SELECT revision, loaded FROM "DesiredModel" WHERE "modelName" = $1', [model])).rows[0];

  before(async () => {
    db = await createScratchDatabase();
    admin = new pg.Client({ connectionString: db.url });
    a = await startReplica();
    b = await startReplica();
    await admin.connect();
    for (const [version, seed] of [['1.0.0', 7], ['2.0.0', 11]] as const) {
      const path = await writeHeadsBundle({ name: model, version, seed });
      await mutate(a, `mutation { importBundle(path: "${path}") { created } }`);
    }
    // Registered consistently, so only the engine finds out: a head that is not an ONNX graph.
    const broken = await writeHeadsBundle({ name: model, version: '3.0.0' });
    writeFileSync(join(broken, 'heads', 'entities.onnx'), 'not an onnx graph');
    await mutate(a, `mutation { importBundle(path: "${broken}") { created } }`);
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await admin?.end();
    await db?.drop();
    // loadModel / setAlias: until B starts loading (…Served: until it serves, its own load included); unloadModel:
    // until B no longer serves it; afterReconnect: from the gate opening until B serves the new version.
    console.log(`propagation A -> B, ms: ${JSON.stringify(Object.fromEntries(Object.entries(propagation).map(([k, v]) => [k, Math.round(v)])))}`);
  });

  it('a version registered on A is an event on B', async () => {
    const events: ModelEvent[] = [];
    const stop = b.desiredState.onChange((event) => events.push(event));
    const path = await writeHeadsBundle({ name: model, version: '4.0.0', seed: 13 });
    await mutate(a, `mutation { importBundle(path: "${path}") { created } }`);
    const registered = () => events.find((e) => e.version === '4.0.0');
    for (const started = Date.now(); !registered() && Date.now() - started < 1_000; ) await new Promise((resolve) => setTimeout(resolve, 5));
    stop();
    assert.deepEqual([registered()?.kind, registered()?.model], ['VERSION_REGISTERED', model]);
  });

  it('loadModel on A is applied on B within 1 s; B tells its subscribers', async () => {
    const events: ModelEvent[] = [];
    const stop = b.desiredState.onChange((event) => events.push(event));
    await mutate(a, `mutation { setAlias(model: "${model}", alias: "production", version: "1.0.0") { version } }`);
    const reached = nextLoadStart(b);
    assert.equal((await mutate(a, `mutation { loadModel(model: "${model}") { version } }`)).loadModel.version, '1.0.0');
    const answered = performance.now();
    propagation.loadModelServed = await until(b, '1.0.0', 'B after loadModel on A');
    // The event follows the load's last step (the version marked READY), a moment after the engine serves it.
    for (const started = Date.now(); !events.length && Date.now() - started < 2_000; ) await new Promise((resolve) => setTimeout(resolve, 5));
    stop();
    propagation.loadModel = reached()! - answered;
    assert.ok(propagation.loadModel < 1_000, `B started loading it ${propagation.loadModel} ms after A answered`);
    assert.deepEqual(
      events.map((e) => [e.kind, e.model, e.version]),
      [['LOADED', model, '1.0.0']],
    );
    const ready = await fetch(new URL('/readyz', b.url));
    assert.equal(ready.status, 200, JSON.stringify(await ready.json()));
  });

  it('a model loaded by its alias follows setAlias on A and B within 1 s', async () => {
    const reached = nextLoadStart(b);
    await mutate(a, `mutation { setAlias(model: "${model}", alias: "production", version: "2.0.0") { version } }`);
    const answered = performance.now();
    assert.equal(serving(a), '2.0.0', 'A moves before setAlias answers');
    propagation.setAliasServed = await until(b, '2.0.0', 'B after setAlias on A');
    propagation.setAlias = reached()! - answered;
    assert.ok(propagation.setAlias < 1_000, `B started following ${propagation.setAlias} ms after A answered`);
  });

  it('a failed load changes nothing: the old version serves everywhere and the desired state stays', async () => {
    const before = await revision();
    const failed = await a.admin(`mutation { loadModel(model: "${model}", version: "3.0.0") { version } }`);
    assert.equal(failed.errors?.[0]?.extensions?.code, 'MODEL_LOAD_FAILED');
    const alias = await a.admin(`mutation { setAlias(model: "${model}", alias: "production", version: "3.0.0") { version } }`);
    assert.equal(alias.errors?.[0]?.extensions?.code, 'MODEL_LOAD_FAILED', 'a followed alias does not move to a version that fails to load');
    const aliases = await a.gql(`{ model(name: "${model}") { aliases { alias version { version } } } }`);
    assert.deepEqual(aliases.data.model.aliases, [{ alias: 'production', version: { version: '2.0.0' } }]);
    assert.deepEqual(await revision(), before);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual([serving(a), serving(b)], ['2.0.0', '2.0.0']);
  });

  it('unloadModel on A is applied on B within 1 s and survives a restart of B', async () => {
    assert.equal((await mutate(a, `mutation { unloadModel(model: "${model}") }`)).unloadModel, true);
    propagation.unloadModel = await until(b, null, 'B after unloadModel on A');
    assert.ok(propagation.unloadModel < 1_000, `B unloaded after ${propagation.unloadModel} ms`);
    await b.close();
    b = await startReplica();
    assert.equal(serving(b), null, 'a restarted replica keeps the model unloaded');
    assert.equal((await revision())?.loaded, false);
  });

  it('a replica that was down when the change was made converges when it starts', async () => {
    await b.close();
    await mutate(a, `mutation { loadModel(model: "${model}", version: "1.0.0") { version } }`);
    b = await startReplica();
    assert.equal(serving(b), '1.0.0', 'B serves the desired version as soon as it is up');
  });

  it('a replica whose listening connection was terminated reconciles when it comes back, without a restart', async (t) => {
    // B talks to PostgreSQL through a gate: its listening session is terminated while the gate refuses new
    // connections, so B cannot hear of A's change however quickly it retries, until the gate opens again.
    const gate = await startGate(db.url);
    await b.close();
    b = await startTestServer({ databaseUrl: gate.url, models: [] });
    t.after(async () => {
      await b.close();
      await gate.close();
    });
    assert.equal(serving(b), '1.0.0');
    gate.refuse(true);
    const { rows } = await admin.query<{ killed: boolean }>(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND client_port = ANY($2::int[])',
      [listenerApplicationName, gate.upstreamPorts()],
    );
    assert.deepEqual(rows, [{ killed: true }], "B's one listening session");
    await mutate(a, `mutation { loadModel(model: "${model}", version: "2.0.0") { version } }`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(serving(b), '1.0.0', 'B did not hear of the change while its listener was down');
    gate.refuse(false);
    const opened = performance.now();
    // Well within the periodic check (30 s): the reconnect itself brings B up to date.
    await until(b, '2.0.0', 'B after its listener came back', 8_000);
    propagation.afterReconnect = performance.now() - opened;
  });
});
