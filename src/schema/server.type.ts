import { Field, Float, ObjectType } from 'type-graphql';

@ObjectType()
export class LoadedModel {
  @Field() name!: string;
  @Field() version!: string;
  @Field() backbone!: string;
  @Field(() => [String]) heads!: string[];
}

@ObjectType({ description: 'This server process.' })
export class ServerInfo {
  @Field() version!: string;
  @Field(() => Float) uptimeSeconds!: number;
  @Field({ description: 'pglite (embedded) or postgresql' }) database!: string;
  @Field() defaultModel!: string;
  @Field(() => [LoadedModel]) loadedModels!: LoadedModel[];
}
