// GET /models: the registry's models with the version each serves, and whether Polyhead has it loaded now.
import { ModelCatalogDocument } from './documents.js';
import type { TaskKind } from './gql/graphql.js';
import type { PolyheadRequest } from './polyhead-client.js';

// Every TaskKind of the schema: a kind added to or removed from schema.graphql fails to compile here.
const taskKinds: Record<TaskKind, true> = { CLASSIFICATION: true, TOKEN_CLASSIFICATION: true, EMBEDDING: true, GENERATION: true };

export const isTaskKind = (value: string): value is TaskKind => Object.hasOwn(taskKinds, value);
export const knownTaskKinds = Object.keys(taskKinds) as TaskKind[];

export interface ModelSummary {
  name: string;
  description: string | null;
  /** The version Polyhead serves for this model (alias production, else the newest); null when it has none. */
  version: string | null;
  license: string | null;
  backbone: string | null;
  heads: Array<{ name: string; task: TaskKind; labels: string[] }>;
  /** Loaded on the Polyhead process that answered, so it can be asked right away. */
  loaded: boolean;
}

export async function listModels(polyhead: PolyheadRequest, filter: { first?: number; task?: TaskKind }): Promise<{ totalCount: number; models: ModelSummary[] }> {
  const { models, server } = await polyhead(ModelCatalogDocument, filter);
  const loaded = new Set(server.loadedModels.map((model) => model.name));
  return {
    totalCount: models.totalCount,
    models: models.edges.map(({ node }) => ({
      name: node.name,
      description: node.description,
      version: node.version?.version ?? null,
      license: node.version?.license ?? null,
      backbone: node.version?.backbone.name ?? null,
      heads: node.version?.heads ?? [],
      loaded: loaded.has(node.name),
    })),
  };
}
