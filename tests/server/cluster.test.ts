// POLYHEAD_WORKERS: several server processes on one port and one PostgreSQL registry, kept alike.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { createScratchDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { sharedBundleDir } from '../helpers/server.js';
import { spawnServer } from '../helpers/process.js';

const key = 'cluster-test-key';

/** A request on a connection of its own, so the cluster's primary may hand it to any server process. */
async function gql(url: string, query: string, variables: Record<string, unknown> = {}, admin = false) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close', ...(admin ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> };
}

/** What each server process reports, by pid, from new connections until `processes` pids answered. */
async function perProcess(url: string, processes: number, query: string): Promise<Map<number, any>> {
  const seen = new Map<number, any>();
  for (let i = 0; i < 50 && seen.size < processes; i++) {
    const { data } = await gql(url, query);
    seen.set(data.server.pid, data);
  }
  assert.equal(seen.size, processes, `answers came from ${seen.size} process(es), expected ${processes}`);
  return seen;
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('POLYHEAD_WORKERS', () => {
  it('refuses several server processes on the embedded database, with the reason', async () => {
    await assert.rejects(spawnServer({ POLYHEAD_WORKERS: '2', POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_BUNDLE_DIR: sharedBundleDir }), /exited with 1[\s\S]*POLYHEAD_WORKERS=2 needs DATABASE_URL/);
  });

  it('serves from two processes and keeps them alike: a model loaded or unloaded through one changes on both', { skip: skipWithoutPostgres }, async (t) => {
    const db = await createScratchDatabase();
    t.after(() => db.drop());
    const server = await spawnServer({
      POLYHEAD_WORKERS: '2',
      DATABASE_URL: db.url,
      POLYHEAD_API_KEY: key,
      POLYHEAD_DATA_DIR: tempDir(),
      POLYHEAD_BUNDLE_DIR: sharedBundleDir,
      POLYHEAD_BUNDLE_ROOTS: tmpdir(),
    });
    t.after(() => server.child.kill('SIGKILL'));
    await eventually(async () => /polyhead cluster: 2 server processes ready/.test(server.output()), 'both server processes');

    const loaded = '{ server { pid loadedModels { name version } } }';
    for (const answer of (await perProcess(server.url, 2, loaded)).values()) assert.deepEqual(answer.server.loadedModels.map((m: any) => m.name), ['default']);

    const path = await writeHeadsBundle({ name: 'shared-fixture' });
    const imported = await gql(server.url, 'mutation($path: String!) { importBundle(path: $path) { created } }', { path }, true);
    assert.equal(imported.data?.importBundle.created, true, JSON.stringify(imported.errors));
    const load = await gql(server.url, 'mutation { loadModel(model: "shared-fixture") { name version } }', {}, true);
    assert.deepEqual(load.data?.loadModel, { name: 'shared-fixture', version: '1.0.0' }, JSON.stringify(load.errors));
    await eventually(async () => [...(await perProcess(server.url, 2, loaded)).values()].every((a) => a.server.loadedModels.some((m: any) => m.name === 'shared-fixture')), 'the load on both processes');

    for (const answer of (await perProcess(server.url, 2, '{ server { pid } analyze(texts: ["A wonderful, moving film."], model: "shared-fixture") { classify(head: "topic") { label } } }')).values()) {
      assert.ok(['sports', 'business', 'science'].includes(answer.analyze[0].classify.label), 'each process serves the model loaded through the other');
    }

    const unload = await gql(server.url, 'mutation { unloadModel(model: "shared-fixture") }', {}, true);
    assert.equal(unload.data?.unloadModel, true);
    await eventually(async () => [...(await perProcess(server.url, 2, loaded)).values()].every((a) => !a.server.loadedModels.some((m: any) => m.name === 'shared-fixture')), 'the unload on both processes');

    // Training jobs are registry records: any process answers, and an unknown one is missing on every process.
    const missing = await gql(server.url, '{ trainingJob(id: "no-such-job") { status } }');
    assert.equal(missing.data?.trainingJob, null);

    assert.equal(await server.stop('SIGTERM'), 0, server.output());
  });
});
