// Managing API keys over GraphQL (admin scope): the new key is shown once.
import { Arg, Authorized, Ctx, Field, ID, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import type { RequestContext } from './context.js';

@ObjectType({ description: 'An API key without its secret.' })
class ApiKeyInfo {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field({ description: 'Public prefix: ph_<prefix>_...' }) prefix!: string;
  @Field(() => [String]) scopes!: string[];
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true }) revokedAt!: Date | null;
  @Field(() => Date, { nullable: true }) lastUsedAt!: Date | null;
}

@ObjectType()
class CreatedApiKey {
  @Field(() => ID) id!: number;
  @Field() name!: string;
  @Field(() => [String]) scopes!: string[];
  @Field({ description: 'The key itself. It is not stored and cannot be shown again.' }) key!: string;
}

@Resolver()
export class ApiKeyResolver {
  @Authorized('admin')
  @Query(() => [ApiKeyInfo])
  apiKeys(@Ctx() ctx: RequestContext) {
    return ctx.apiKeys.list();
  }

  @Authorized('admin')
  @Mutation(() => CreatedApiKey, { description: 'Scopes: read, write (registry changes), train (trainHead), admin (keys, model loading; everything).' })
  createApiKey(@Arg('name') name: string, @Arg('scopes', () => [String]) scopes: string[], @Ctx() ctx: RequestContext) {
    return ctx.apiKeys.create(name, scopes);
  }

  @Authorized('admin')
  @Mutation(() => Boolean, { description: 'True when the key existed and was active.' })
  async revokeApiKey(@Arg('id', () => Int) id: number, @Ctx() ctx: RequestContext) {
    const revoked = await ctx.apiKeys.revoke(id);
    ctx.authenticator.forget();
    return revoked;
  }
}
