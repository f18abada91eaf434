// GraphiQL as one self-contained page from node_modules (no CDN): it works offline.
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

const exampleQuery = `# Polyhead: one backbone, many task heads.
# Browse the registry: models, their versions, heads and where they came from.
{
  server { version database defaultModel loadedModels { name version heads } }
  models(first: 10) {
    edges {
      node {
        name
        version {
          version
          backbone { name architecture pretrainedSource { name citation } }
          heads { name task labels evaluations { metric value split dataset { name } } }
        }
      }
    }
  }
}
`;

let page: string | undefined;

export function graphiqlPage(endpoint: string): string {
  page ??= renderGraphiQL({ endpoint, title: 'Polyhead', defaultQuery: exampleQuery });
  return page;
}
