// Opens the registry database: embedded PGlite in the data folder by default, PostgreSQL when a URL is given.
// Both get the same migrations and the same Prisma client; only the driver adapter differs.
import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { isProcessAlive } from '../bundle/files.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { applyMigrations, appliedMigrations, pgliteExecutor, pgPoolExecutor, readMigrations, type SqlExecutor } from './migrate.js';

export type DatabaseKind = 'pglite' | 'postgresql';

export interface RegistryDatabase {
  kind: DatabaseKind;
  prisma: PrismaClient;
  sql: SqlExecutor;
  /** Where the data lives, without credentials. */
  location: string;
  /** The PostgreSQL URL (a LISTEN connection of its own is opened with it). */
  url?: string;
  /** The embedded database (its listen/notify works within this process). */
  pglite?: PGlite;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent the embedded database in `dataDir` is used. */
  url?: string;
  dataDir: string;
  /** Emitted for every SQL statement Prisma sends (tests count them). */
  onQuery?: (sql: string) => void;
}

export class DatabaseLockedError extends Error {}

export async function openDatabase(options: DatabaseOptions): Promise<RegistryDatabase> {
  return options.url ? openPostgres(options.url, options.onQuery) : openPglite(options.dataDir, options.onQuery);
}

export async function migrateDatabase(db: RegistryDatabase) {
  return applyMigrations(db.sql);
}

/** True when every migration shipped with this build has been applied. */
export async function isMigrated(db: RegistryDatabase): Promise<boolean> {
  const done = new Set(await appliedMigrations(db.sql));
  return readMigrations().every((migration) => done.has(migration.name));
}

function prismaClient(adapter: PrismaPg | PrismaPGlite, onQuery?: (sql: string) => void): PrismaClient {
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] as const });
  client.$on('query', (event: { query: string }) => onQuery(event.query));
  return client as unknown as PrismaClient;
}

async function openPostgres(url: string, onQuery?: (sql: string) => void): Promise<RegistryDatabase> {
  // A small pool of our own for migrations and health checks, apart from Prisma's.
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => {}); // an idle client lost with the server: the next checkout reconnects
  const prisma = prismaClient(new PrismaPg({ connectionString: url, connectionTimeoutMillis: 5_000 }), onQuery);
  const parsed = new URL(url);
  return {
    kind: 'postgresql',
    prisma,
    sql: pgPoolExecutor(pool),
    location: `postgresql://${parsed.host}${parsed.pathname}`,
    url,
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string, onQuery?: (sql: string) => void): Promise<RegistryDatabase> {
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create(join(dataDir, 'pgdata'));
    const prisma = prismaClient(new PrismaPGlite(pglite), onQuery);
    return {
      kind: 'pglite',
      prisma,
      sql: pgliteExecutor(pglite),
      location: join(dataDir, 'pgdata'),
      pglite,
      async close() {
        await prisma.$disconnect();
        await pglite.close();
        releaseLock();
      },
    };
  } catch (error) {
    releaseLock();
    throw error;
  }
}

// PGlite is one process's database: a second process opening the same folder would corrupt it.
function lockDataDir(dataDir: string): () => void {
  const lockFile = join(dataDir, 'pglite.lock');
  if (existsSync(lockFile)) {
    const pid = Number(readFileSync(lockFile, 'utf8'));
    if (pid && pid !== process.pid && isProcessAlive(pid)) {
      throw new DatabaseLockedError(
        `the embedded database in ${dataDir} is in use by process ${pid} (a running server?); ` +
          'stop it, or talk to it over GraphQL (polyhead import --server URL)',
      );
    }
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}
