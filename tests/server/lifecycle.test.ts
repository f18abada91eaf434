// The server and CLI as users run them: start, probes, `polyhead import`, restart, SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { sharedBundleDir } from '../helpers/server.js';
import { runCli, spawnServer } from '../helpers/process.js';

const browse = '{ model(name: "cli-imported") { name versions { version heads { name } backbone { name } } } }';

async function gql(url: string, query: string) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  return (await response.json()) as { data?: any; errors?: any[] };
}

test('embedded database: probes answer, a CLI import survives a restart, SIGTERM drains and exits 0', async (t) => {
  const env = { POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_API_KEY: 'k', POLYHEAD_BUNDLE_ROOTS: tmpdir(), POLYHEAD_BUNDLE_DIR: sharedBundleDir };
  const bundle = writeFixtureBundle(tempDir(), { name: 'cli-imported' });

  const imported = runCli(['import', bundle], env);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, /registered: cli-imported 1\.0\.0/);

  const first = await spawnServer(env);
  t.after(() => first.child.kill('SIGKILL'));
  const base = first.url.replace(/\/graphql$/, '');
  assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as any).checks.migrations, true);
  assert.equal((await gql(first.url, browse)).data.model.versions[0].backbone.name, 'tiny-encoder');

  // While the server holds the embedded database, the CLI refuses to open it and says what to do.
  const locked = runCli(['import', bundle], env);
  assert.equal(locked.status, 1);
  assert.match(locked.stderr, /in use by process \d+.*--server/);
  const viaServer = runCli(['import', bundle, '--server', first.url, '--api-key', 'k'], env);
  assert.equal(viaServer.status, 0, viaServer.stderr);
  assert.match(viaServer.stdout, /already registered: cli-imported 1\.0\.0/);

  assert.equal(await first.stop('SIGTERM'), 0);
  assert.match(first.output(), /polyhead stopped on SIGTERM/);
  assert.equal(first.output().trim().split('\n').length, 2, `one line at start, one at stop:\n${first.output()}`);
  assert.match(first.output(), /ready at http:\/\/\S+ in \d+ ms \(database: pglite, device: cpu/);

  const second = await spawnServer(env);
  t.after(() => second.child.kill('SIGKILL'));
  assert.equal((await gql(second.url, browse)).data.model.versions[0].heads.length, 3, 'the registry survived the restart');
  assert.equal(await second.stop('SIGTERM'), 0);
});

test('a bad bundle through the CLI prints every problem and exits 1', () => {
  const bundle = writeFixtureBundle(tempDir(), { edit: (m) => ((m.backbone.hiddenSize = 0), (m.heads[0].reads = 'sideways')) });
  const result = runCli(['import', bundle], { POLYHEAD_DATA_DIR: tempDir() });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /BUNDLE_INVALID/);
  assert.match(result.stderr, /backbone\.hiddenSize/);
  assert.match(result.stderr, /heads\.0\.reads/);
});
