import { Field, Int, ObjectType } from 'type-graphql';
import { Model } from './model.type.js';

@ObjectType()
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field() hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ObjectType()
export class ModelEdge {
  @Field() cursor!: string;
  @Field(() => Model) node!: Model;
}

@ObjectType({ description: 'A Relay connection over models, ordered by name.' })
export class ModelConnection {
  @Field(() => [ModelEdge]) edges!: ModelEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
  @Field(() => Int) totalCount!: number;
}
