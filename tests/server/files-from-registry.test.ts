// Two servers on one PostgreSQL registry, each with its own data, bundle and cache folders: a model imported on A
// and a head trained on B are served by the other, whose bundle folder it cannot see, from the files the registry
// holds (fetched into its cache and checked by sha256). No file is copied by hand.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHfFixture } from '../helpers/hf-fixtures.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { topicExamples } from '../helpers/topic-examples.js';

const model = 'shared-st';
const texts = ['The striker scored twice.', 'Whisk the eggs with sugar.', 'Rain all week.'];
const importMutation = 'mutation($p: String!, $n: String, $v: String) { importHuggingFace(path: $p, name: $n, version: $v) { created version { version } } }';
const loadMutation = 'mutation($m: String!, $v: String) { loadModel(model: $m, version: $v) { version heads } }';

/** Makes a folder invisible to every server (as another host's disk is): the registry still names it. */
function hide(folder: string) {
  renameSync(folder, `${folder}.elsewhere`);
}

async function versionFolder(server: TestServer, version: string): Promise<string> {
  const row = await server.db.prisma.modelVersion.findFirstOrThrow({ where: { version, model: { name: model } } });
  return row.bundlePath;
}

describe('bundle files from the registry', { skip: skipWithoutPostgres }, () => {
  let scratch: ScratchDatabase;
  let a: TestServer;
  let b: TestServer;
  let fixture: string;
  let trained: string;
  before(async () => {
    scratch = await createScratchDatabase();
    const replica = () => startTestServer({ databaseUrl: scratch.url, models: [], bundleDir: tempDir('polyhead-bundles-') });
    a = await replica();
    b = await replica();
    fixture = join(tempDir(), 'minilm-st');
    await writeHfFixture('minilm-st', fixture);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await scratch?.drop();
  });

  test('a model imported on A is loaded by B from the registry and answers exactly as on A', async () => {
    const imported = await a.admin(importMutation, { p: fixture, n: model });
    assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
    assert.equal((await a.admin(loadMutation, { m: model })).errors, undefined);
    const onA = await a.gql('query($t: [String!]!, $m: String) { embed(texts: $t, model: $m) }', { t: texts, m: model });
    hide(await versionFolder(a, '1.0.0'));

    const loaded = await b.admin(loadMutation, { m: model });
    assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
    const onB = await b.gql('query($t: [String!]!, $m: String) { embed(texts: $t, model: $m) }', { t: texts, m: model });
    assert.deepEqual(onB.data.embed, onA.data.embed);
    assert.equal(readdirSync(join(b.config.cacheDir, 'bundles')).length, 1, 'B built the bundle in its cache');
    assert.equal(existsSync(a.config.cacheDir), false, 'A used its own folder');
  });

  test('a head trained on B (its parent from the cache) is served by A from the registry', async () => {
    const started = await b.admin(
      'mutation($m: String!, $e: [TrainingExampleInput!]) { trainHead(model: $m, head: "topic", task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }',
      { m: model, e: topicExamples },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    let job: any;
    for (const until = Date.now() + 180_000; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 300))) {
      job = (await b.gql('query($id: ID!) { trainingJob(id: $id) { status error version } }', { id: started.data.trainHead.id })).data.trainingJob;
      if (job.status === 'SUCCEEDED' || job.status === 'FAILED') break;
    }
    assert.equal(job.status, 'SUCCEEDED', job.error);
    trained = job.version;
    const folder = await versionFolder(b, trained);
    assert.ok(folder.startsWith(b.config.bundleDir), 'written to B\'s bundle folder');
    // The parent's weights were linked from B's cache, where B loaded the parent from.
    const weights = statSync(join(folder, 'onnx', 'model.onnx')).ino;
    assert.ok(readdirSync(join(b.config.cacheDir, 'blobs')).some((blob) => statSync(join(b.config.cacheDir, 'blobs', blob)).ino === weights));
    const onB = await b.gql('query($t: [String!]!, $m: String) { analyze(texts: $t, model: $m) { classify(head: "topic") { label score } } }', { t: texts, m: model });
    hide(folder);

    const loaded = await a.admin(loadMutation, { m: model, v: trained });
    assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
    assert.ok(loaded.data.loadModel.heads.includes('topic'));
    const onA = await a.gql('query($t: [String!]!, $m: String) { analyze(texts: $t, model: $m) { classify(head: "topic") { label score } } }', { t: texts, m: model });
    assert.deepEqual(onA.data, onB.data);
  });

  test('a version with neither its folder nor its files in the registry fails to load; the served version keeps serving', async () => {
    const imported = await a.admin(importMutation, { p: fixture, n: model, v: '2.0.0' });
    assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
    const row = await a.db.prisma.modelVersion.findFirstOrThrow({ where: { version: '2.0.0', model: { name: model } } });
    hide(row.bundlePath);
    // As a version registered before files were kept in the registry: its bundle.json is its own blob.
    await a.db.prisma.blob.delete({ where: { sha256: row.manifestSha256 } });

    const failed = await b.admin(loadMutation, { m: model, v: '2.0.0' });
    assert.equal(failed.errors?.[0]?.extensions?.code, 'MODEL_LOAD_FAILED');
    assert.match(failed.errors![0]!.message, /could not load shared-st 2\.0\.0: .*not on this host.*holds no copy of bundle\.json/);
    const served = await b.gql('{ server { loadedModels { name version } } }');
    assert.deepEqual(served.data.server.loadedModels.find((m: { name: string }) => m.name === model), { name: model, version: trained });
    const answered = await b.gql('query($m: String) { embed(texts: ["still here"], model: $m) }', { m: model });
    assert.equal(answered.errors, undefined);
  });
});
