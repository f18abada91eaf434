// PostgreSQL stopped in the middle of load: inference keeps answering (the engine never touches the
// database), registry fields fail with REGISTRY_UNAVAILABLE, /readyz says why while /healthz stays up, and
// everything comes back by itself when PostgreSQL returns, with no restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgresCluster, skipWithoutPostgresBinaries, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { startTestServer, testApiKey, type GraphQLResponse, type TestServer } from '../helpers/server.js';

let cluster: PostgresCluster;
let server: TestServer;
let load: ReturnType<typeof startLoad> | undefined;

before(async () => {
  if (skipWithoutPostgresBinaries) return;
  cluster = await startPostgresCluster();
  server = await startTestServer({ databaseUrl: cluster.url });
});
after(async () => {
  await load?.stop();
  await server?.close();
  await cluster?.destroy();
});

const inferenceQuery = '{ sentiment(texts: ["The film was a delight."]) { label } entities(texts: ["Ann moved to Paris."]) { label } }';
const registryQuery = '{ models(first: 5) { totalCount edges { node { name versions { version heads { name } } } } } }';

type Phase = 'up' | 'down' | 'back';
interface Outcome {
  kind: 'inference' | 'registry';
  phase: Phase;
  status: number;
  codes: string[];
}

async function probe(path: string) {
  const response = await fetch(server.url.replace('/graphql', path));
  return { status: response.status, body: (await response.json()) as any };
}

/** Clients that keep sending inference and registry requests until told to stop; every answer is kept. */
function startLoad(clients: number, phase: () => Phase) {
  const outcomes: Outcome[] = [];
  let running = true;
  const worker = async (id: number) => {
    for (let i = 0; running; i++) {
      const kind = (i + id) % 3 === 0 ? 'registry' : 'inference';
      const at = phase();
      let response: GraphQLResponse;
      try {
        response = await server.gql(kind === 'registry' ? registryQuery : inferenceQuery);
      } catch (error) {
        outcomes.push({ kind, phase: at, status: 0, codes: [`fetch failed: ${(error as Error).message}`] });
        continue;
      }
      outcomes.push({ kind, phase: at, status: response.status, codes: (response.errors ?? []).map((e) => String(e.extensions?.code)) });
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, id) => worker(id)));
  return {
    outcomes,
    async stop() {
      running = false;
      await done;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('inference keeps serving through a PostgreSQL outage; the registry reports REGISTRY_UNAVAILABLE and recovers by itself', { skip: skipWithoutPostgresBinaries, timeout: 120_000 }, async () => {
  // Inference without a key, and with the bootstrap admin key, sends no SQL at all.
  const before = server.queries.length;
  for (const headers of [{}, { authorization: `Bearer ${testApiKey}` }] as Array<Record<string, string>>) {
    const answer = await server.gql(`${inferenceQuery.slice(0, -1)} similarity(query: "cat", candidates: ["dog"]) embed(texts: ["x"]) analyze(texts: ["Bob is happy"]) { sentiment { label } } server { loadedModels { name } } }`, {}, headers);
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  }
  assert.deepEqual(server.queries.slice(before), [], 'inference sent SQL');

  let phase: Phase = 'up';
  load = startLoad(6, () => phase);
  await sleep(1_500);

  await cluster.stop();
  phase = 'down';
  await sleep(500);
  const health = await probe('/healthz');
  assert.equal(health.status, 200);
  const ready = await probe('/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.body.checks.database, /^unreachable: /);
  assert.equal(ready.body.checks.models, true);

  // models is non-null (its error would null the whole answer); model is nullable, so the rest survives.
  const mixed = await server.gql(`{ sentiment(texts: ["Still answering."]) { label } model(name: "default") { name } server { loadedModels { name } } }`);
  assert.equal(mixed.status, 200);
  assert.ok(mixed.data.sentiment[0].label, 'inference answered in the same request');
  assert.deepEqual(mixed.data.server.loadedModels, [{ name: 'default' }]);
  assert.equal(mixed.errors?.length, 1);
  assert.equal(mixed.errors![0]!.extensions?.code, 'REGISTRY_UNAVAILABLE');
  assert.deepEqual(mixed.errors![0]!.path, ['model']);
  assert.equal(mixed.data.model, null);
  assert.doesNotMatch(mixed.errors![0]!.message, /127\.0\.0\.1|:\d{4,5}\b|\/tmp|P1001/, 'the client is not told where the database lives');
  for (const query of [registryQuery, '{ datasets { name } }', '{ backbones { name heads { name } } }']) {
    assert.equal((await server.gql(query)).errors?.[0]?.extensions?.code, 'REGISTRY_UNAVAILABLE', query);
  }
  const mutation = await server.admin('mutation { setAlias(model: "default", alias: "canary", version: "1.2.0") { version } }');
  assert.equal(mutation.errors?.[0]?.extensions?.code, 'REGISTRY_UNAVAILABLE');
  await sleep(1_500);

  await cluster.start();
  phase = 'back';
  const restartedAt = Date.now();
  let recovered = false;
  while (Date.now() - restartedAt < 20_000) {
    const again = await probe('/readyz');
    if (again.status === 200) {
      recovered = true;
      break;
    }
    await sleep(200);
  }
  const recoveryMs = Date.now() - restartedAt;
  assert.ok(recovered, 'readyz did not come back within 20 s of PostgreSQL returning');
  const registry = await server.gql(registryQuery);
  assert.equal(registry.errors, undefined, JSON.stringify(registry.errors));
  assert.equal(registry.data.models.edges[0].node.name, 'default');
  assert.equal((await server.admin('mutation { setAlias(model: "default", alias: "canary", version: "1.2.0") { version } }')).errors, undefined);
  await sleep(1_000);
  await load.stop();

  const { outcomes } = load;
  load = undefined;
  const inference = outcomes.filter((o) => o.kind === 'inference');
  const failedInference = inference.filter((o) => o.status !== 200 || o.codes.length);
  assert.deepEqual(failedInference, [], 'inference failed during the outage');
  assert.ok(inference.filter((o) => o.phase === 'down').length >= 10, 'too little inference during the outage to prove anything');
  const registryDown = outcomes.filter((o) => o.kind === 'registry' && o.phase === 'down');
  assert.ok(registryDown.some((o) => o.codes.includes('REGISTRY_UNAVAILABLE')), 'no registry request saw the outage');
  const unexpected = outcomes.filter((o) => o.status !== 200 || o.codes.some((code) => code !== 'REGISTRY_UNAVAILABLE'));
  assert.deepEqual(unexpected, [], 'only REGISTRY_UNAVAILABLE may appear');
  // Once readyz is back, registry requests succeed again (a request sent just before may still have failed).
  const lastFailure = outcomes.findLastIndex((o) => o.codes.length > 0);
  assert.ok(outcomes.slice(lastFailure + 1).filter((o) => o.kind === 'registry').length > 0, 'no registry request succeeded after recovery');
  const count = (p: Phase, k: Outcome['kind']) => outcomes.filter((o) => o.phase === p && o.kind === k).length;
  console.log(
    `outage: ${outcomes.length} requests (inference up/down/back ${count('up', 'inference')}/${count('down', 'inference')}/${count('back', 'inference')}, ` +
      `registry ${count('up', 'registry')}/${count('down', 'registry')}/${count('back', 'registry')}; ` +
      `REGISTRY_UNAVAILABLE ${outcomes.filter((o) => o.codes.length).length}); ready again ${recoveryMs} ms after PostgreSQL restarted`,
  );
});
