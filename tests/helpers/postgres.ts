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
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
