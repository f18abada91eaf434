// A PostgreSQL cluster of the test's own, which the test may stop and start again with the same data
// (scripts/postgres.sh creates it; pg_ctl stops and restarts it). Without the PostgreSQL binaries the fault
// tests are skipped locally and fail under CI, like the other PostgreSQL tests.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { tempDir } from './bundle-fixture.js';

const run = promisify(execFile);

/** The newest /usr/lib/postgresql/<n>/bin (Debian's layout, what scripts/postgres.sh uses), if any. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(a) - Number(b));
  return versions.length ? join(base, versions.at(-1)!, 'bin') : undefined;
}

export const skipWithoutPostgresBinaries: string | false = postgresBinDir()
  ? false
  : process.env.CI
    ? false // under CI the test runs and fails on the missing binaries
    : 'PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql): the outage test needs a server it can stop';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface PostgresCluster {
  url: string;
  port: number;
  /** pg_ctl stop -m fast: sessions are cut off (57P01), new connections refused. */
  stop(): Promise<void>;
  /** Starts the stopped cluster again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it (if running) and deletes its folder. */
  destroy(): Promise<void>;
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql: install postgresql');
  const dir = tempDir('polyhead-pg-');
  const port = await freePort();
  const { stdout } = await run('bash', [join(packageRoot, 'scripts/postgres.sh'), 'start', dir, String(port)]);
  const url = stdout.trim().split('\n').at(-1)!;
  const asOwner = (command: string, args: string[]) =>
    process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args]) : run(join(bin, command), args);
  let running = true;
  const stop = async () => {
    await asOwner('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']);
    running = false;
  };
  const start = async () => {
    await asOwner('pg_ctl', [
      '-D', join(dir, 'data'), '-l', join(dir, 'pg.log'), '-w',
      '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ]);
    running = true;
  };
  return {
    url,
    port,
    stop,
    start,
    async destroy() {
      if (running) await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
