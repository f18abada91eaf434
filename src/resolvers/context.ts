// What every resolver gets: services shared by the process, loaders and identity built per request.
import type { AuthChecker } from 'type-graphql';
import { PolyheadError } from '../errors.js';
import type { RegistryLoaders } from '../registry/registry.loaders.js';
import type { RegistryService } from '../registry/registry.service.js';
import type DataLoader from 'dataloader';
import type { TextResult } from '../engine/serving-model.js';
import type { InferenceKey, InferenceService, RequestTiming } from '../serving/inference.service.js';
import type { ModelManager } from '../serving/model-manager.js';
import type { LoadedModel } from '../schema/server.type.js';

export interface ServerState {
  version: string;
  startedAt: number;
  databaseKind: string;
  defaultModel: string;
  /** Whether mutations can be authorised at all (an API key is configured). */
  mutationsEnabled: boolean;
  /** Where the backbone runs, e.g. "cpu" or "cuda (NVIDIA H100)". */
  device(): string;
  loadedModels(): LoadedModel[];
  queueDepth(): number;
  totals(): { batches: number; texts: number };
}

export interface RequestContext {
  registry: RegistryService;
  loaders: RegistryLoaders;
  server: ServerState;
  /** True when the request carried the configured API key. */
  authenticated: boolean;
  inference: InferenceService;
  inferenceLoader: DataLoader<InferenceKey, TextResult, string>;
  models: ModelManager;
  timing: RequestTiming;
}

export const authChecker: AuthChecker<RequestContext> = ({ context }) => {
  if (!context.server.mutationsEnabled) {
    throw new PolyheadError('UNAUTHENTICATED', 'mutations are disabled on this server: start it with POLYHEAD_API_KEY set');
  }
  if (!context.authenticated) {
    throw new PolyheadError('UNAUTHENTICATED', 'this mutation needs the API key: send "Authorization: Bearer <key>"');
  }
  return true;
};
