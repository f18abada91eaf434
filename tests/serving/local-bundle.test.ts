// Where a version's files are on this host: its own folder while that is intact, else a cache folder filled from
// the registry's blobs, every file checked by sha256 (a corrupt or partial cached file is fetched again), and a
// clear refusal when neither the folder nor the blobs are there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importBundle } from '../../src/registry/bundle-import.js';
import { migrateDatabase, openDatabase, type RegistryDatabase } from '../../src/registry/database.js';
import { LocalBundles } from '../../src/serving/local-bundle.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';

let db: RegistryDatabase;
before(async () => {
  db = await openDatabase({ dataDir: tempDir() });
  await migrateDatabase(db);
});
after(() => db.close());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const bundleFiles = ['bundle.json', 'backbone.onnx', 'tokenizer.json', 'heads/sentiment.onnx', 'heads/entities.onnx'];

async function registered(name: string) {
  const source = writeFixtureBundle(tempDir(), { name });
  const { versionId } = await importBundle(db.prisma, source);
  const version = await db.prisma.modelVersion.findUniqueOrThrow({ where: { id: versionId } });
  // What the source folder held, kept to compare with: the folder itself goes away in most tests.
  const original = Object.fromEntries(bundleFiles.map((f) => [f, readFileSync(join(source, f))]));
  return { source, version, original };
}

function assertSameFiles(dir: string, original: Record<string, Buffer>) {
  for (const [file, bytes] of Object.entries(original)) assert.ok(readFileSync(join(dir, file)).equals(bytes), `${file} as registered`);
}

test('an intact bundle folder is used as it is, and nothing is cached', async () => {
  const cache = tempDir();
  const bundles = new LocalBundles(db.prisma, cache);
  const { source, version } = await registered('intact');
  assert.equal(await bundles.folderOf(await bundles.filesOf(version)), source);
  assert.deepEqual(readdirSync(cache), []);
});

test('a folder that is gone or changed is rebuilt from the registry in the cache, each content stored once', async () => {
  const cache = tempDir();
  const bundles = new LocalBundles(db.prisma, cache);
  const { source, version, original } = await registered('moved');
  rmSync(source, { recursive: true });
  const dir = await bundles.folderOf(await bundles.filesOf(version));
  assert.ok(dir.startsWith(join(cache, 'bundles')));
  assertSameFiles(dir, original);
  assert.equal(readdirSync(join(cache, 'blobs')).length, 5);
  // The files are links to the blobs, not copies.
  assert.equal(statSync(join(dir, 'backbone.onnx')).ino, statSync(join(cache, 'blobs', sha256(join(dir, 'backbone.onnx')))).ino);
  assert.equal(await bundles.folderOf(await bundles.filesOf(version)), dir, 'the same folder next time');

  const changed = await registered('changed-here');
  writeFileSync(join(changed.source, 'heads', 'sentiment.onnx'), 'edited after registration');
  const rebuilt = await bundles.folderOf(await bundles.filesOf(changed.version));
  assert.notEqual(rebuilt, changed.source);
  assertSameFiles(rebuilt, changed.original);
});

test('a corrupt or replaced cached file is fetched again; a dead process\'s temporary file is removed', async () => {
  const cache = tempDir();
  const { source, version, original } = await registered('repaired');
  rmSync(source, { recursive: true });
  const dir = await new LocalBundles(db.prisma, cache).folderOf(await new LocalBundles(db.prisma, cache).filesOf(version));
  const backboneBlob = join(cache, 'blobs', sha256(join(dir, 'backbone.onnx')));
  writeFileSync(backboneBlob, 'flipped bits'); // in place: the linked bundle file is corrupt too
  rmSync(join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'tokenizer.json'), '{"model":"someone else\'s"}'); // a different file under the name
  const stale = join(cache, 'blobs', `${sha256(join(dir, 'bundle.json'))}.0a1b2c3d.tmp-999999999`);
  writeFileSync(stale, 'half a fetch');

  const bundles = new LocalBundles(db.prisma, cache);
  assert.equal(await bundles.folderOf(await bundles.filesOf(version)), dir);
  assertSameFiles(dir, original);
  assert.ok(readFileSync(backboneBlob).equals(original['backbone.onnx']!));
  assert.equal(existsSync(stale), false);
});

test('neither the folder nor the blobs: a refusal that says what is missing', async () => {
  const bundles = new LocalBundles(db.prisma, tempDir());
  const { source, version } = await registered('old-style');
  rmSync(source, { recursive: true });
  // As a version registered before files were kept in the registry (its bundle.json is its own; other files are shared).
  await db.prisma.blob.delete({ where: { sha256: version.manifestSha256 } });
  await assert.rejects(
    bundles.folderOf(await bundles.filesOf(version)),
    /the folder it was registered from is not on this host\) and the registry holds no copy of bundle\.json \(a version registered before/,
  );
});

test('files another version already has in an intact folder on this host are copied from there, not fetched', async () => {
  const cache = tempDir();
  const bundles = new LocalBundles(db.prisma, cache);
  const parent = await registered('shared-parent');
  // Served from its own folder: this host now knows where its backbone's content is.
  assert.equal(await bundles.folderOf(await bundles.filesOf(parent.version)), parent.source);
  const child = await registered('shared-child'); // the same fixture backbone, tokenizer and heads
  rmSync(child.source, { recursive: true });
  // The registry can no longer give the backbone's bytes: only the copy on this host can.
  const backbone = (await db.prisma.bundleFile.findFirstOrThrow({ where: { versionId: child.version.id, path: 'backbone.onnx' } })).sha256;
  const chunks = await db.prisma.blobChunk.findMany({ where: { sha256: backbone } });
  await db.prisma.blobChunk.deleteMany({ where: { sha256: backbone } });
  try {
    const dir = await bundles.folderOf(await bundles.filesOf(child.version));
    assertSameFiles(dir, child.original);
  } finally {
    await db.prisma.blobChunk.createMany({ data: chunks });
  }
});
