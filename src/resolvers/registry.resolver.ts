// Entry points into the registry: browsing queries and the mutations that change it.
import { Arg, Args, ArgsType, Authorized, Ctx, Field, Int, Mutation, Query, Resolver } from 'type-graphql';
import { OutsideRootsError, resolveUnderRoots } from '../bundle/files.js';
import { badInput, PolyheadError } from '../errors.js';
import { Backbone } from '../schema/backbone.type.js';
import { ModelConnection } from '../schema/connection.type.js';
import { Dataset, Evaluation } from '../schema/dataset.type.js';
import { TaskKind } from '../schema/enums.js';
import { ImportResult, Model, ModelVersion } from '../schema/model.type.js';
import type { RequestContext } from './context.js';

const maxPageSize = 100;

@ArgsType()
class ModelsArgs {
  @Field(() => Int, { nullable: true, description: `Page size, default 20, at most ${maxPageSize}.` }) first?: number;
  @Field(() => String, { nullable: true, description: 'Cursor of the last edge of the previous page.' }) after?: string;
  @Field(() => TaskKind, { nullable: true, description: 'Only models with a head of this kind.' }) task?: TaskKind;
  @Field(() => String, { nullable: true, description: 'Case-insensitive substring of the name or description.' }) search?: string;
}

const encodeCursor = (name: string) => Buffer.from(`model:${name}`).toString('base64url');
function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('model:')) throw badInput('after: not a cursor returned by models');
  return text.slice('model:'.length);
}

@Resolver()
export class RegistryResolver {
  @Query(() => ModelConnection, { description: 'Models in the registry, a page at a time (Relay connection).' })
  async models(@Args() args: ModelsArgs, @Ctx() ctx: RequestContext): Promise<ModelConnection> {
    const first = args.first ?? 20;
    if (first < 1 || first > maxPageSize) throw badInput(`first: between 1 and ${maxPageSize}`);
    const page = await ctx.registry.listModels({
      first,
      afterName: args.after ? decodeCursor(args.after) : undefined,
      task: args.task,
      search: args.search,
    });
    const edges = page.models.map((node) => ({ cursor: encodeCursor(node.name), node }));
    return {
      edges,
      totalCount: page.totalCount,
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: Boolean(args.after),
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }

  @Query(() => Model, { nullable: true })
  model(@Arg('name') name: string, @Ctx() ctx: RequestContext) {
    return ctx.registry.modelByName(name);
  }

  @Query(() => [Backbone])
  backbones(@Ctx() ctx: RequestContext) {
    return ctx.registry.prisma.backbone.findMany({ orderBy: [{ name: 'asc' }, { version: 'asc' }] });
  }

  @Query(() => Backbone, { nullable: true, description: 'A backbone by name; without a version, the newest registered.' })
  backbone(@Arg('name') name: string, @Arg('version', () => String, { nullable: true }) version: string | null, @Ctx() ctx: RequestContext) {
    return ctx.registry.prisma.backbone.findFirst({ where: { name, ...(version ? { version } : {}) }, orderBy: { id: 'desc' } });
  }

  @Query(() => [Dataset])
  datasets(@Ctx() ctx: RequestContext) {
    return ctx.registry.prisma.dataset.findMany({ orderBy: { name: 'asc' } });
  }

  @Query(() => Dataset, { nullable: true })
  dataset(@Arg('name') name: string, @Ctx() ctx: RequestContext) {
    return ctx.registry.prisma.dataset.findUnique({ where: { name } });
  }

  @Query(() => [Evaluation], { description: 'Evaluations, optionally of one model (its served version) or on one dataset.' })
  async evaluations(
    @Arg('model', () => String, { nullable: true }) model: string | null,
    @Arg('dataset', () => String, { nullable: true }) dataset: string | null,
    @Ctx() ctx: RequestContext,
  ) {
    const version = model ? await ctx.registry.resolveVersion(model) : null;
    return ctx.registry.prisma.evaluation.findMany({
      where: { ...(version ? { head: { versionId: version.id } } : {}), ...(dataset ? { dataset: { name: dataset } } : {}) },
      orderBy: { id: 'asc' },
      take: 1000,
    });
  }

  @Authorized('write')
  @Mutation(() => ImportResult, { description: 'Registers a bundle folder on the server (see DESIGN.md for the format).' })
  async importBundle(@Arg('path') path: string, @Ctx() ctx: RequestContext): Promise<ImportResult> {
    const folder = await resolveUnderRoots(path, ctx.server.bundleRoots).catch((error: Error) => {
      throw new PolyheadError(error instanceof OutsideRootsError ? 'FORBIDDEN' : 'BUNDLE_INVALID', error.message);
    });
    const result = await ctx.registry.importBundle(folder);
    const version = await ctx.registry.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId }, include: { model: true } });
    return { model: version.model, version, created: result.created };
  }

  @Authorized('write')
  @Mutation(() => ImportResult, {
    description:
      'Registers a Hugging Face model folder on the server (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx; for sentence-transformers modules.json and 1_Pooling): an encoder, or a *ForSequenceClassification / *ForTokenClassification model whose head is inside the graph. The folder must lie below POLYHEAD_BUNDLE_ROOTS.',
  })
  async importHuggingFace(
    @Arg('path') path: string,
    @Arg('name', () => String, { nullable: true, description: "Model name; default: the folder's name, lower-cased." }) name: string | null,
    @Arg('version', () => String, { nullable: true, description: 'Default 1.0.0.' }) version: string | null,
    @Arg('head', () => String, { nullable: true, description: "A task model's head name; default classification (sequence) or entities (tokens). `sentiment` makes an SST-2 model answer sentiment(model:)." })
    head: string | null,
    @Arg('license', () => String, { nullable: true, description: "The weights' licence; default: README.md's front matter, else unknown." }) license: string | null,
    @Arg('source', () => String, { nullable: true, description: 'Where the weights came from: <repo id>[@revision] on the Hugging Face Hub.' }) source: string | null,
    @Arg('sourceLanguage', () => String, { nullable: true, description: "A translation model's source language; default: from an opus-mt-xx-yy folder name, else tokenizer_config.json." })
    sourceLanguage: string | null,
    @Arg('targetLanguage', () => String, { nullable: true, description: "A translation model's target language." }) targetLanguage: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<ImportResult> {
    const folder = await resolveUnderRoots(path, ctx.server.bundleRoots).catch((error: Error) => {
      throw new PolyheadError(error instanceof OutsideRootsError ? 'FORBIDDEN' : 'BUNDLE_INVALID', error.message);
    });
    const result = await ctx.registry.importHuggingFace(folder, {
      name: name ?? undefined,
      version: version ?? undefined,
      head: head ?? undefined,
      license: license ?? undefined,
      source: source ?? undefined,
      sourceLanguage: sourceLanguage ?? undefined,
      targetLanguage: targetLanguage ?? undefined,
      bundleDir: ctx.server.bundleDir,
    });
    const registered = await ctx.registry.prisma.modelVersion.findUniqueOrThrow({ where: { id: result.versionId }, include: { model: true } });
    return { model: registered.model, version: registered, created: result.created };
  }

  @Authorized('write')
  @Mutation(() => ModelVersion, {
    description: 'Points an alias (e.g. production) at a version. A model loaded by that alias (or by none: production) moves with it on every replica; if the new version fails to load, the alias stays where it was.',
  })
  setAlias(@Arg('model') model: string, @Arg('alias') alias: string, @Arg('version') version: string, @Ctx() ctx: RequestContext) {
    return ctx.desiredState.setAlias(model, alias, version);
  }

  @Authorized('write')
  @Mutation(() => Boolean, { description: 'True when the alias existed.' })
  removeAlias(@Arg('model') model: string, @Arg('alias') alias: string, @Ctx() ctx: RequestContext) {
    return ctx.registry.removeAlias(model, alias);
  }

  @Authorized('write')
  @Mutation(() => Boolean)
  async deleteModelVersion(@Arg('model') model: string, @Arg('version') version: string, @Ctx() ctx: RequestContext) {
    const serving = ctx.server.loadedModels().find((m) => m.name === model && m.version === version);
    if (serving) throw new PolyheadError('BAD_USER_INPUT', `${model} ${version} is loaded and serving: unload it first`);
    return ctx.registry.deleteVersion(model, version);
  }
}
