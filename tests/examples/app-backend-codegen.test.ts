// The example app backend's generated client types (examples/app-backend/src/gql/) are committed: regenerating
// them from schema.graphql and the example's operations must give the same files (run `npm run codegen` to
// update), and the example must compile against them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { packageRoot } from '../../src/paths.js';
import codegenConfig from '../../examples/app-backend/codegen.js';

const example = join(packageRoot, 'examples/app-backend');
const generatedDir = join(example, 'src/gql');

test('the committed generated client matches what Code Generator makes from schema.graphql now', { timeout: 120_000 }, async () => {
  // saveToFile = false: the files come back in memory and nothing on disk changes.
  const outputs: Array<{ filename: string; content: string }> = await generate(codegenConfig, false);
  const generated = new Map(outputs.map((output) => [relative(generatedDir, output.filename), output.content]));
  const committed = readdirSync(generatedDir).sort();
  assert.deepEqual(committed, [...generated.keys()].sort(), 'examples/app-backend/src/gql/ holds other files than Code Generator writes: run `npm run codegen`');
  for (const [name, content] of generated) {
    assert.equal(readFileSync(join(generatedDir, name), 'utf8'), content, `examples/app-backend/src/gql/${name} is stale: run \`npm run codegen\` and commit it`);
  }
});

test('the example compiles against its generated types', { timeout: 120_000 }, () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '--noEmit', '-p', example], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
