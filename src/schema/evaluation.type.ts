import { Field, Int, ObjectType } from 'type-graphql';
import { Evaluation } from './dataset.type.js';

@ObjectType({ description: 'What evaluateHead measured and recorded: the Evaluation rows it added to the registry.' })
export class HeadEvaluation {
  @Field() model!: string;
  @Field({ description: 'The model version served and evaluated.' }) version!: string;
  @Field() head!: string;
  @Field() dataset!: string;
  @Field({ description: 'The split scored, or "all".' }) split!: string;
  @Field(() => Int, { description: 'Examples scored (distinct sentences for the bias probe).' }) samples!: number;
  @Field(() => [Evaluation], { description: 'The rows recorded, tied to the head and the dataset.' }) evaluations!: Evaluation[];
}
