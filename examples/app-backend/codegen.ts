// GraphQL Code Generator (client preset): reads Polyhead's committed schema.graphql and the operations written
// with graphql() in src/, and writes typed documents to src/gql/ (committed; `npm run codegen` regenerates, and a
// test fails when they are stale).
import type { CodegenConfig } from '@graphql-codegen/cli';
import { fileURLToPath } from 'node:url';

// Paths from this file, not from the working directory, so the CLI and the staleness test read the same files.
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const config: CodegenConfig = {
  schema: here('../../schema.graphql'),
  documents: [here('src/**/*.ts'), `!${here('src/gql/**')}`],
  // Imports with .js extensions, as Node's ES modules need them.
  emitLegacyCommonJSImports: false,
  generates: {
    [here('src/gql/')]: {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      // Documents as typed strings: a plain fetch can send them, with no GraphQL client library at run time.
      config: { documentMode: 'string', useTypeImports: true },
    },
  },
  silent: true,
};

export default config;
