// schema.graphql is committed: an API change must show up in it (run `npm run schema` to update).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { printPolyheadSchema } from '../../src/schema/build-schema.js';

test('schema.graphql matches the schema built from the resolvers', async () => {
  const committed = readFileSync(join(packageRoot, 'schema.graphql'), 'utf8');
  assert.equal(await printPolyheadSchema(), committed, 'the GraphQL schema changed: run `npm run schema` and commit schema.graphql');
});
