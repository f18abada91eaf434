// kill -9 in the middle of a bundle import and of a training job, on the built server with its embedded
// database: the server starts again (the dead process's pglite.lock does not stop it), the registry holds
// no half-registered version (every version has all its files and heads; a dataset's examples are all there
// or none), and no bundle folder under its final name is partial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultBundle } from '../../src/bundle/default-bundle.js';
import { sha256File } from '../../src/bundle/files.js';
import { manifestFiles, parseBundleManifest } from '../../src/bundle/manifest.js';
import { openDatabase } from '../../src/registry/database.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { sharedBundleDir } from '../helpers/server.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import { topicExamples } from '../helpers/topic-examples.js';

const apiKey = 'sigkill-test-key';

async function gql(server: ServerProcess, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: any }> };
}

async function kill9(server: ServerProcess) {
  await server.stop('SIGKILL');
}

/** Every version in the registry is whole, and matches its folder on disk; every stored dataset is whole. */
async function assertRegistryConsistent(dataDir: string): Promise<{ versions: string[]; paths: string[]; datasetsWithExamples: number }> {
  const db = await openDatabase({ dataDir });
  try {
    const versions = await db.prisma.modelVersion.findMany({ include: { files: true, heads: true, model: true } });
    for (const version of versions) {
      const label = `${version.model.name} ${version.version}`;
      const manifest = parseBundleManifest(readFileSync(join(version.bundlePath, 'bundle.json'), 'utf8'));
      assert.equal(manifest.version, version.version, label);
      assert.deepEqual(version.files.map((f) => f.path).sort(), manifestFiles(manifest).sort(), `${label}: registered files`);
      assert.deepEqual(version.heads.map((h) => h.name).sort(), manifest.heads.map((h) => h.name).sort(), `${label}: registered heads`);
      for (const file of version.files) assert.equal(await sha256File(join(version.bundlePath, file.path)), file.sha256, `${label}: ${file.path} on disk`);
    }
    const datasets = await db.prisma.dataset.findMany({ include: { _count: { select: { examples: true } } } });
    const stored = datasets.filter((d) => d._count.examples > 0);
    for (const dataset of stored) assert.equal(dataset._count.examples, dataset.size, `dataset ${dataset.name}: all its examples or none`);
    return { versions: versions.map((v) => `${v.model.name} ${v.version}`), paths: versions.map((v) => v.bundlePath), datasetsWithExamples: stored.length };
  } finally {
    await db.close();
  }
}

/** Folders under their final name are complete bundles; returns the temporaries a killed process left. */
function assertNoPartialBundles(bundleDir: string): string[] {
  const leftovers: string[] = [];
  for (const entry of readdirSync(bundleDir)) {
    if (/\.tmp(?:-\d+)?$|\.\d+\.tmp$/.test(entry)) {
      leftovers.push(entry);
      continue;
    }
    const dir = join(bundleDir, entry);
    const manifest = parseBundleManifest(readFileSync(join(dir, 'bundle.json'), 'utf8'));
    for (const file of manifestFiles(manifest)) assert.ok(existsSync(join(dir, file)), `${entry}/${file} is missing`);
  }
  return leftovers;
}

/** A bundle folder with the built default model, so the server does not convert it again. */
async function bundleDirWithDefault(): Promise<string> {
  const source = await ensureDefaultBundle(sharedBundleDir);
  const dir = tempDir('polyhead-bundles-');
  const target = join(dir, source.split('/').at(-1)!);
  mkdirSync(join(target, 'heads'), { recursive: true });
  for (const file of ['bundle.json', 'backbone.onnx', 'tokenizer.json', ...readdirSync(join(source, 'heads')).map((h) => `heads/${h}`)]) {
    copyFileSync(join(source, file), join(target, file));
  }
  return dir;
}

/** A registry-only bundle with many heads, files, datasets and evaluations: its import is one long transaction. */
const bigHeads = 400;

function bigBundle(version: string, heads = bigHeads): string {
  const dir = tempDir('polyhead-big-');
  mkdirSync(join(dir, 'heads'), { recursive: true });
  const list = Array.from({ length: heads }, (_, i) => {
    writeFileSync(join(dir, 'heads', `h${i}.onnx`), `head ${i} of ${version}`);
    return { name: `h${i}`, task: 'classification', file: `heads/h${i}.onnx`, labels: ['no', `yes${i % 50}`], reads: 'pooled', datasets: [{ name: `big-data-${i % 100}`, role: 'training' }] };
  });
  return writeFixtureBundle(dir, {
    name: 'big',
    version,
    heads: list,
    edit: (m) => {
      m.datasets = Array.from({ length: 100 }, (_, i) => ({ name: `big-data-${i}`, source: 'generated', license: 'CC0-1.0', size: 10, splits: { train: 10 } }));
      m.evaluations = list.map((h, i) => ({ head: h.name, dataset: `big-data-${i % 100}`, split: 'train', metric: 'accuracy', value: 0.5, samples: 10 }));
    },
  });
}

const importMutation = 'mutation($path: String!) { importBundle(path: $path) { created version { version } } }';

test('SIGKILL during importBundle: the server restarts and the version is all there or not there', { timeout: 300_000 }, async (t) => {
  const dataDir = tempDir();
  const env = { POLYHEAD_DATA_DIR: dataDir, POLYHEAD_BUNDLE_DIR: await bundleDirWithDefault(), POLYHEAD_BUNDLE_ROOTS: tmpdir(), POLYHEAD_API_KEY: apiKey, POLYHEAD_MODELS: '' };
  let server = await spawnServer(env);
  t.after(() => server.child.kill('SIGKILL'));

  // How long one import takes here, to kill the next ones part-way.
  const started = Date.now();
  const whole = await gql(server, importMutation, { path: bigBundle('0.0.1') });
  assert.equal(whole.errors, undefined, JSON.stringify(whole.errors));
  const importMs = Date.now() - started;

  const outcomes: string[] = [];
  for (const [i, share] of [0.2, 0.5, 0.8].entries()) {
    const version = `1.0.${i}`;
    const path = bigBundle(version);
    const pending = gql(server, importMutation, { path }).then(
      () => 'answered',
      () => 'cut off',
    );
    await new Promise((resolve) => setTimeout(resolve, Math.round(importMs * share)));
    await kill9(server);
    const answer = await pending;
    server = await spawnServer(env); // reopens the embedded database left by a killed process
    const listed = await gql(server, '{ model(name: "big") { versions { version files { path } heads { name } } } }');
    assert.equal(listed.errors, undefined, JSON.stringify(listed.errors));
    const found = listed.data.model.versions.find((v: any) => v.version === version);
    if (found) {
      assert.equal(found.heads.length, bigHeads);
      assert.equal(found.files.length, bigHeads + 2);
    }
    outcomes.push(`killed at ${Math.round(importMs * share)} ms: ${answer}, version ${found ? 'registered whole' : 'absent'}`);
    // The same import again works: nothing half-done is in its way.
    const again = await gql(server, importMutation, { path });
    assert.equal(again.errors, undefined, JSON.stringify(again.errors));
    assert.equal(again.data.importBundle.created, !found);
  }
  assert.equal(await server.stop('SIGTERM'), 0);
  const registry = await assertRegistryConsistent(dataDir);
  assert.equal(registry.versions.length, 4);
  console.log(`import kill: one import takes ${importMs} ms; ${outcomes.join('; ')}`);
});

const examples = topicExamples;
const trainMutation = `mutation($h: String!, $e: [TrainingExampleInput!]) {
  trainHead(model: "default", head: $h, task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }`;

async function jobState(server: ServerProcess, id: string) {
  return (await gql(server, 'query($id: ID!) { trainingJob(id: $id) { status phase error version } }', { id })).data.trainingJob;
}

test('SIGKILL during trainHead: the server restarts, the registry and the bundle folder hold no half-written version', { timeout: 400_000 }, async (t) => {
  const dataDir = tempDir();
  const bundleDir = await bundleDirWithDefault();
  const env = { POLYHEAD_DATA_DIR: dataDir, POLYHEAD_BUNDLE_DIR: bundleDir, POLYHEAD_API_KEY: apiKey };
  let server = await spawnServer(env);
  t.after(() => server.child.kill('SIGKILL'));

  const outcomes: string[] = [];
  let leftovers: string[] = [];
  // Killed while training, then as soon as the job reaches its last phases (writing and registering the bundle).
  for (const [round, killAt] of [['topic-a', /training/], ['topic-b', /evaluation|export|done/]] as const) {
    const started = await gql(server, trainMutation, { h: round, e: examples });
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const id = started.data.trainHead.id;
    let state = await jobState(server, id);
    while (!killAt.test(state.phase) && state.status !== 'FAILED') state = await jobState(server, id);
    assert.notEqual(state.status, 'FAILED', state.error);
    await kill9(server);
    server = await spawnServer(env);
    const served = await gql(server, '{ server { loadedModels { name version heads } } model(name: "default") { versions { version heads { name } } } }');
    assert.equal(served.errors, undefined, JSON.stringify(served.errors));
    const registered = served.data.model.versions.filter((v: any) => v.heads.some((h: any) => h.name === round));
    outcomes.push(`killed in phase ${state.phase}: ${registered.length ? `version ${registered[0].version} registered whole` : 'no version registered'}`);
    leftovers = assertNoPartialBundles(bundleDir);
    await assertRegistryConsistentWhileServing(server);
  }

  // The restarted server trains to the end: nothing the killed jobs left is in its way.
  const finished = await gql(server, trainMutation, { h: 'topic-c', e: examples });
  assert.equal(finished.errors, undefined, JSON.stringify(finished.errors));
  let state = await jobState(server, finished.data.trainHead.id);
  while (state.status !== 'SUCCEEDED' && state.status !== 'FAILED') {
    await new Promise((resolve) => setTimeout(resolve, 200));
    state = await jobState(server, finished.data.trainHead.id);
  }
  assert.equal(state.status, 'SUCCEEDED', state.error);
  const classified = await gql(server, '{ analyze(texts: ["The striker scored in the final."]) { classify(head: "topic-c") { label } } }');
  assert.equal(classified.errors, undefined, JSON.stringify(classified.errors));
  assert.equal(await server.stop('SIGTERM'), 0);

  const registry = await assertRegistryConsistent(dataDir);
  const after = assertNoPartialBundles(bundleDir);
  const orphans = readdirSync(bundleDir).filter((entry) => !after.includes(entry) && !registry.paths.some((p) => p.endsWith(`/${entry}`)));
  console.log(`training kill: ${outcomes.join('; ')}; registry ${registry.versions.join(', ')}; temporaries left by killed jobs: ${leftovers.join(', ') || 'none'}; after the next job: ${after.join(', ') || 'none'}; complete folders the registry does not know: ${orphans.join(', ') || 'none'}`);
});

/** A light check over GraphQL while the server holds the embedded database. */
async function assertRegistryConsistentWhileServing(server: ServerProcess) {
  const listed = await gql(server, '{ models(first: 50) { edges { node { name versions { version files { path } heads { name file } } } } } }');
  assert.equal(listed.errors, undefined, JSON.stringify(listed.errors));
  for (const { node } of listed.data.models.edges) {
    for (const version of node.versions) {
      const headFiles = version.heads.filter((h: any) => h.file).map((h: any) => h.file);
      for (const file of headFiles) assert.ok(version.files.some((f: any) => f.path === file), `${node.name} ${version.version}: head file ${file} not registered`);
    }
  }
}
