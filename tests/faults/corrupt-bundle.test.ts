// A corrupt ONNX file, tokenizer or manifest is refused with a clear, typed error, and the version that was
// serving keeps serving. Corruption before registration: the registry then holds the bad bytes and the engine
// must refuse them. Corruption after it: the files on disk no longer match the registry, so they are not used;
// the version is loaded from the registry's own copy of its files (stored by content) instead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let version = 1;

before(async () => {
  server = await startTestServer({ models: [] });
  assert.equal((await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: await writeHeadsBundle() })).errors, undefined);
  assert.equal((await server.admin('mutation { loadModel(model: "multi") { version } }')).errors, undefined);
});
after(() => server.close());

const importMutation = 'mutation($path: String!) { importBundle(path: $path) { created } }';

/** The version serving before still serves, with the same answers. */
async function assertStillServing() {
  const answer = await server.gql('{ server { loadedModels { name version } } sentiment(texts: ["still serving"], model: "multi") { label } analyze(texts: ["Ann met Bob in Rome."], model: "multi") { entities { label } classify(head: "topic") { label } } }');
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  assert.deepEqual(answer.data.server.loadedModels, [{ name: 'multi', version: '1.0.0' }]);
  assert.ok(answer.data.sentiment[0].label);
}

/** The version just loaded answers as the intact 1.0.0 does (its registered files, not the changed ones), then 1.0.0 is loaded back. */
async function assertServedFromRegistry(result: { stage: string; error?: { message: string }; data?: any }) {
  assert.equal(result.stage, 'load');
  assert.equal(result.error, undefined, result.error?.message);
  const probe = '{ sentiment(texts: ["still serving", "a dreadful, boring film"], model: "multi") { label score } }';
  const fromRegistry = await server.gql(probe);
  assert.equal((await server.admin('mutation { loadModel(model: "multi", version: "1.0.0") { version } }')).errors, undefined);
  assert.deepEqual(fromRegistry.data, (await server.gql(probe)).data);
}

function assertClear(error: { message: string; extensions?: Record<string, any> } | undefined, code: string, mentions: RegExp) {
  assert.ok(error, 'expected an error');
  if (process.env.SHOW_ERRORS) console.log(code, error.message);
  assert.equal(error.extensions?.code, code, error.message);
  assert.match(error.message, mentions);
  assert.equal(error.extensions?.stacktrace, undefined);
  assert.doesNotMatch(error.message, /\n\s+at /, 'no stack trace in the message');
  assert.ok(!error.message.includes(tmpdir()), `the server's folders stay private: ${error.message}`);
}

/** A new version of "multi" with `corrupt` applied to its folder before it is registered, then loaded. */
async function registerAndLoad(corrupt: (dir: string) => void, after?: (dir: string) => void) {
  const v = `${++version}.0.0`;
  const dir = await writeHeadsBundle({ version: v });
  // Its own backbone version, so that a changed backbone or tokenizer is not a conflict with the one registered.
  const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
  manifest.backbone.version = `${manifest.backbone.version}-test${version}`;
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest, null, 2));
  corrupt(dir);
  const imported = await server.admin(importMutation, { path: dir });
  if (imported.errors) return { stage: 'import', error: imported.errors[0] };
  after?.(dir);
  const loaded = await server.admin(`mutation { loadModel(model: "multi", version: "${v}") { version } }`);
  return { stage: 'load', error: loaded.errors?.[0], data: loaded.data };
}

const garbage = (bytes: number) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 7919 + 13) % 256));

test('a corrupt backbone (random bytes, or cut in half) is refused at load; the old version serves', async () => {
  const random = await registerAndLoad((dir) => writeFileSync(join(dir, 'backbone.onnx'), garbage(4096)));
  assert.equal(random.stage, 'load');
  assertClear(random.error, 'MODEL_LOAD_FAILED', /could not load multi|backbone/);
  await assertStillServing();
  const truncated = await registerAndLoad((dir) => truncateSync(join(dir, 'backbone.onnx'), Math.floor(statSync(join(dir, 'backbone.onnx')).size / 2)));
  assert.equal(truncated.stage, 'load');
  assertClear(truncated.error, 'MODEL_LOAD_FAILED', /multi/);
  await assertStillServing();
});

test('a corrupt head ONNX is refused at load; the old version serves', async () => {
  const result = await registerAndLoad((dir) => writeFileSync(join(dir, 'heads', 'topic.onnx'), garbage(600)));
  assertClear(result.error, 'MODEL_LOAD_FAILED', /multi/);
  await assertStillServing();
});

test('a corrupt tokenizer (broken JSON, or JSON of the wrong shape) is refused at load; the old version serves', async () => {
  const broken = await registerAndLoad((dir) => writeFileSync(join(dir, 'tokenizer.json'), '{"model": {"type": "Unigram", "vocab": [['));
  assert.equal(broken.stage, 'load');
  assertClear(broken.error, 'MODEL_LOAD_FAILED', /multi/);
  await assertStillServing();
  const wrongShape = await registerAndLoad((dir) => writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'Nonsense' } })));
  assertClear(wrongShape.error, 'MODEL_LOAD_FAILED', /multi/);
  await assertStillServing();
});

test('a corrupt manifest is refused at import when it does not parse or validate; one changed on disk after registration is not used', async () => {
  const notJson = await registerAndLoad((dir) => writeFileSync(join(dir, 'bundle.json'), '{"format": "polyhead-bundle/1", "name": '));
  assert.equal(notJson.stage, 'import');
  assertClear(notJson.error, 'BUNDLE_INVALID', /bundle/);
  const invalid = await registerAndLoad((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
    manifest.heads[0].reads = 'sideways';
    delete manifest.backbone.hiddenSize;
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest));
  });
  assert.equal(invalid.stage, 'import');
  assertClear(invalid.error, 'BUNDLE_INVALID', /hiddenSize|reads/);
  await assertStillServing();

  // Registered intact, then the manifest on disk is overwritten with garbage before the load: not used.
  await assertServedFromRegistry(
    await registerAndLoad(
      () => {},
      (dir) => writeFileSync(join(dir, 'bundle.json'), garbage(300)),
    ),
  );
  await assertStillServing();

  // Registered intact, then a head file is swapped on disk: the sha256 check sees it, the registry's copy serves.
  await assertServedFromRegistry(
    await registerAndLoad(
      () => {},
      (dir) => writeFileSync(join(dir, 'heads', 'sentiment.onnx'), readFileSync(join(dir, 'heads', 'topic.onnx'))),
    ),
  );
  await assertStillServing();
});

// A manifest edited on disk after registration (labels swapped) parses and validates: only its sha256 against
// ModelVersion.manifestSha256 tells, and then the registered manifest serves, labels in their registered order.
test('a valid manifest edited on disk after registration is not used: the registered one serves', async () => {
  const edited = await registerAndLoad(
    () => {},
    (dir) => {
      const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
      manifest.heads[0].labels = ['positive', 'negative'];
      writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest, null, 2));
    },
  );
  await assertServedFromRegistry(edited);
  await assertStillServing();
});
