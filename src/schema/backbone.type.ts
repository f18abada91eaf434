import { Field, ID, Int, ObjectType } from 'type-graphql';

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
  sourceName!: string;
  sourceVersion!: string | null;
  sourceUrl!: string | null;
  citation!: string | null;
}
