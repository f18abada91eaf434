import { Field, ID, ObjectType } from 'type-graphql';
import { DatasetRole, HeadInput, TaskKind } from './enums.js';

@ObjectType({ description: 'A small task model reading the backbone.' })
export class Head {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field(() => TaskKind) task!: TaskKind;
  @Field(() => HeadInput) reads!: HeadInput;
  @Field(() => String, { nullable: true }) file!: string | null;
  @Field(() => String, { nullable: true }) fileSha256!: string | null;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => String, { nullable: true, description: "A translation head's source language (e.g. en)." }) sourceLanguage!: string | null;
  @Field(() => String, { nullable: true, description: "A translation head's target language (e.g. de)." }) targetLanguage!: string | null;
  @Field() createdAt!: Date;
  versionId!: number;
  backboneId!: number;
  labelSetId!: number | null;
}

@ObjectType()
export class LabelSet {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field(() => [String]) labels!: string[];
}

@ObjectType({ description: 'Lineage: a dataset a head used, and how.' })
export class HeadDataset {
  @Field(() => DatasetRole) role!: DatasetRole;
  headId!: number;
  datasetId!: number;
}
