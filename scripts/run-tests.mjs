#!/usr/bin/env node
// Runs every tests/**/*.test.ts (not inside node_modules) with node's own test runner (node 20's --test does not expand globs).
// tests/cluster (scripts/cluster.sh: PostgreSQL, three replicas and nginx, as root) is a suite of its own, run
// with --cluster (`npm run test:cluster`, which .ci/run runs after `npm test`): it takes minutes.
// Extra arguments are passed to node --test (e.g. --test-name-pattern).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      // Not tests/reference/node_modules (the transformers.js reference package): its files are not ours.
      if (name !== 'node_modules' && path !== join('tests', 'cluster')) found.push(...findTests(path));
    } else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const args = process.argv.slice(2);
const cluster = args.includes('--cluster');
const files = args.filter((a) => a.endsWith('.ts'));
const flags = args.filter((a) => !a.endsWith('.ts') && a !== '--cluster');
const clusterTests = () => readdirSync(join('tests', 'cluster')).filter((name) => name.endsWith('.test.ts')).sort().map((name) => join('tests', 'cluster', name));
const result = spawnSync(
  process.execPath,
  ['--import', '@swc-node/register/esm-register', '--test', '--test-concurrency=1', ...flags, ...(files.length ? files : cluster ? clusterTests() : findTests('tests'))],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
