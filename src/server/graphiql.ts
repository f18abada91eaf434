// GraphiQL as one self-contained page from node_modules (no CDN): it works offline. The renderer's bundle
// (GraphiQL 5 with OneGraph's explorer as a sidebar plugin, always on) takes its options as JSON; the page opens
// with two tabs, one asking several tasks at once and one browsing the registry. Tabs a user opened or edited
// are kept in the browser's storage, and then the default tabs are not shown again.
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

type GraphiQLOptions = NonNullable<Parameters<typeof renderGraphiQL>[0]>;

const multiTaskQuery = `# Polyhead: one backbone, many task heads. The backbone runs once per text,
# and only the heads selected here run. Build queries by clicking in the explorer (left sidebar).
query MultiTask {
  analyze(texts: ["Maria Lopez loved the new Pixar film she saw in Madrid.",
                  "The delivery was late and the box was damaged."]) {
    text
    tokenCount
    sentiment { label score }
    entities { text label start end score }
  }
  similarity(query: "How old are you?", candidates: ["What is your age?", "Where do you live?"])
}
`;

const registryQuery = `# Browse the registry: models, their versions, heads and where they came from.
query Registry {
  server { version database defaultModel loadedModels { name version heads } }
  models(first: 10) {
    totalCount
    edges {
      node {
        name
        version {
          version
          parent { version }
          backbone { name architecture pretrainedSource { name citation } }
          heads { name task labels trainingData { name license } evaluations { metric value split } }
        }
      }
    }
  }
}
`;

/** What the page is rendered with; one object, so other options (subscriptions, headers) are one line each. */
export function graphiqlOptions(endpoint: string): GraphiQLOptions {
  return {
    endpoint,
    title: 'Polyhead',
    // Variables are not used: GraphiQL 5 shows a default tab's query on first load, but not its variables.
    defaultTabs: [{ query: multiTaskQuery }, { query: registryQuery }],
    // A tab opened with "+" starts with this; the explorer then builds its query.
    defaultQuery: '',
    // Subscriptions over WebSocket (graphql-ws) on the same URL, as the server serves them; the rest stays HTTP.
    subscriptionsProtocol: 'WS',
  };
}

let page: string | undefined;

export function graphiqlPage(endpoint: string): string {
  page ??= renderGraphiQL(graphiqlOptions(endpoint));
  return page;
}
