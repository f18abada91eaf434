// evaluateHead: a loaded head scored on a registry dataset (or the bias probe), the figures recorded.
import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { HeadEvaluation } from '../schema/evaluation.type.js';
import type { RequestContext } from './context.js';

@Resolver()
export class EvaluationResolver {
  @Authorized('train')
  @Mutation(() => HeadEvaluation, {
    description:
      'Scores a head of a loaded model on a registry dataset whose examples the registry holds, through the serving path: classification ' +
      'accuracy, expected calibration error (15 bins) and macro F1; token classification span micro precision / recall / F1. ' +
      'dataset "bias-probe-eec-style" runs the counterfactual gender and ethnicity probe on a sentiment head instead. ' +
      'The figures are recorded as Evaluation rows of the head and the dataset (split given, or "all").',
  })
  evaluateHead(
    @Arg('model') model: string,
    @Arg('head') head: string,
    @Arg('dataset') dataset: string,
    @Arg('split', () => String, { nullable: true }) split: string | null,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.evaluation.evaluateHead({ model, head, dataset, split });
  }
}
