// The SQL connection of the durable job queue: the embedded PGlite itself, or on PostgreSQL a small pool of its own
// (apart from Prisma's pool and the registry's health-check pool, so that queue polling never waits behind them and
// a readiness probe never waits behind the queue). pg-boss runs on it through its `db` option, so that a job's
// record and pg-boss's row of it change in one transaction.
import type { PGlite, Transaction } from '@electric-sql/pglite';
import pg from 'pg';

export interface SqlResult<T> {
  rows: T[];
}

export interface JobSql {
  /** One statement with parameters, or without parameters a script of several: the rows of the last statement. */
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<SqlResult<T>>;
  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (tx: JobSql) => Promise<T>): Promise<T>;
  /** Ends the pool (PostgreSQL); the embedded database is closed by its owner. */
  close(): Promise<void>;
}

/** What pg-boss calls for every statement it sends (its `db` option and the `db` of each call). */
export interface PgBossDb {
  executeSql(text: string, values?: unknown[]): Promise<SqlResult<any>>;
}

export function bossDb(sql: JobSql): PgBossDb {
  return { executeSql: (text, values) => sql.query(text, values) };
}

export function pgliteJobSql(pglite: PGlite): JobSql {
  return {
    ...pgliteStatements(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn({ ...pgliteStatements(tx), transaction: nestedTransaction, close: async () => {} })),
    close: async () => {},
  };
}

// PGlite's query() takes one statement; exec() takes a script (pg-boss sends its schema and maintenance as scripts,
// without parameters) and returns one result per statement.
function pgliteStatements(db: PGlite | Transaction): Pick<JobSql, 'query'> {
  return {
    query: async <T>(text: string, values?: unknown[]) => {
      if (values?.length) return db.query<T>(text, values);
      const results = await db.exec(text);
      return (results.at(-1) as SqlResult<T> | undefined) ?? { rows: [] };
    },
  };
}

export function postgresJobSql(url: string): JobSql {
  const pool = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 5_000, application_name: 'polyhead-jobs' });
  pool.on('error', () => {}); // an idle client lost with the server: the next checkout reconnects
  return {
    query: (text, values) => lastResult(pool.query(text, values)),
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (text, values) => lastResult(client.query(text, values)), transaction: nestedTransaction, close: async () => {} });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** node-postgres answers a script of several statements with one result each. */
async function lastResult<T>(pending: Promise<pg.QueryResult | pg.QueryResult[]>): Promise<SqlResult<T>> {
  const result = await pending;
  return (Array.isArray(result) ? result.at(-1) : result) as unknown as SqlResult<T>;
}

function nestedTransaction(): never {
  throw new Error('job queue: transactions do not nest');
}
