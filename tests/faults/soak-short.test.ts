// The short soak of the suite (bench/soak.ts is the full one): 32 clients for 25 s of mixed traffic against
// the built server process and PostgreSQL (the embedded database when POLYHEAD_TEST_DATABASE_URL is unset
// outside CI). No unexpected error may appear; OVERLOADED would be counted apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers/bundle-fixture.js';
import { createScratchDatabase, postgresUrl, skipWithoutPostgres } from '../helpers/postgres.js';
import { spawnServer } from '../helpers/process.js';
import { sharedBundleDir } from '../helpers/server.js';
import { formatSoak, rssReader, runSoak } from '../helpers/soak.js';

test('short soak: mixed traffic from 32 clients for 25 s, zero unexpected errors', { timeout: 180_000 }, async (t) => {
  const scratch = postgresUrl || !skipWithoutPostgres ? await createScratchDatabase() : undefined;
  t.after(() => scratch?.drop());
  const server = await spawnServer({ POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_BUNDLE_DIR: sharedBundleDir, ...(scratch ? { DATABASE_URL: scratch.url } : {}) });
  t.after(() => server.child.kill('SIGKILL'));
  const result = await runSoak({
    url: server.url,
    clients: 32,
    durationMs: 25_000,
    warmupMs: 8_000,
    sampleEveryMs: 1_000,
    rss: rssReader(server.child.pid, server.url.replace(/\/graphql$/, '/metrics')),
  });
  console.log(`soak (${scratch ? 'PostgreSQL' : 'embedded database'}):\n${formatSoak(result)}`);
  assert.equal(result.unexpected, 0, result.unexpectedSamples.join('\n'));
  assert.ok(result.ok > 100, `only ${result.ok} requests succeeded`);
  assert.ok(result.expectedErrors > 0, 'no deliberately bad request was sent');
  for (const kind of ['analyze', 'sentiment', 'entities', 'embed', 'similarity', 'registry', 'bad']) assert.ok(result.byKind[kind]?.requests, `no ${kind} request was sent`);
  assert.equal(server.child.exitCode, null, 'the server died');
  assert.equal(await server.stop('SIGTERM'), 0);
});
