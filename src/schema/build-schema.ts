// The executable schema, built from the resolver classes. `npm run schema` writes schema.graphql from it.
import 'reflect-metadata';
import { buildSchema } from 'type-graphql';
import { printSchema, type GraphQLSchema } from 'graphql';
import { authChecker } from '../resolvers/context.js';
import { RegistryResolver } from '../resolvers/registry.resolver.js';
import { ServerResolver } from '../resolvers/server.resolver.js';
import { InferenceResolver, TextAnalysisResolver } from '../resolvers/inference.resolver.js';
import { ModelLoadingResolver } from '../resolvers/model-loading.resolver.js';
import { ApiKeyResolver } from '../resolvers/api-key.resolver.js';
import { TrainingResolver } from '../resolvers/training.resolver.js';
import { EvaluationResolver } from '../resolvers/evaluation.resolver.js';
import { SubscriptionResolver } from '../resolvers/subscription.resolver.js';
import { LiveEvents } from '../serving/live-events.js';
import {
  AliasLineageResolver,
  BackboneLineageResolver,
  DatasetLineageResolver,
  EvaluationLineageResolver,
  HeadDatasetResolver,
  BackboneDatasetResolver,
  HeadLineageResolver,
  ModelLineageResolver,
  VersionLineageResolver,
} from '../resolvers/lineage.resolver.js';

export const resolvers = [
  InferenceResolver,
  TextAnalysisResolver,
  ModelLoadingResolver,
  ApiKeyResolver,
  TrainingResolver,
  EvaluationResolver,
  SubscriptionResolver,
  RegistryResolver,
  ServerResolver,
  ModelLineageResolver,
  VersionLineageResolver,
  AliasLineageResolver,
  BackboneLineageResolver,
  HeadLineageResolver,
  HeadDatasetResolver,
  BackboneDatasetResolver,
  DatasetLineageResolver,
  EvaluationLineageResolver,
] as const;

/** `live` carries the events topic-based subscriptions stream (modelChanges); one per server. */
export function buildPolyheadSchema(live: LiveEvents = new LiveEvents()): Promise<GraphQLSchema> {
  return buildSchema({ resolvers: [...resolvers], authChecker, validate: false, pubSub: live });
}

export async function printPolyheadSchema(): Promise<string> {
  return `${printSchema(await buildPolyheadSchema())}\n`;
}
