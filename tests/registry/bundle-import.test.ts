// Bundle import: validation names the bad field, one transaction, idempotent, changed files refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolyheadError } from '../../src/errors.js';
import { importBundle } from '../../src/registry/bundle-import.js';
import { migrateDatabase, openDatabase, type RegistryDatabase } from '../../src/registry/database.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';

let db: RegistryDatabase;
before(async () => {
  db = await openDatabase({ dataDir: tempDir() });
  await migrateDatabase(db);
});
after(() => db.close());

async function rowCounts() {
  const p = db.prisma;
  return {
    models: await p.model.count(),
    versions: await p.modelVersion.count(),
    backbones: await p.backbone.count(),
    heads: await p.head.count(),
    datasets: await p.dataset.count(),
    evaluations: await p.evaluation.count(),
    files: await p.bundleFile.count(),
    labelSets: await p.labelSet.count(),
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PolyheadError, `expected a PolyheadError, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

test('a valid bundle registers model, version, backbone, heads, label sets, datasets, evaluations and lineage', async () => {
  const result = await importBundle(db.prisma, writeFixtureBundle(tempDir()));
  assert.equal(result.created, true);
  const version = await db.prisma.modelVersion.findUniqueOrThrow({
    where: { id: result.versionId },
    include: { backbone: true, files: true, heads: { include: { labelSet: true, datasets: { include: { dataset: true } }, evaluations: true } } },
  });
  assert.equal(version.backbone.name, 'tiny-encoder');
  assert.equal(version.backbone.citation, 'Nobody et al. 2026');
  assert.deepEqual(version.files.map((f) => f.path).sort(), ['backbone.onnx', 'heads/entities.onnx', 'heads/sentiment.onnx', 'tokenizer.json']);
  assert.ok(version.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256)));
  const sentiment = version.heads.find((h) => h.name === 'sentiment')!;
  assert.equal(sentiment.task, 'CLASSIFICATION');
  assert.deepEqual(sentiment.labelSet?.labels, ['negative', 'positive']);
  assert.deepEqual(sentiment.datasets.map((d) => `${d.dataset.name}:${d.role}`).sort(), ['reviews:EVALUATION', 'reviews:TRAINING']);
  assert.equal(sentiment.evaluations[0]?.value, 0.85);
  const embedding = version.heads.find((h) => h.name === 'embedding')!;
  assert.equal(embedding.file, null);
});

test('importing the same bundle again changes nothing', async () => {
  const dir = writeFixtureBundle(tempDir(), { name: 'again' });
  assert.equal((await importBundle(db.prisma, dir)).created, true);
  const before = await rowCounts();
  assert.equal((await importBundle(db.prisma, dir)).created, false);
  assert.deepEqual(await rowCounts(), before);
});

test('a changed file under an existing version is refused and names the file', async () => {
  await importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'changed' }));
  const before = await rowCounts();
  await rejectsWith(
    importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'changed', sentimentBytes: 'retrained weights' })),
    'BUNDLE_CONFLICT',
    /heads\/sentiment\.onnx has changed/,
  );
  assert.deepEqual(await rowCounts(), before);
});

test('validation errors name the bad field', async () => {
  const cases: Array<[(m: Record<string, any>) => void, RegExp]> = [
    [(m) => (m.backbone.hiddenSize = -3), /backbone\.hiddenSize/],
    [(m) => delete m.license, /license/],
    [(m) => (m.heads[0].task = 'dance'), /heads\.0\.task/],
    [(m) => (m.heads[0].labels = ['only-one']), /heads\.0\.labels: a classification head needs at least two labels/],
    [(m) => (m.heads[1].file = '../../etc/passwd'), /heads\.1\.file: a relative path inside the bundle/],
    [(m) => (m.evaluations[0].dataset = 'nowhere'), /evaluations\.0\.dataset: dataset "nowhere" is not declared/],
    [(m) => (m.name = 'Bad Name!'), /name:/],
    [(m) => (m.format = 'something-else'), /format/],
  ];
  for (const [edit, message] of cases) {
    await rejectsWith(importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'invalid', edit })), 'BUNDLE_INVALID', message);
  }
  assert.equal(await db.prisma.model.count({ where: { name: 'invalid' } }), 0);
});

test('missing files, non-JSON manifests and links out of the folder are refused', async () => {
  const missing = writeFixtureBundle(tempDir(), { name: 'missing', edit: (m) => (m.heads[0].file = 'heads/nope.onnx') });
  await rejectsWith(importBundle(db.prisma, missing), 'BUNDLE_INVALID', /heads\/nope\.onnx: no such file/);

  const broken = writeFixtureBundle(tempDir(), { name: 'broken' });
  writeFileSync(join(broken, 'bundle.json'), '{ not json');
  await rejectsWith(importBundle(db.prisma, broken), 'BUNDLE_INVALID', /not valid JSON/);

  const outside = tempDir();
  writeFileSync(join(outside, 'secret.onnx'), 'secret');
  const linked = writeFixtureBundle(tempDir(), { name: 'linked', edit: (m) => (m.heads[0].file = 'heads/link.onnx') });
  symlinkSync(join(outside, 'secret.onnx'), join(linked, 'heads', 'link.onnx'));
  await rejectsWith(importBundle(db.prisma, linked), 'BUNDLE_INVALID', /points outside the bundle folder/);

  await rejectsWith(importBundle(db.prisma, join(tempDir(), 'no-such-folder')), 'BUNDLE_INVALID', /bundle folder not found/);
});

test('a bundle that fails half-way through the transaction leaves the registry as it was', async () => {
  await importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'first' }));
  const before = await rowCounts();
  // Valid on its own, but its dataset "names" clashes with the registered one only after model, version,
  // backbone and the first dataset were written inside the transaction.
  const dir = writeFixtureBundle(tempDir(), {
    name: 'second',
    backboneVersion: '2.0.0',
    edit: (m) => {
      m.datasets[0].name = 'fresh-reviews';
      m.heads[0].datasets = [{ name: 'fresh-reviews', role: 'training' }];
      m.evaluations[0].dataset = 'fresh-reviews';
      m.datasets[1].size = 9999;
    },
  });
  await rejectsWith(importBundle(db.prisma, dir), 'BUNDLE_CONFLICT', /dataset names is already registered/);
  assert.deepEqual(await rowCounts(), before);
});

test('a parent version must exist; lineage is recorded when it does', async () => {
  await rejectsWith(
    importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'child', version: '2.0.0', parent: '1.0.0' })),
    'BUNDLE_INVALID',
    /parent: version 1\.0\.0 of model child is not registered/,
  );
  await importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'child', version: '1.0.0' }));
  const result = await importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'child', version: '2.0.0', parent: '1.0.0' }));
  const version = await db.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId }, include: { parent: true } });
  assert.equal(version.parent?.version, '1.0.0');
});
