// A fresh database on the real PostgreSQL server named by POLYHEAD_TEST_DATABASE_URL (.ci/run starts one).
// Without it, PostgreSQL tests are skipped locally and fail under CI, so CI can never pass without them.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const postgresUrl = process.env.POLYHEAD_TEST_DATABASE_URL;

export const skipWithoutPostgres: string | false = postgresUrl
  ? false
  : process.env.CI
    ? false // under CI the tests run and fail loudly on the missing URL
    : 'set POLYHEAD_TEST_DATABASE_URL to run the PostgreSQL tests (.ci/run does)';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  if (!postgresUrl) throw new Error('POLYHEAD_TEST_DATABASE_URL is not set: PostgreSQL tests cannot run');
  const name = `polyhead_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        // pg.Pool#end() resolves once its clients are told to close, not once their server sessions are gone;
        // a forced drop at that moment terminates a closing session, and its client reports the termination
        // as an uncaught error in the test that just passed. So wait (briefly) for the sessions to go first.
        for (const giveUpAt = Date.now() + 5_000; Date.now() < giveUpAt; ) {
          const { rows } = await client.query<{ sessions: number }>('SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = $1', [name]);
          if (rows[0]!.sessions === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
