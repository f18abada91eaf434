// npm run schema: writes the GraphQL schema built from the resolvers to schema.graphql (committed; a test
// fails when the two differ, so every API change is a visible diff).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { printPolyheadSchema } from '../src/schema/build-schema.js';

writeFileSync(join(packageRoot, 'schema.graphql'), await printPolyheadSchema());
console.log('wrote schema.graphql');
