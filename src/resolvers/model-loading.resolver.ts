// Mutations that change what the engine serves: load (or switch) a version, unload a model.
import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { LoadedModel } from '../schema/server.type.js';
import type { RequestContext } from './context.js';

@Resolver()
export class ModelLoadingResolver {
  @Authorized('admin')
  @Mutation(() => LoadedModel, {
    description: 'Loads a registered version (default: alias production, else the newest) and switches traffic to it once warmed up; on failure the version serving before keeps serving.',
  })
  async loadModel(@Arg('model') model: string, @Arg('version', () => String, { nullable: true }) version: string | null, @Ctx() ctx: RequestContext): Promise<LoadedModel> {
    const info = await ctx.models.load(model, version);
    return { name: info.name, version: info.version, backbone: info.backbone, heads: info.heads.map((h) => h.name), provider: info.provider };
  }

  @Authorized('admin')
  @Mutation(() => Boolean, { description: 'Stops serving a model after its queued work finishes; true when it was loaded.' })
  unloadModel(@Arg('model') model: string, @Ctx() ctx: RequestContext): Promise<boolean> {
    return ctx.models.unload(model);
  }
}
