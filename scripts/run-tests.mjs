#!/usr/bin/env node
// Runs every tests/**/*.test.ts (not inside node_modules) with node's own test runner (node 20's --test does not expand globs).
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
      if (name !== 'node_modules') found.push(...findTests(path));
    } else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith('.ts'));
const flags = args.filter((a) => !a.endsWith('.ts'));
const result = spawnSync(
  process.execPath,
  ['--import', '@swc-node/register/esm-register', '--test', '--test-concurrency=1', ...flags, ...(files.length ? files : findTests('tests'))],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
