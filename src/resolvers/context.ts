// What every resolver gets: services shared by the process, loaders and identity built per request.
import type { AuthChecker } from 'type-graphql';
import type { ApiKeyService, Scope } from '../auth/api-keys.js';
import { hasScope, type Authenticator, type Principal } from '../auth/authenticator.js';
import { PolyheadError } from '../errors.js';
import type { RegistryLoaders } from '../registry/registry.loaders.js';
import type { RegistryService } from '../registry/registry.service.js';
import type DataLoader from 'dataloader';
import type { TextResult } from '../engine/serving-model.js';
import type { InferenceKey, InferenceService, RequestTiming, TranslationKey } from '../serving/inference.service.js';
import type { Translation } from '../engine/translation/translation-model.js';
import type { ModelManager } from '../serving/model-manager.js';
import type { DesiredState } from '../serving/desired-state.js';
import type { TrainingJob, TrainingJobs } from '../serving/training-jobs.js';
import type { FineTuneJobs } from '../serving/fine-tune-jobs.js';
import type { EvaluationService } from '../evaluation/evaluation.service.js';
import type { LoadedModel } from '../schema/server.type.js';
import type { RequestTrace } from '../observability/request-trace.js';

export interface ServerState {
  version: string;
  startedAt: number;
  databaseKind: string;
  defaultModel: string;
  /** Folders importBundle and importHuggingFace may read below. */
  bundleRoots: readonly string[];
  /** Where bundles are assembled (an imported Hugging Face folder becomes one here). */
  bundleDir: string;
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
  /** The caller's scopes, from the bearer token. */
  principal: Principal;
  apiKeys: ApiKeyService;
  authenticator: Authenticator;
  inference: InferenceService;
  inferenceLoader: DataLoader<InferenceKey, TextResult, string>;
  translationLoader: DataLoader<TranslationKey, Translation, string>;
  models: ModelManager;
  /** The loaded set shared by every replica: setAlias goes through it; onChange gives model events. */
  desiredState: DesiredState;
  training: TrainingJobs;
  fineTuning: FineTuneJobs;
  evaluation: EvaluationService;
  timing: RequestTiming;
  /** A training job's states from now until it ends (trainingJobUpdates). */
  jobUpdates: (id: string) => AsyncIterable<TrainingJob>;
  /** The request's spans, when tracing is on and the request is sampled. */
  trace?: RequestTrace;
}

/** `@Authorized('write')`: the caller needs that scope (admin has every scope). */
export const authChecker: AuthChecker<RequestContext, Scope> = ({ context }, roles) => {
  const needed = roles[0] ?? 'admin';
  if (hasScope(context.principal, needed)) return true;
  if (context.principal.scopes.size === 0) {
    throw new PolyheadError('UNAUTHENTICATED', `this needs an API key with the "${needed}" scope: send "Authorization: Bearer <key>"`);
  }
  throw new PolyheadError('FORBIDDEN', `this API key lacks the "${needed}" scope`);
};
