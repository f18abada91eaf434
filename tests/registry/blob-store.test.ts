// Files by content in the registry, on embedded PGlite and on real PostgreSQL: a round trip of a file of several
// chunks, storing twice writes nothing, a changed or corrupted blob is refused, never renamed into place, and a
// registered bundle has all its files and its bundle.json stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobCorruptError, BlobMissingError, blobChunkBytes, missingBlobs, readBlobToFile, storeBlob } from '../../src/registry/blob-store.js';
import { importBundle } from '../../src/registry/bundle-import.js';
import { migrateDatabase, openDatabase, type RegistryDatabase } from '../../src/registry/database.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const chunk = 64 * 1024; // small chunks keep the test quick; the code path is the one the 4 MiB default takes

function writeRandomFile(size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const path = join(tempDir('polyhead-blob-'), 'file.bin');
  writeFileSync(path, bytes);
  return { path, bytes };
}

for (const kind of ['pglite', 'postgresql'] as const) {
  describe(`blob store on ${kind}`, { skip: kind === 'postgresql' && skipWithoutPostgres }, () => {
    let db: RegistryDatabase;
    let scratch: ScratchDatabase | undefined;
    before(async () => {
      scratch = kind === 'postgresql' ? await createScratchDatabase() : undefined;
      db = await openDatabase({ url: scratch?.url, dataDir: tempDir() });
      await migrateDatabase(db);
    });
    after(async () => {
      await db.close();
      await scratch?.drop();
    });

    test('a file of several chunks comes back byte for byte, stored in chunks of the stated size', async () => {
      const { path, bytes } = writeRandomFile(5 * chunk + 1234);
      const stored = await storeBlob(db.prisma, path, undefined, chunk);
      assert.deepEqual(stored, { sha256: sha256(bytes), sizeBytes: bytes.length, created: true });
      const rows = await db.prisma.blobChunk.findMany({ where: { sha256: stored.sha256 }, orderBy: { index: 'asc' } });
      assert.deepEqual(rows.map((r) => r.data.length), [chunk, chunk, chunk, chunk, chunk, 1234]);
      const blob = await db.prisma.blob.findUniqueOrThrow({ where: { sha256: stored.sha256 } });
      assert.equal(blob.sizeBytes, BigInt(bytes.length));
      assert.equal(blob.chunkSize, chunk);

      const target = join(tempDir(), 'back.bin');
      await readBlobToFile(db.prisma, stored.sha256, target);
      assert.ok(readFileSync(target).equals(bytes));
      assert.deepEqual(readdirSync(join(target, '..')), ['back.bin'], 'no temporary file is left');
    });

    test('an empty file and one of exactly two chunks round-trip too', async () => {
      for (const size of [0, 2 * chunk]) {
        const { path, bytes } = writeRandomFile(size);
        const stored = await storeBlob(db.prisma, path, sha256(bytes), chunk);
        assert.equal(await db.prisma.blobChunk.count({ where: { sha256: stored.sha256 } }), size / chunk);
        const target = join(tempDir(), 'back.bin');
        await readBlobToFile(db.prisma, stored.sha256, target);
        assert.ok(readFileSync(target).equals(bytes));
      }
    });

    test('storing the same content again writes nothing, also from another path and at the same time', async () => {
      const { path, bytes } = writeRandomFile(3 * chunk);
      const copy = join(tempDir(), 'copy.bin');
      writeFileSync(copy, bytes);
      const [first, second] = await Promise.all([storeBlob(db.prisma, path, undefined, chunk), storeBlob(db.prisma, copy, undefined, chunk)]);
      assert.deepEqual([first.created, second.created].sort(), [false, true], 'one of two concurrent stores writes');
      const again = await storeBlob(db.prisma, path, undefined, chunk);
      assert.equal(again.created, false);
      assert.equal(await db.prisma.blob.count({ where: { sha256: sha256(bytes) } }), 1);
      assert.equal(await db.prisma.blobChunk.count({ where: { sha256: sha256(bytes) } }), 3);
    });

    test('a file that is not the content its hash says is refused and leaves no blob', async () => {
      const { path } = writeRandomFile(2 * chunk + 5);
      const claimed = sha256(Buffer.from('something else'));
      await assert.rejects(storeBlob(db.prisma, path, claimed, chunk), BlobCorruptError);
      assert.equal(await db.prisma.blob.count({ where: { sha256: claimed } }), 0);
      assert.equal(await db.prisma.blobChunk.count({ where: { sha256: claimed } }), 0);
    });

    test('a blob corrupted in the database, or one the registry lacks, is never written to its target', async () => {
      const { path } = writeRandomFile(2 * chunk + 7);
      const { sha256: sha } = await storeBlob(db.prisma, path, undefined, chunk);
      await db.prisma.blobChunk.update({ where: { sha256_index: { sha256: sha, index: 1 } }, data: { data: randomBytes(chunk) } });
      const dir = tempDir();
      await assert.rejects(readBlobToFile(db.prisma, sha, join(dir, 'back.bin')), BlobCorruptError);
      await db.prisma.blobChunk.delete({ where: { sha256_index: { sha256: sha, index: 1 } } });
      await assert.rejects(readBlobToFile(db.prisma, sha, join(dir, 'back.bin')), /lacks chunk 1 of 3/);
      await assert.rejects(readBlobToFile(db.prisma, '0'.repeat(64), join(dir, 'back.bin')), BlobMissingError);
      assert.deepEqual(readdirSync(dir), [], 'neither the target nor a temporary file');
    });

    test('registering a bundle stores each file and bundle.json once; the default chunk size is used', async () => {
      const dir = writeFixtureBundle(tempDir(), { name: 'stored' });
      const result = await importBundle(db.prisma, dir);
      const version = await db.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId }, include: { files: true } });
      const hashes = [version.manifestSha256, ...version.files.map((f) => f.sha256)];
      assert.equal(hashes.length, 5);
      assert.deepEqual(await missingBlobs(db.prisma, hashes), []);
      assert.equal(sha256(readFileSync(join(dir, 'bundle.json'))), version.manifestSha256);
      const blob = await db.prisma.blob.findUniqueOrThrow({ where: { sha256: version.manifestSha256 } });
      assert.equal(blob.chunkSize, blobChunkBytes);
      const count = await db.prisma.blobChunk.count();
      assert.equal((await importBundle(db.prisma, dir)).created, false);
      assert.equal(await db.prisma.blobChunk.count(), count, 'importing again stores nothing');
    });

    test('a failed import leaves the version rows as they were (its blobs are content-addressed and harmless)', async () => {
      await importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'clash' }));
      const versions = await db.prisma.modelVersion.count();
      const files = await db.prisma.bundleFile.count();
      await assert.rejects(importBundle(db.prisma, writeFixtureBundle(tempDir(), { name: 'clash', sentimentBytes: 'retrained' })), /has changed/);
      assert.equal(await db.prisma.modelVersion.count(), versions);
      assert.equal(await db.prisma.bundleFile.count(), files);
    });
  });
}
