// The operations this service sends to Polyhead. Code Generator reads them (the graphql() calls) and writes their
// result and variable types to gql/; graphql() then returns a document typed by its own text.
import { graphql } from './gql/index.js';

/** Several tasks in one request: the backbone runs once per review, and only these three heads run. */
export const ReviewAnalysisDocument = graphql(`
  query ReviewAnalysis($texts: [String!]!) {
    analyze(texts: $texts) {
      text
      truncated
      sentiment { label score }
      entities { text label start end }
      embedding
    }
  }
`);

/** The registry: models with the version each would serve, its backbone and heads, and what is loaded now. */
export const ModelCatalogDocument = graphql(`
  query ModelCatalog($first: Int, $task: TaskKind) {
    models(first: $first, task: $task) {
      totalCount
      edges {
        node {
          name
          description
          version {
            version
            license
            backbone { name }
            heads { name task labels }
          }
        }
      }
    }
    server { loadedModels { name version } }
  }
`);
