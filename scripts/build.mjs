#!/usr/bin/env node
// Generates the Prisma client and compiles the TypeScript (npm install runs this through `prepare`).
// --if-missing: do nothing when a build exists (used before `npm start`).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
if (process.argv.includes('--if-missing') && existsSync('dist/src/main.js') && existsSync('src/generated/prisma/client.ts')) process.exit(0);

function run(script, args, env = {}) {
  const result = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// `prisma generate` only needs the schema engine binary to exist: it never runs it. Pointing the variable at
// node spares the download that the CLI would otherwise attempt (and that fails offline).
run(require.resolve('prisma/build/index.js'), ['generate'], {
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
});
run(require.resolve('typescript/bin/tsc'), ['-p', 'tsconfig.json']);
