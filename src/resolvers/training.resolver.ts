// trainHead and trainingJob: a new head on a running server, trained in the background.
import { Arg, Authorized, Ctx, Float, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { PolyheadError } from '../errors.js';
import { TaskKind } from '../schema/enums.js';
import { FineTuneTaskInput, TrainingExampleInput, TrainingJob } from '../schema/training.type.js';
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

  @Authorized('train')
  @Mutation(() => TrainingJob, {
    description:
      "Fine-tunes the backbone of a loaded model on its heads' tasks at once (multi-task), with a distillation term on unlabelled text that keeps the pooled embedding close to the pretrained one, " +
      'then retrains those heads on the new backbone. Runs in the background in its own thread; bad input is refused before any work. On success a new backbone (lineage: parent backbone, datasets, ' +
      'hyperparameters, validation curves) and a new model version whose heads read it are registered and loaded; a failed job registers nothing.',
  })
  fineTuneBackbone(
    @Arg('model') model: string,
    @Arg('tasks', () => [FineTuneTaskInput]) tasks: FineTuneTaskInput[],
    @Arg('unlabeledDataset', () => String, { nullable: true, description: 'Unlabelled text for the distillation term: brown-unlabelled (built in, the default), a registry dataset with examples, or "" for none.' })
    unlabeledDataset: string | null,
    @Arg('adaptationDataset', () => String, { nullable: true, description: 'Unlabelled text of a target domain (a registry dataset with examples; their texts are read): the run adds the distillation term on it and self-training with the classification head\'s confident predictions (threshold 0.9, weight 0.5).' })
    adaptationDataset: string | null,
    @Arg('epochs', () => Int, { nullable: true, description: 'At most this many epochs (default 8; early stopping may end sooner).' }) epochs: number | null,
    @Arg('seed', () => Int, { nullable: true }) seed: number | null,
    @Arg('load', () => Boolean, { defaultValue: true }) load: boolean,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.fineTuning.start({ model, tasks, unlabeledDataset, adaptationDataset, epochs, seed, load });
  }

  @Query(() => TrainingJob, { nullable: true, description: 'A training job started by trainHead or fineTuneBackbone on any replica sharing this registry (answered from its record, also after restarts).' })
  trainingJob(@Arg('id', () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.training.find(id);
  }
}
