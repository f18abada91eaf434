import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';

@ObjectType()
export class Dataset {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field() source!: string;
  @Field() license!: string;
  @Field(() => Int) size!: number;
  @Field(() => GraphQLJSONObject, { description: 'Split name -> number of examples.' }) splits!: unknown;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field() createdAt!: Date;
}

@ObjectType({ description: "A head's measured quality on one split of a dataset." })
export class Evaluation {
  @Field(() => ID) id!: number;
  @Field() split!: string;
  @Field() metric!: string;
  @Field(() => Float) value!: number;
  @Field(() => Int) sampleCount!: number;
  @Field() createdAt!: Date;
  headId!: number;
  datasetId!: number;
}
