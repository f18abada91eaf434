// A server stopped while a fine-tuning job runs in its worker thread exits cleanly (code 0) and the job registers
// nothing. (On this tiny model a worker is rarely caught inside onnxruntime at exit; the abort that a default-model
// run showed before close() waited for the worker is what bench/fine-tune-load.ts ends with: it stops the server
// mid-run.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { migrateDatabase, openDatabase } from '../../../src/registry/database.js';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { writeHfFixture } from '../../helpers/hf-fixtures.js';
import { spawnServer } from '../../helpers/process.js';
import { topicExamples } from '../../helpers/topic-examples.js';

const apiKey = 'shutdown-test-key-0123456789';

test('SIGTERM during a fine-tuning run: the worker is stopped, the process exits 0, nothing is registered', async () => {
  const dataDir = tempDir();
  const folder = join(tempDir(), 'minilm-st');
  await writeHfFixture('minilm-st', folder);
  const server = await spawnServer({ POLYHEAD_DATA_DIR: dataDir, POLYHEAD_BUNDLE_DIR: join(dataDir, 'bundles'), POLYHEAD_BUNDLE_ROOTS: folder, POLYHEAD_API_KEY: apiKey, POLYHEAD_MODELS: '' });
  const gql = async (query: string, variables: object = {}) => {
    const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ query, variables }) });
    const body = (await response.json()) as { data?: any; errors?: unknown };
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data;
  };
  const job = async (id: string) => (await gql('query($id: ID!) { trainingJob(id: $id) { status phase error } }', { id })).trainingJob;
  let stopped = false;
  try {
    await gql('mutation($p: String!) { importHuggingFace(path: $p, name: "shutdown") { created } }', { p: folder });
    await gql('mutation { loadModel(model: "shutdown") { version } }');
    const trained = await gql('mutation($e: [TrainingExampleInput!]) { trainHead(model: "shutdown", head: "topic", task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }', { e: topicExamples });
    for (let i = 0; i < 600 && (await job(trained.trainHead.id)).status !== 'SUCCEEDED'; i++) await new Promise((r) => setTimeout(r, 200));
    const dataset = `shutdown.topic.${trained.trainHead.id.slice(0, 8)}`;
    const started = await gql(`mutation { fineTuneBackbone(model: "shutdown", tasks: [{ head: "topic", dataset: "${dataset}" }], epochs: 50) { id } }`);
    const id = started.fineTuneBackbone.id;
    for (let i = 0; i < 600 && (await job(id)).phase !== 'fine-tune'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await job(id)).phase, 'fine-tune', 'the job reached its training steps');
    const code = await server.stop('SIGTERM');
    stopped = true;
    assert.equal(code, 0, server.output());
    assert.doesNotMatch(server.output(), /terminate called|Napi::Error|Aborted/);
  } finally {
    if (!stopped) await server.stop('SIGKILL');
  }
  const db = await openDatabase({ dataDir });
  try {
    await migrateDatabase(db);
    const versions = await db.prisma.modelVersion.findMany({ where: { model: { name: 'shutdown' } } });
    assert.ok(versions.every((v) => !v.version.includes('+ft.')), `no fine-tuned version: ${versions.map((v) => v.version)}`);
  } finally {
    await db.close();
  }
});
