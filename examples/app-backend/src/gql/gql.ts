/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query ReviewAnalysis($texts: [String!]!) {\n    analyze(texts: $texts) {\n      text\n      truncated\n      sentiment { label score }\n      entities { text label start end }\n      embedding\n    }\n  }\n": typeof types.ReviewAnalysisDocument,
    "\n  query ModelCatalog($first: Int, $task: TaskKind) {\n    models(first: $first, task: $task) {\n      totalCount\n      edges {\n        node {\n          name\n          description\n          version {\n            version\n            license\n            backbone { name }\n            heads { name task labels }\n          }\n        }\n      }\n    }\n    server { loadedModels { name version } }\n  }\n": typeof types.ModelCatalogDocument,
};
const documents: Documents = {
    "\n  query ReviewAnalysis($texts: [String!]!) {\n    analyze(texts: $texts) {\n      text\n      truncated\n      sentiment { label score }\n      entities { text label start end }\n      embedding\n    }\n  }\n": types.ReviewAnalysisDocument,
    "\n  query ModelCatalog($first: Int, $task: TaskKind) {\n    models(first: $first, task: $task) {\n      totalCount\n      edges {\n        node {\n          name\n          description\n          version {\n            version\n            license\n            backbone { name }\n            heads { name task labels }\n          }\n        }\n      }\n    }\n    server { loadedModels { name version } }\n  }\n": types.ModelCatalogDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ReviewAnalysis($texts: [String!]!) {\n    analyze(texts: $texts) {\n      text\n      truncated\n      sentiment { label score }\n      entities { text label start end }\n      embedding\n    }\n  }\n"): typeof import('./graphql.js').ReviewAnalysisDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ModelCatalog($first: Int, $task: TaskKind) {\n    models(first: $first, task: $task) {\n      totalCount\n      edges {\n        node {\n          name\n          description\n          version {\n            version\n            license\n            backbone { name }\n            heads { name task labels }\n          }\n        }\n      }\n    }\n    server { loadedModels { name version } }\n  }\n"): typeof import('./graphql.js').ModelCatalogDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
