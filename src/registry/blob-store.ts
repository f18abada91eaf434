// Files stored in the registry by content (sha256), so that a replica with only DATABASE_URL can rebuild any
// registered bundle. A blob is written and read one chunk at a time: a 28 MB backbone or a 400 MB imported
// encoder is never whole in memory, on either side.
//
// A Blob row is created in the same transaction as its chunks, so a Blob row means a complete blob: a store
// that fails or is interrupted leaves nothing. Storing the same content twice writes nothing the second time,
// also when two processes store it at once (the second INSERT waits for the first transaction and skips).
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import type { PrismaClient } from '../generated/prisma/client.js';

/**
 * 4 MiB per chunk: a 28 MB backbone is 7 rows and 7 round trips, so per-row costs vanish beside the bytes, while
 * one chunk in flight costs only a few MiB in each layer that holds it (the file buffer, the driver's encoding of
 * the parameter, PostgreSQL's or PGlite's copy). Larger rows would save nothing on disk: PostgreSQL stores any
 * bytea this size out of line in ~2 kB TOAST pieces whatever the row size.
 */
export const blobChunkBytes = 4 * 1024 * 1024;

// Bytes cross the driver as hex text, turned into bytea by decode() and back by encode() in SQL: PGlite and its
// Prisma adapter convert a bytea value byte by byte in JavaScript (a 4 MiB chunk is 4 million small strings
// or parseInt calls): storing a 28 MB backbone took 20-28 s that way against 2-4 s with Node's native hex codec.
// PostgreSQL gets the same statements, so both databases take one path.

/** A generous bound for one blob's transaction (Prisma's default is 5 s): a large file on a slow disk. */
const storeTimeoutMs = 10 * 60_000;

export class BlobMissingError extends Error {}
export class BlobCorruptError extends Error {}

export interface StoreResult {
  sha256: string;
  sizeBytes: number;
  /** False when the registry already held this content. */
  created: boolean;
}

/**
 * Stores the file at `path` under its sha256. With `expectedSha256` (a hash already computed by the caller) the
 * bytes streamed are checked against it, so a file that changed since it was hashed is refused, not stored
 * under the wrong name.
 */
export async function storeBlob(prisma: PrismaClient, path: string, expectedSha256?: string, chunkBytes = blobChunkBytes): Promise<StoreResult> {
  const sha256 = expectedSha256 ?? (await hashFile(path));
  const { size } = await stat(path);
  if (await hasBlob(prisma, sha256)) return { sha256, sizeBytes: size, created: false };
  const created = await prisma.$transaction(
    async (tx) => {
      // ON CONFLICT DO NOTHING: a concurrent store of the same content makes this wait for it, then skip.
      const inserted = await tx.blob.createMany({ data: [{ sha256, sizeBytes: BigInt(size), chunkSize: chunkBytes }], skipDuplicates: true });
      if (inserted.count === 0) return false;
      const hash = createHash('sha256');
      let total = 0;
      let index = 0;
      for await (const chunk of readChunks(path, chunkBytes)) {
        hash.update(chunk);
        total += chunk.length;
        await tx.$executeRaw`INSERT INTO "BlobChunk" ("sha256", "index", "data") VALUES (${sha256}, ${index++}, decode(${chunk.toString('hex')}, 'hex'))`;
      }
      const actual = hash.digest('hex');
      // Throwing rolls back the Blob row and every chunk written.
      if (actual !== sha256 || total !== size) throw new BlobCorruptError(`${path} changed while it was stored (sha256 ${actual.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
      return true;
    },
    { timeout: storeTimeoutMs, maxWait: storeTimeoutMs },
  );
  return { sha256, sizeBytes: size, created };
}

export async function hasBlob(prisma: PrismaClient, sha256: string): Promise<boolean> {
  return (await prisma.blob.count({ where: { sha256 } })) > 0;
}

/** The hashes among `sha256s` that the registry holds no blob for. */
export async function missingBlobs(prisma: PrismaClient, sha256s: readonly string[]): Promise<string[]> {
  const wanted = [...new Set(sha256s)];
  const present = await prisma.blob.findMany({ where: { sha256: { in: wanted } }, select: { sha256: true } });
  const found = new Set(present.map((b) => b.sha256));
  return wanted.filter((sha) => !found.has(sha));
}

/**
 * Writes blob `sha256` to `target`, chunk by chunk, into a temporary file beside it that is renamed into place
 * only when every byte is there and the hash matches: `target` is either absent or complete and verified.
 */
export async function readBlobToFile(prisma: PrismaClient, sha256: string, target: string): Promise<void> {
  const blob = await prisma.blob.findUnique({ where: { sha256 } });
  if (!blob) throw new BlobMissingError(`the registry holds no file with sha256 ${sha256}`);
  const size = Number(blob.sizeBytes);
  const chunks = Math.ceil(size / blob.chunkSize);
  // Random part: two loads in this process may fetch the same blob at once. Ends in the pid for removeStaleTemporaries.
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp-${process.pid}`;
  const out = await open(tmp, 'w');
  try {
    const hash = createHash('sha256');
    let written = 0;
    for (let index = 0; index < chunks; index++) {
      const rows = await prisma.$queryRaw<Array<{ hex: string }>>`SELECT encode("data", 'hex') AS hex FROM "BlobChunk" WHERE "sha256" = ${sha256} AND "index" = ${index}`;
      if (!rows[0]) throw new BlobCorruptError(`blob ${sha256.slice(0, 12)}… lacks chunk ${index} of ${chunks}`);
      const data = Buffer.from(rows[0].hex, 'hex');
      hash.update(data);
      await out.write(data);
      written += data.length;
    }
    const actual = hash.digest('hex');
    if (actual !== sha256 || written !== size) {
      throw new BlobCorruptError(`blob ${sha256.slice(0, 12)}… read back as ${written} bytes with sha256 ${actual.slice(0, 12)}…`);
    }
    await out.sync();
    await out.close();
    await rename(tmp, target);
  } catch (error) {
    await out.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readChunks(path, blobChunkBytes)) hash.update(chunk);
  return hash.digest('hex');
}

/** The file's bytes in pieces of exactly `chunkBytes` (the last may be shorter); a read stream promises no sizes. */
async function* readChunks(path: string, chunkBytes: number): AsyncGenerator<Buffer<ArrayBuffer>> {
  const file = await open(path, 'r');
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(chunkBytes);
      let filled = 0;
      while (filled < chunkBytes) {
        const { bytesRead } = await file.read(buffer, filled, chunkBytes - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled === 0) return;
      yield filled === chunkBytes ? buffer : buffer.subarray(0, filled);
      if (filled < chunkBytes) return;
    }
  } finally {
    await file.close();
  }
}
