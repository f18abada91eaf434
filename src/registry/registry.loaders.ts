// Per-request DataLoaders over the registry: one query per relation per request, whatever the depth of
// the GraphQL selection (no N+1). Built fresh for each request so nothing is cached across requests.
import DataLoader from 'dataloader';
import type { PrismaClient } from '../generated/prisma/client.js';

function manyBy<V, K extends number>(load: (keys: K[]) => Promise<V[]>, keyOf: (row: V) => K): DataLoader<K, V[]> {
  return new DataLoader(async (keys) => {
    const groups = new Map<K, V[]>(keys.map((k) => [k, []]));
    for (const row of await load([...keys])) groups.get(keyOf(row))?.push(row);
    return keys.map((k) => groups.get(k)!);
  });
}

function oneBy<V extends { id: number }>(load: (ids: number[]) => Promise<V[]>): DataLoader<number, V | null> {
  return new DataLoader(async (ids) => {
    const byId = new Map((await load([...ids])).map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

export function createRegistryLoaders(prisma: PrismaClient) {
  const inIds = (ids: number[]) => ({ in: ids });
  return {
    model: oneBy((ids) => prisma.model.findMany({ where: { id: inIds(ids) } })),
    version: oneBy((ids) => prisma.modelVersion.findMany({ where: { id: inIds(ids) } })),
    backbone: oneBy((ids) => prisma.backbone.findMany({ where: { id: inIds(ids) } })),
    head: oneBy((ids) => prisma.head.findMany({ where: { id: inIds(ids) } })),
    dataset: oneBy((ids) => prisma.dataset.findMany({ where: { id: inIds(ids) } })),
    labelSet: oneBy((ids) => prisma.labelSet.findMany({ where: { id: inIds(ids) } })),
    versionsByModel: manyBy(
      (ids) => prisma.modelVersion.findMany({ where: { modelId: inIds(ids) }, orderBy: { id: 'desc' } }),
      (v) => v.modelId,
    ),
    versionsByBackbone: manyBy(
      (ids) => prisma.modelVersion.findMany({ where: { backboneId: inIds(ids) }, orderBy: { id: 'desc' } }),
      (v) => v.backboneId,
    ),
    childrenByVersion: manyBy(
      (ids) => prisma.modelVersion.findMany({ where: { parentId: inIds(ids) }, orderBy: { id: 'asc' } }),
      (v) => v.parentId!,
    ),
    aliasesByModel: manyBy((ids) => prisma.modelAlias.findMany({ where: { modelId: inIds(ids) }, orderBy: { alias: 'asc' } }), (a) => a.modelId),
    aliasesByVersion: manyBy((ids) => prisma.modelAlias.findMany({ where: { versionId: inIds(ids) }, orderBy: { alias: 'asc' } }), (a) => a.versionId),
    filesByVersion: manyBy((ids) => prisma.bundleFile.findMany({ where: { versionId: inIds(ids) }, orderBy: { path: 'asc' } }), (f) => f.versionId),
    headsByVersion: manyBy((ids) => prisma.head.findMany({ where: { versionId: inIds(ids) }, orderBy: { name: 'asc' } }), (h) => h.versionId),
    headsByBackbone: manyBy((ids) => prisma.head.findMany({ where: { backboneId: inIds(ids) }, orderBy: { id: 'asc' } }), (h) => h.backboneId),
    childrenByBackbone: manyBy((ids) => prisma.backbone.findMany({ where: { parentId: inIds(ids) }, orderBy: { id: 'asc' } }), (b) => b.parentId!),
    backboneDatasetsByBackbone: manyBy((ids) => prisma.backboneDataset.findMany({ where: { backboneId: inIds(ids) } }), (l) => l.backboneId),
    headDatasetsByHead: manyBy((ids) => prisma.headDataset.findMany({ where: { headId: inIds(ids) } }), (l) => l.headId),
    headDatasetsByDataset: manyBy((ids) => prisma.headDataset.findMany({ where: { datasetId: inIds(ids) } }), (l) => l.datasetId),
    evaluationsByHead: manyBy((ids) => prisma.evaluation.findMany({ where: { headId: inIds(ids) }, orderBy: { id: 'asc' } }), (e) => e.headId),
    evaluationsByDataset: manyBy((ids) => prisma.evaluation.findMany({ where: { datasetId: inIds(ids) }, orderBy: { id: 'asc' } }), (e) => e.datasetId),
  };
}

export type RegistryLoaders = ReturnType<typeof createRegistryLoaders>;
