// The task queries: thin resolvers that check input, then ask the per-request inference loader.
import { Arg, Ctx, FieldResolver, Float, Info, Int, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLResolveInfo } from 'graphql';
import { PolyheadError } from '../errors.js';
import type { Classification as ClassificationOutput, Entity as EntityOutput } from '../engine/heads/head.js';
import type { TextResult } from '../engine/serving-model.js';
import { Classification, Entity, TextAnalysis, Translation } from '../schema/inference.type.js';
import type { RequestContext } from './context.js';
import { headsSelected } from './selection.js';

/** What TextAnalysis's field resolvers read: the engine's result for the text. */
interface AnalysisRoot extends TextAnalysis {
  result: TextResult;
}

function normalized(vector: Float32Array, normalize: boolean): number[] {
  let norm = 1;
  if (normalize) {
    let sum = 0;
    for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
    norm = Math.sqrt(sum) || 1;
  }
  // A plain loop: Array.from with a mapping callback cost 5x as much, once per text per request.
  const values: number[] = [];
  for (let i = 0; i < vector.length; i++) values.push(vector[i]! / norm);
  return values;
}

async function run(ctx: RequestContext, model: string | null | undefined, texts: readonly string[], heads: readonly string[]): Promise<TextResult[]> {
  ctx.inference.checkTexts(texts);
  return infer(ctx, model, texts, heads);
}

async function infer(ctx: RequestContext, model: string | null | undefined, texts: readonly string[], heads: readonly string[]): Promise<TextResult[]> {
  const name = model ?? ctx.inference.defaultModel;
  ctx.inference.checkModel(name, heads);
  return ctx.inferenceLoader.loadMany(texts.map((text) => ({ model: name, text, heads }))).then((results) =>
    results.map((result) => {
      if (result instanceof Error) throw result;
      return result;
    }),
  );
}

/** The text's sentence embedding; HEAD_NOT_FOUND for a model whose graph gives none (a task model). */
function embeddingOf(result: TextResult, model: string): Float32Array {
  if (!result.embedding) throw new PolyheadError('HEAD_NOT_FOUND', `model "${model}" gives no sentence embedding: its graph outputs task logits only`);
  return result.embedding;
}

function headOutput<T>(result: TextResult, head: string): T {
  const output = result.heads.get(head);
  if (output === undefined) throw new PolyheadError('HEAD_NOT_FOUND', `head "${head}" did not run for this text`);
  return output as T;
}

/** Translations of `texts` by `model`, through the request's translation loader (one engine call per model and settings). */
async function translations(
  ctx: RequestContext,
  model: string,
  texts: readonly string[],
  beams: number | null | undefined,
  maxNewTokens: number | null | undefined,
  minNewTokens: number | null | undefined,
) {
  const settings = ctx.inference.translationSettings(beams, maxNewTokens, minNewTokens);
  ctx.inference.checkTranslator(model);
  const results = await ctx.translationLoader.loadMany(texts.map((text) => ({ model, text, ...settings })));
  return results.map((result) => {
    if (result instanceof Error) throw result;
    return result;
  });
}

@Resolver()
export class InferenceResolver {
  @Query(() => [Translation], { description: 'Each text translated by a sequence-to-sequence model (Marian / opus-mt), decoded step by step in one batch with every other request.' })
  async translate(
    @Arg('texts', () => [String]) texts: string[],
    @Arg('model') model: string,
    @Arg('beams', () => Int, { defaultValue: 1, description: '1 = greedy search; more = beam search (at most POLYHEAD_MAX_BEAMS).' }) beams: number,
    @Arg('maxNewTokens', () => Int, { nullable: true, description: 'Tokens to generate at most; default and cap POLYHEAD_MAX_NEW_TOKENS.' }) maxNewTokens: number | null,
    @Arg('minNewTokens', () => Int, { nullable: true, description: 'No end-of-sequence before this many tokens (default 0).' }) minNewTokens: number | null,
    @Ctx() ctx: RequestContext,
  ) {
    ctx.inference.checkTexts(texts);
    return translations(ctx, model, texts, beams, maxNewTokens, minNewTokens);
  }

  @Query(() => [TextAnalysis], { description: 'Several tasks about several texts: the backbone runs once per text, only the selected heads run.' })
  async analyze(
    @Arg('texts', () => [String]) texts: string[],
    @Arg('model', () => String, { nullable: true }) model: string | null,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<AnalysisRoot[]> {
    const name = model ?? ctx.inference.defaultModel;
    const results = await run(ctx, name, texts, headsSelected(info));
    return texts.map((text, i) => ({ text, model: name, tokenCount: results[i]!.tokenCount, truncated: results[i]!.truncated, result: results[i]! }));
  }

  @Query(() => [Classification], { description: 'The sentiment head (labels negative / positive) on each text.' })
  async sentiment(@Arg('texts', () => [String]) texts: string[], @Arg('model', () => String, { nullable: true }) model: string | null, @Ctx() ctx: RequestContext) {
    return (await run(ctx, model, texts, ['sentiment'])).map((result) => headOutput<ClassificationOutput>(result, 'sentiment'));
  }

  @Query(() => [[Entity]], { description: 'Named entities (PER, ORG, LOC, ...) in each text, with character offsets.' })
  async entities(@Arg('texts', () => [String]) texts: string[], @Arg('model', () => String, { nullable: true }) model: string | null, @Ctx() ctx: RequestContext) {
    return (await run(ctx, model, texts, ['entities'])).map((result) => headOutput<EntityOutput[]>(result, 'entities'));
  }

  @Query(() => [[Float]], { description: 'Sentence embeddings from the backbone (unit length unless normalize is false).' })
  async embed(
    @Arg('texts', () => [String]) texts: string[],
    @Arg('model', () => String, { nullable: true }) model: string | null,
    @Arg('normalize', () => Boolean, { defaultValue: true }) normalize: boolean,
    @Ctx() ctx: RequestContext,
  ) {
    const name = model ?? ctx.inference.defaultModel;
    ctx.inference.checkEmbedding(name);
    return (await run(ctx, name, texts, [])).map((result) => normalized(embeddingOf(result, name), normalize));
  }

  @Query(() => [Float], { description: 'Cosine similarity between the query and each candidate.' })
  async similarity(
    @Arg('query') query: string,
    @Arg('candidates', () => [String]) candidates: string[],
    @Arg('model', () => String, { nullable: true }) model: string | null,
    @Ctx() ctx: RequestContext,
  ) {
    ctx.inference.checkTexts([query], 'query');
    ctx.inference.checkTexts(candidates, 'candidates');
    const name = model ?? ctx.inference.defaultModel;
    ctx.inference.checkEmbedding(name);
    const [queryResult, ...candidateResults] = await infer(ctx, name, [query, ...candidates], []);
    const q = normalized(embeddingOf(queryResult!, name), true);
    return candidateResults.map((result) => {
      const c = normalized(embeddingOf(result, name), true);
      let dot = 0;
      for (let i = 0; i < q.length; i++) dot += q[i]! * c[i]!;
      return dot;
    });
  }

}

@Resolver(() => TextAnalysis)
export class TextAnalysisResolver {
  @FieldResolver(() => Classification, { description: 'The sentiment head (negative / positive).' })
  sentiment(@Root() root: AnalysisRoot) {
    return headOutput<ClassificationOutput>(root.result, 'sentiment');
  }

  @FieldResolver(() => [Entity], { description: 'The entities head: PER, ORG, LOC, ... with character offsets.' })
  entities(@Root() root: AnalysisRoot) {
    return headOutput<EntityOutput[]>(root.result, 'entities');
  }

  @FieldResolver(() => [Float], { description: "The backbone's sentence embedding." })
  embedding(@Root() root: AnalysisRoot, @Arg('normalize', () => Boolean, { defaultValue: true }) normalize: boolean) {
    return normalized(embeddingOf(root.result, root.model), normalize);
  }

  @FieldResolver(() => Translation, { description: 'The text translated by a translation model (not the model analyze names): one request can ask sentiment, entities and a translation of the same texts.' })
  async translation(
    @Root() root: AnalysisRoot,
    @Arg('model') model: string,
    @Arg('beams', () => Int, { defaultValue: 1 }) beams: number,
    @Arg('maxNewTokens', () => Int, { nullable: true }) maxNewTokens: number | null,
    @Arg('minNewTokens', () => Int, { nullable: true }) minNewTokens: number | null,
    @Ctx() ctx: RequestContext,
  ) {
    return (await translations(ctx, model, [root.text], beams, maxNewTokens, minNewTokens))[0]!;
  }

  @FieldResolver(() => Classification, { description: 'Any classification head of the model, by name.' })
  classify(@Root() root: AnalysisRoot, @Arg('head') head: string) {
    const output = headOutput<ClassificationOutput | EntityOutput[] | Float32Array>(root.result, head);
    if (!('label' in output)) throw new PolyheadError('HEAD_NOT_FOUND', `head "${head}" is not a classification head`);
    return output;
  }
}
