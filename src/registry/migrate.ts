// Applies prisma/migrations/*/migration.sql in name order and records each in `_prisma_migrations` exactly
// as `prisma migrate deploy` does (same table, sha256 checksum), so the Prisma CLI stays usable where its
// native engine can be downloaded. One runner serves embedded PGlite and PostgreSQL alike.
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { migrationsDir } from '../paths.js';

/** The little SQL surface the runner needs; every statement of a migration runs in one transaction. */
export interface SqlExecutor {
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs `fn` in a transaction; `exec` inside may hold several statements. */
  transaction(fn: (exec: (sql: string) => Promise<void>, query: SqlExecutor['query']) => Promise<void>): Promise<void>;
}

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  total: number;
}

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Several servers may start against one PostgreSQL at once: only one migrates.
const migrationLockId = 72_707_369;

export function readMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

export async function applyMigrations(db: SqlExecutor, migrations = readMigrations()): Promise<MigrationReport> {
  const applied: string[] = [];
  await db.transaction(async (exec, query) => {
    await query('SELECT pg_advisory_xact_lock($1)', [migrationLockId]);
    await exec(createMigrationsTable);
    const done = await query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const doneByName = new Map(done.map((row) => [row.migration_name, row.checksum]));
    for (const migration of migrations) {
      const checksum = doneByName.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`migration ${migration.name} was changed after it was applied (checksum mismatch)`);
        }
        continue;
      }
      await exec(migration.sql);
      await query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), now(), 1)`,
        [randomUUID(), migration.checksum, migration.name],
      );
      applied.push(migration.name);
    }
  });
  return { applied, total: migrations.length };
}

/** Names of migrations applied to this database, or [] when it was never migrated. */
export async function appliedMigrations(db: SqlExecutor): Promise<string[]> {
  const table = await db.query<{ present: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
  if (!table[0]?.present) return [];
  const rows = await db.query<{ migration_name: string }>(
    'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name',
  );
  return rows.map((row) => row.migration_name);
}

export function pgliteExecutor(db: PGlite): SqlExecutor {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
    transaction: async (fn) => {
      await db.transaction(async (tx) => {
        await fn(
          async (sql) => void (await tx.exec(sql)),
          async <T>(sql: string, params?: unknown[]) => (await tx.query<T>(sql, params)).rows,
        );
      });
    },
  };
}

export function pgPoolExecutor(pool: pg.Pool): SqlExecutor {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)).rows as T[],
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await fn(
          async (sql) => void (await client.query(sql)),
          async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T[],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
  };
}
