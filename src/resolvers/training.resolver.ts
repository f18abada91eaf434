// trainHead and trainingJob: a new head on a running server, trained in the background.
import { Arg, Authorized, Ctx, Float, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { PolyheadError } from '../errors.js';
import { TaskKind } from '../schema/enums.js';
import { TrainingExampleInput, TrainingJob } from '../schema/training.type.js';
import type { RequestContext } from './context.js';

@Resolver()
export class TrainingResolver {
  @Authorized('train')
  @Mutation(() => TrainingJob, {
    description:
      'Trains a new head on the frozen backbone of a loaded model from labelled examples (inline, or a registry dataset that holds examples). ' +
      'Bad examples are refused before any work; on success a new model version is registered (lineage: parent version, backbone, dataset, evaluation) and loaded.',
  })
  trainHead(
    @Arg('model') model: string,
    @Arg('head') head: string,
    @Arg('task', () => TaskKind) task: TaskKind,
    @Arg('labels', () => [String], { description: 'Class labels, or entity types (PER, ORG, ...) for TOKEN_CLASSIFICATION.' }) labels: string[],
    @Arg('examples', () => [TrainingExampleInput], { nullable: true }) examples: TrainingExampleInput[] | null,
    @Arg('dataset', () => String, { nullable: true }) dataset: string | null,
    @Arg('evaluationFraction', () => Float, { defaultValue: 0.2 }) evaluationFraction: number,
    @Arg('seed', () => Int, { defaultValue: 42 }) seed: number,
    @Arg('load', () => Boolean, { defaultValue: true }) load: boolean,
    @Ctx() ctx: RequestContext,
  ) {
    if (task !== 'CLASSIFICATION' && task !== 'TOKEN_CLASSIFICATION') throw new PolyheadError('BAD_USER_INPUT', `task: trainHead trains CLASSIFICATION or TOKEN_CLASSIFICATION heads, not ${task}`);
    return ctx.training.start({
      model,
      head,
      task: task === 'CLASSIFICATION' ? 'classification' : 'token_classification',
      labels,
      examples,
      dataset,
      evaluationFraction,
      seed,
      load,
    });
  }

  @Query(() => TrainingJob, { nullable: true, description: 'A training job started by trainHead on this server.' })
  trainingJob(@Arg('id', () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.training.find(id);
  }
}
