// Subscriptions (over WebSocket, graphql-ws: src/server/subscriptions.ts): a training job followed to its end,
// and the models this server loads, unloads and registers.
import { Arg, ID, Resolver, Root, Subscription } from 'type-graphql';
import { modelChangesTopic, type ModelChangeEvent } from '../serving/live-events.js';
import type { TrainingJob as TrainingJobRecord } from '../serving/training-jobs.js';
import { ModelChange } from '../schema/model-change.type.js';
import { TrainingJob } from '../schema/training.type.js';
import type { RequestContext } from './context.js';

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => TrainingJob, {
    description:
      "A training job's status, phase, progress and final metrics (trainHead, fineTuneBackbone): its current state first, then each change, until it ends (SUCCEEDED or FAILED). NOT_FOUND for an unknown id.",
    subscribe: ({ args, context }) => (context as RequestContext).jobUpdates(String(args.id)),
  })
  trainingJobUpdates(@Root() job: TrainingJobRecord, @Arg('id', () => ID) _id: string): TrainingJobRecord {
    return job;
  }

  @Subscription(() => ModelChange, {
    description: 'Models loaded, unloaded and new versions registered, as they happen (all models, or the one named).',
    topics: modelChangesTopic,
    filter: ({ payload, args }) => !args.model || (payload as ModelChangeEvent).model === args.model,
  })
  modelChanges(@Root() event: ModelChangeEvent, @Arg('model', () => String, { nullable: true }) _model: string | null): ModelChangeEvent {
    return event;
  }
}
