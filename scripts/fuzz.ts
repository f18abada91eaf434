// The full fuzz run: `npm run fuzz -- --runs 10000 [--seed N] [--concurrency 4] [--url http://host:port/graphql]`.
// Without --url it starts the built server (node scripts/build.mjs first) with a fresh embedded database and
// the default model, and checks at the end that the process is still alive. Prints the counts and writes
// bench/results/fuzz.json; exits 1 on any failure.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { formatStats, fuzzGraphQL } from '../tests/helpers/graphql-fuzz.js';
import { spawnServer, type ServerProcess } from '../tests/helpers/process.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    url: { type: 'string' },
  },
});

let server: ServerProcess | undefined;
let url = values.url;
if (!url) {
  server = await spawnServer({
    POLYHEAD_DATA_DIR: mkdtempSync(join(tmpdir(), 'polyhead-fuzz-')),
    POLYHEAD_BUNDLE_DIR: process.env.POLYHEAD_BUNDLE_DIR ?? join(packageRoot, '.cache', 'bundles'),
    POLYHEAD_API_KEY: '',
  });
  url = server.url;
}
const runs = Number(values.runs);
console.log(`fuzzing ${url} with ${runs} requests...`);
const stats = await fuzzGraphQL({
  url,
  runs,
  seed: values.seed ? Number(values.seed) : undefined,
  concurrency: Number(values.concurrency),
  onProgress: (s) => process.stdout.write(`  ${s.sent} sent, ${s.failures.length} failures\r`),
});
const alive = server ? server.child.exitCode === null && server.child.signalCode === null : true;
console.log(`\nseed ${stats.seed}\n${formatStats(stats)}\nserver process alive at the end: ${alive}`);
if (stats.counterexample) console.log(`counterexample: ${JSON.stringify(stats.counterexample).slice(0, 2000)}`);
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(packageRoot, 'bench', 'results', 'fuzz.json'),
  `${JSON.stringify({ date: new Date().toISOString(), runs, seed: stats.seed, sent: stats.sent, ms: stats.ms, validChecks: stats.validChecks, byKind: stats.byKind, statuses: stats.statuses, codes: stats.codes, failures: stats.failures, alive }, null, 2)}\n`,
);
if (server) await server.stop('SIGTERM');
process.exit(stats.failures.length || !alive ? 1 : 0);
