// npm run db:migration -- <name>
// Applies the existing migrations to a scratch in-memory PGlite, diffs it against schema.prisma with
// Prisma's schema engine and writes the difference as prisma/migrations/<timestamp>_<name>/migration.sql.
import { mkdirSync, writeFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { applyMigrations, pgliteExecutor } from '../src/registry/migrate.js';
import { diffDatabaseToSchema } from './schema-engine.js';

const name = (process.argv[2] ?? '').replace(/[^a-z0-9_]+/gi, '_');
if (!name) {
  console.error('usage: npm run db:migration -- <name>');
  process.exit(2);
}
const db = new PGlite();
await applyMigrations(pgliteExecutor(db));
const sql = await diffDatabaseToSchema(new PrismaPGlite(db));
if (!sql) {
  console.log('schema.prisma matches the migrations: nothing to write');
} else {
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = `prisma/migrations/${stamp}_${name}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/migration.sql`, sql);
  console.log(`wrote ${dir}/migration.sql`);
}
await db.close();
