import { Field, ID, Int, ObjectType } from 'type-graphql';
import { VersionStatus } from './enums.js';

@ObjectType({ description: 'A named model; its versions are immutable bundles, its aliases point at versions.' })
export class Model {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field() createdAt!: Date;
}

@ObjectType({ description: 'One imported bundle of a model: a backbone and its heads.' })
export class ModelVersion {
  @Field(() => ID) id!: number;
  @Field() version!: string;
  @Field(() => VersionStatus) status!: VersionStatus;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field() license!: string;
  @Field({ description: 'sha256 of bundle.json' }) manifestSha256!: string;
  @Field() createdAt!: Date;
  modelId!: number;
  backboneId!: number;
  parentId!: number | null;
}

@ObjectType()
export class ModelAlias {
  @Field() alias!: string;
  @Field() updatedAt!: Date;
  versionId!: number;
  modelId!: number;
}

@ObjectType({ description: 'A file of a bundle with its hash.' })
export class BundleFile {
  @Field() path!: string;
  @Field() sha256!: string;
  @Field(() => Int) sizeBytes!: number;
}

@ObjectType()
export class ImportResult {
  @Field(() => Model) model!: Model;
  @Field(() => ModelVersion) version!: ModelVersion;
  @Field({ description: 'False when the identical bundle was already registered.' }) created!: boolean;
}
