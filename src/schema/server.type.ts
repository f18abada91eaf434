import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType()
export class LoadedModel {
  @Field() name!: string;
  @Field() version!: string;
  @Field() backbone!: string;
  @Field(() => [String]) heads!: string[];
  @Field({ description: 'Execution provider of the backbone (cpu, cuda).' }) provider!: string;
}

@ObjectType({ description: 'This server process.' })
export class ServerInfo {
  @Field() version!: string;
  @Field(() => Int, { description: 'Operating-system process id: with POLYHEAD_WORKERS > 1, which server process answered.' }) pid!: number;
  @Field(() => Float) uptimeSeconds!: number;
  @Field({ description: 'pglite (embedded) or postgresql' }) database!: string;
  @Field() defaultModel!: string;
  @Field(() => [LoadedModel]) loadedModels!: LoadedModel[];
  @Field({ description: 'Where the backbone runs.' }) device!: string;
  @Field(() => Int, { description: 'Texts waiting in the queues of all loaded models.' }) queueDepth!: number;
  @Field(() => Int, { description: 'Backbone batches run since start.' }) batchesRun!: number;
  @Field(() => Float, { description: 'Mean texts per backbone batch since start.' }) meanBatchSize!: number;
}
