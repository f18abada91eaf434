// OpenAI model ids for Polyhead's loaded models. "<model>" is the model's sentence embedding (what GraphQL's
// embed answers); "<model>:<head>" is one of its embedding heads (a ":" cannot occur in model or head names).
import type { Engine } from '../../engine/engine.js';
import type { ServingModel } from '../../engine/serving-model.js';
import { OpenAiError } from './openai-error.js';

export interface EmbeddingSource {
  model: string;
  /** An embedding head of the model; absent = the backbone's pooled sentence embedding. */
  head?: string;
}

/** Every id POST /v1/embeddings accepts now, in the engine's order. */
export function embeddingModelIds(engine: Engine): string[] {
  return encoders(engine).flatMap((model) => [
    ...(model.backbone.hasEmbedding ? [model.name] : []),
    ...[...model.heads.values()].filter((head) => head.spec.task === 'embedding').map((head) => `${model.name}:${head.spec.name}`),
  ]);
}

/** The model (and head) an id names; 404 model_not_found, listing the ids there are, for anything else. */
export function resolveEmbeddingModel(engine: Engine, id: string): EmbeddingSource {
  const ids = embeddingModelIds(engine);
  if (!ids.includes(id)) {
    throw new OpenAiError(
      404,
      'invalid_request_error',
      'model_not_found',
      `the model "${id}" does not exist or gives no embeddings on this server (${ids.length ? `loaded: ${ids.join(', ')}` : 'no embedding model is loaded'})`,
      'model',
    );
  }
  const colon = id.indexOf(':');
  return colon < 0 ? { model: id } : { model: id.slice(0, colon), head: id.slice(colon + 1) };
}

/** The loaded encoder models (translation models have no embeddings). */
function encoders(engine: Engine): ServingModel[] {
  return engine.list().flatMap((info) => {
    try {
      return [engine.get(info.name)];
    } catch {
      return []; // a translation model, or one unloaded since list()
    }
  });
}
