// The soak test: `npm run soak -- --minutes 10 --clients 256`. Starts a throwaway PostgreSQL
// (scripts/postgres.sh; or uses DATABASE_URL / --database-url) and the built server as a process (node
// scripts/build.mjs first; or --url for one already running), runs the mixed workload of tests/helpers/soak.ts,
// prints a table and writes bench/results/soak.json. Exits 1 on any unexpected error or when RSS grew by
// --max-growth percent (default 10) or more after the warm-up.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot, packageVersion } from '../src/paths.js';
import { spawnServer, type ServerProcess } from '../tests/helpers/process.js';
import { freePort } from '../tests/helpers/postgres-cluster.js';
import { formatSoak, rssReader, runSoak } from '../tests/helpers/soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '256' },
    'warmup-minutes': { type: 'string' },
    'database-url': { type: 'string' },
    url: { type: 'string' },
    out: { type: 'string', default: join(packageRoot, 'bench', 'results', 'soak.json') },
    'max-growth': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});

const durationMs = Number(values.minutes) * 60_000;
const warmupMs = values['warmup-minutes'] ? Number(values['warmup-minutes']) * 60_000 : Math.min(120_000, durationMs / 5);
const clients = Number(values.clients);

let pgDir: string | undefined;
let server: ServerProcess | undefined;
const cleanup = () => {
  server?.child.kill('SIGKILL');
  if (pgDir) {
    try {
      execFileSync('bash', [join(packageRoot, 'scripts/postgres.sh'), 'stop', pgDir], { stdio: 'ignore' });
    } catch {
      // already stopped
    }
    rmSync(pgDir, { recursive: true, force: true });
  }
};
process.once('SIGINT', () => (cleanup(), process.exit(130)));

try {
  let url = values.url;
  let database = 'given server';
  if (!url) {
    let databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
    if (!databaseUrl) {
      pgDir = mkdtempSync(join(tmpdir(), 'polyhead-soak-pg-'));
      databaseUrl = execFileSync('bash', [join(packageRoot, 'scripts/postgres.sh'), 'start', pgDir, String(await freePort())], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
      database = 'PostgreSQL (throwaway, scripts/postgres.sh)';
    } else database = 'PostgreSQL (given)';
    server = await spawnServer({
      DATABASE_URL: databaseUrl,
      POLYHEAD_DATA_DIR: mkdtempSync(join(tmpdir(), 'polyhead-soak-')),
      POLYHEAD_BUNDLE_DIR: process.env.POLYHEAD_BUNDLE_DIR ?? join(packageRoot, '.cache', 'bundles'),
      POLYHEAD_API_KEY: '',
    });
    url = server.url;
  }
  console.log(`soak: ${clients} clients for ${values.minutes} min against ${url} (${database}); warm-up ${(warmupMs / 1000).toFixed(0)} s`);
  const result = await runSoak({
    url,
    clients,
    durationMs,
    warmupMs,
    seed: Number(values.seed),
    rss: rssReader(server?.child.pid, url.replace(/\/graphql$/, '/metrics')),
    sampleEveryMs: Math.max(1_000, Math.min(10_000, durationMs / 60)),
    onSample: (s, totals) =>
      console.log(`  ${(s.atMs / 1000).toFixed(0).padStart(4)} s  rss ${(s.rssBytes / 1024 / 1024).toFixed(0)} MiB  requests ${totals.requests}  unexpected ${totals.unexpected}`),
  });
  const alive = server ? server.child.exitCode === null && server.child.signalCode === null : true;
  console.log(`\n${formatSoak(result)}\nserver process alive at the end: ${alive}`);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  mkdirSync(join(values.out, '..'), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify({ date: new Date().toISOString(), version: packageVersion, database, machine, ...result }, null, 2)}\n`);
  console.log(`wrote ${values.out}`);
  if (server) console.log(`server stopped with exit code ${await server.stop('SIGTERM')}`);
  server = undefined;
  const failed = result.unexpected > 0 || !alive || result.rssGrowthPercent >= Number(values['max-growth']);
  cleanup();
  process.exit(failed ? 1 : 0);
} catch (error) {
  console.error(error);
  cleanup();
  process.exit(1);
}
