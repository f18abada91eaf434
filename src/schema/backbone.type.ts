import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { DatasetRole } from './enums.js';

@ObjectType({ description: 'Where pretrained weights came from.' })
export class PretrainedSource {
  @Field() name!: string;
  @Field(() => String, { nullable: true }) version!: string | null;
  @Field(() => String, { nullable: true }) url!: string | null;
  @Field(() => String, { nullable: true }) citation!: string | null;
}

@ObjectType({ description: 'A pretrained encoder shared by heads.' })
export class Backbone {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field() version!: string;
  @Field() architecture!: string;
  @Field(() => String, { nullable: true, description: "Hugging Face config.json's model_type (bert, roberta, xlm-roberta, distilbert, ...), for an imported model." })
  modelType!: string | null;
  @Field(() => [String], { description: "Hugging Face config.json's architectures (e.g. BertForTokenClassification); empty for a model not imported from Hugging Face." })
  architectures!: string[];
  @Field(() => Int, { nullable: true }) layers!: number | null;
  @Field(() => Int) hiddenSize!: number;
  @Field(() => Int) vocabSize!: number;
  @Field(() => Int) maxTokens!: number;
  @Field() pooling!: string;
  @Field() license!: string;
  @Field() fileSha256!: string;
  @Field() tokenizerSha256!: string;
  @Field() createdAt!: Date;
  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Fine-tuned backbones only: the hyperparameters of the run that made it.' })
  hyperparameters!: unknown;
  parentId!: number | null;
  validationCurves!: unknown;
  sourceName!: string;
  sourceVersion!: string | null;
  sourceUrl!: string | null;
  citation!: string | null;
}

@ObjectType({ description: "One point of a fine-tuning run's validation curve: a task's metric and loss after an epoch." })
export class ValidationPoint {
  @Field() task!: string;
  @Field(() => Int) epoch!: number;
  @Field() metric!: string;
  @Field(() => Float) value!: number;
  @Field(() => Float, { nullable: true }) loss!: number | null;
}

@ObjectType({ description: 'Lineage: a dataset a backbone was fine-tuned or validated on.' })
export class BackboneDataset {
  @Field(() => DatasetRole) role!: DatasetRole;
  backboneId!: number;
  datasetId!: number;
}
