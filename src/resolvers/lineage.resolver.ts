// Field resolvers that make the registry navigable both ways; each goes through a per-request loader.
import { Arg, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { Backbone, BackboneDataset, PretrainedSource, ValidationPoint } from '../schema/backbone.type.js';
import { Dataset, Evaluation } from '../schema/dataset.type.js';
import { Head, HeadDataset, LabelSet } from '../schema/head.type.js';
import { BundleFile, Model, ModelAlias, ModelVersion } from '../schema/model.type.js';
import type { RequestContext } from './context.js';

@Resolver(() => Model)
export class ModelLineageResolver {
  @FieldResolver(() => [ModelVersion], { description: 'Newest first.' })
  versions(@Root() model: Model, @Ctx() ctx: RequestContext) {
    return ctx.loaders.versionsByModel.load(model.id);
  }

  @FieldResolver(() => [ModelAlias])
  aliases(@Root() model: Model, @Ctx() ctx: RequestContext) {
    return ctx.loaders.aliasesByModel.load(model.id);
  }

  @FieldResolver(() => ModelVersion, { nullable: true, description: 'A version by version string or alias; without one, the version served (alias production, else the newest).' })
  async version(@Root() model: Model, @Arg('ref', () => String, { nullable: true }) ref: string | null, @Ctx() ctx: RequestContext) {
    const [versions, aliases] = await Promise.all([ctx.loaders.versionsByModel.load(model.id), ctx.loaders.aliasesByModel.load(model.id)]);
    const alias = aliases.find((a) => a.alias === (ref ?? 'production'));
    if (alias) return versions.find((v) => v.id === alias.versionId) ?? null;
    return ref ? (versions.find((v) => v.version === ref) ?? null) : (versions[0] ?? null);
  }
}

@Resolver(() => ModelVersion)
export class VersionLineageResolver {
  @FieldResolver(() => Model)
  model(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return ctx.loaders.model.load(version.modelId);
  }

  @FieldResolver(() => Backbone)
  backbone(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return ctx.loaders.backbone.load(version.backboneId);
  }

  @FieldResolver(() => [Head])
  heads(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return ctx.loaders.headsByVersion.load(version.id);
  }

  @FieldResolver(() => [String], { description: 'Aliases pointing at this version.' })
  async aliases(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return (await ctx.loaders.aliasesByVersion.load(version.id)).map((a) => a.alias);
  }

  @FieldResolver(() => ModelVersion, { nullable: true, description: 'The version this one was derived from.' })
  parent(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return version.parentId === null ? null : ctx.loaders.version.load(version.parentId);
  }

  @FieldResolver(() => [ModelVersion], { description: 'Versions derived from this one.' })
  children(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return ctx.loaders.childrenByVersion.load(version.id);
  }

  @FieldResolver(() => [BundleFile])
  files(@Root() version: ModelVersion, @Ctx() ctx: RequestContext) {
    return ctx.loaders.filesByVersion.load(version.id);
  }
}

@Resolver(() => ModelAlias)
export class AliasLineageResolver {
  @FieldResolver(() => ModelVersion)
  version(@Root() alias: ModelAlias, @Ctx() ctx: RequestContext) {
    return ctx.loaders.version.load(alias.versionId);
  }
}

@Resolver(() => Backbone)
export class BackboneLineageResolver {
  @FieldResolver(() => PretrainedSource, { description: 'Where the pretrained weights came from.' })
  pretrainedSource(@Root() backbone: Backbone): PretrainedSource {
    return { name: backbone.sourceName, version: backbone.sourceVersion, url: backbone.sourceUrl, citation: backbone.citation };
  }

  @FieldResolver(() => [Head], { description: 'Every head, in every model version, that reads this backbone.' })
  heads(@Root() backbone: Backbone, @Ctx() ctx: RequestContext) {
    return ctx.loaders.headsByBackbone.load(backbone.id);
  }

  @FieldResolver(() => [ModelVersion])
  modelVersions(@Root() backbone: Backbone, @Ctx() ctx: RequestContext) {
    return ctx.loaders.versionsByBackbone.load(backbone.id);
  }

  @FieldResolver(() => Backbone, { nullable: true, description: 'The backbone this one was fine-tuned from; null for pretrained weights taken as they are.' })
  parent(@Root() backbone: Backbone, @Ctx() ctx: RequestContext) {
    return backbone.parentId === null ? null : ctx.loaders.backbone.load(backbone.parentId);
  }

  @FieldResolver(() => [Backbone], { description: 'Backbones fine-tuned from this one.' })
  children(@Root() backbone: Backbone, @Ctx() ctx: RequestContext) {
    return ctx.loaders.childrenByBackbone.load(backbone.id);
  }

  @FieldResolver(() => [BackboneDataset], { description: 'Fine-tuned backbones only: the datasets of the run (training, including unlabelled text; validation).' })
  datasets(@Root() backbone: Backbone, @Ctx() ctx: RequestContext) {
    return ctx.loaders.backboneDatasetsByBackbone.load(backbone.id);
  }

  @FieldResolver(() => [ValidationPoint], { description: "Fine-tuned backbones only: each task's validation metric and loss per epoch." })
  validationCurves(@Root() backbone: Backbone): ValidationPoint[] {
    const points = Array.isArray(backbone.validationCurves) ? (backbone.validationCurves as Array<Partial<ValidationPoint>>) : [];
    return points.map((p) => ({ task: String(p.task), epoch: Number(p.epoch), metric: String(p.metric), value: Number(p.value), loss: typeof p.loss === 'number' ? p.loss : null }));
  }
}

@Resolver(() => BackboneDataset)
export class BackboneDatasetResolver {
  @FieldResolver(() => Dataset)
  dataset(@Root() link: BackboneDataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.dataset.load(link.datasetId);
  }

  @FieldResolver(() => Backbone)
  backbone(@Root() link: BackboneDataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.backbone.load(link.backboneId);
  }
}

@Resolver(() => Head)
export class HeadLineageResolver {
  @FieldResolver(() => Backbone)
  backbone(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return ctx.loaders.backbone.load(head.backboneId);
  }

  @FieldResolver(() => ModelVersion)
  modelVersion(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return ctx.loaders.version.load(head.versionId);
  }

  @FieldResolver(() => LabelSet, { nullable: true })
  labelSet(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return head.labelSetId === null ? null : ctx.loaders.labelSet.load(head.labelSetId);
  }

  @FieldResolver(() => [String], { description: 'Output labels in order; empty for embedding heads.' })
  async labels(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return head.labelSetId === null ? [] : ((await ctx.loaders.labelSet.load(head.labelSetId))?.labels ?? []);
  }

  @FieldResolver(() => [HeadDataset], { description: 'Datasets this head was trained, validated or evaluated on.' })
  datasets(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return ctx.loaders.headDatasetsByHead.load(head.id);
  }

  @FieldResolver(() => [Dataset], { description: 'Datasets this head was trained on.' })
  async trainingData(@Root() head: Head, @Ctx() ctx: RequestContext) {
    const links = (await ctx.loaders.headDatasetsByHead.load(head.id)).filter((l) => l.role === 'TRAINING');
    return (await ctx.loaders.dataset.loadMany(links.map((l) => l.datasetId))).filter((d) => d && !(d instanceof Error));
  }

  @FieldResolver(() => [Evaluation])
  evaluations(@Root() head: Head, @Ctx() ctx: RequestContext) {
    return ctx.loaders.evaluationsByHead.load(head.id);
  }
}

@Resolver(() => HeadDataset)
export class HeadDatasetResolver {
  @FieldResolver(() => Dataset)
  dataset(@Root() link: HeadDataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.dataset.load(link.datasetId);
  }

  @FieldResolver(() => Head)
  head(@Root() link: HeadDataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.head.load(link.headId);
  }
}

@Resolver(() => Dataset)
export class DatasetLineageResolver {
  @FieldResolver(() => [HeadDataset], { description: 'Heads that used this dataset, and how.' })
  heads(@Root() dataset: Dataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.headDatasetsByDataset.load(dataset.id);
  }

  @FieldResolver(() => [Evaluation])
  evaluations(@Root() dataset: Dataset, @Ctx() ctx: RequestContext) {
    return ctx.loaders.evaluationsByDataset.load(dataset.id);
  }
}

@Resolver(() => Evaluation)
export class EvaluationLineageResolver {
  @FieldResolver(() => Head)
  head(@Root() evaluation: Evaluation, @Ctx() ctx: RequestContext) {
    return ctx.loaders.head.load(evaluation.headId);
  }

  @FieldResolver(() => Dataset)
  dataset(@Root() evaluation: Evaluation, @Ctx() ctx: RequestContext) {
    return ctx.loaders.dataset.load(evaluation.datasetId);
  }
}
