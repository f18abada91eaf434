// The migrations in prisma/migrations produce exactly schema.prisma, on embedded PGlite and on PostgreSQL,
// and applying them is idempotent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import pg from 'pg';
import { applyMigrations, appliedMigrations, pgliteExecutor, pgPoolExecutor, readMigrations } from '../../src/registry/migrate.js';
import { diffDatabaseToSchema, postgresAdapterForSchemaEngine } from '../../scripts/schema-engine.js';
import { createScratchDatabase, skipWithoutPostgres } from '../helpers/postgres.js';

const migrationNames = readMigrations().map((m) => m.name);

test('PGlite: migrations apply once, are recorded like Prisma, and match schema.prisma (no drift)', async () => {
  const db = new PGlite();
  const sql = pgliteExecutor(db);
  assert.deepEqual((await applyMigrations(sql)).applied, migrationNames);
  assert.deepEqual((await applyMigrations(sql)).applied, [], 'a second run applies nothing');
  assert.deepEqual(await appliedMigrations(sql), migrationNames);
  assert.equal(await diffDatabaseToSchema(new PrismaPGlite(db)), '', 'migrated database differs from schema.prisma');
  await db.close();
});

test('drift is detected when the database differs from schema.prisma', async () => {
  const db = new PGlite();
  await applyMigrations(pgliteExecutor(db));
  await db.exec('ALTER TABLE "Dataset" ADD COLUMN "stray" TEXT');
  assert.match(await diffDatabaseToSchema(new PrismaPGlite(db)), /DROP COLUMN "stray"/);
  await db.close();
});

test('a changed migration that was already applied is refused', async () => {
  const db = new PGlite();
  const sql = pgliteExecutor(db);
  await applyMigrations(sql);
  const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
  await assert.rejects(applyMigrations(sql, edited), /changed after it was applied/);
  await db.close();
});

test('PostgreSQL: migrations apply once and match schema.prisma (no drift)', { skip: skipWithoutPostgres }, async () => {
  const scratch = await createScratchDatabase();
  const pool = new pg.Pool({ connectionString: scratch.url });
  try {
    const sql = pgPoolExecutor(pool);
    // Two servers starting at once: the advisory lock lets one migrate, the other finds nothing to do.
    const [a, b] = await Promise.all([applyMigrations(sql), applyMigrations(sql)]);
    assert.deepEqual([...a.applied, ...b.applied], migrationNames);
    const introspection = postgresAdapterForSchemaEngine(scratch.url);
    try {
      assert.equal(await diffDatabaseToSchema(introspection.adapter), '');
      await pool.query('CREATE INDEX "stray_idx" ON "Head" ("name")');
      assert.match(await diffDatabaseToSchema(introspection.adapter), /DROP INDEX "stray_idx"/, 'drift on PostgreSQL is seen too');
    } finally {
      await introspection.close();
    }
  } finally {
    await pool.end();
    await scratch.drop();
  }
});
