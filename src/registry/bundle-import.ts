// Registers a bundle folder in the registry in one transaction: a bad bundle changes nothing,
// the same bundle again changes nothing, a changed file under an existing version is refused.
// Every file and the bundle.json are stored as blobs by content first, so any replica can load the version.
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { PolyheadError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { BundleValidationError, manifestFiles, parseBundleManifest, type BundleManifest } from '../bundle/manifest.js';
import { hashBundleFiles, resolveInside, type HashedFile } from '../bundle/files.js';
import { BlobCorruptError, storeBlob } from './blob-store.js';

type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export interface ImportResult {
  modelName: string;
  version: string;
  versionId: number;
  /** False when the identical bundle was already registered. */
  created: boolean;
}

export interface LoadedBundle {
  root: string;
  manifest: BundleManifest;
  manifestSha256: string;
  files: HashedFile[];
}

/** Reads and checks a bundle folder without touching the registry. */
export async function readBundle(path: string): Promise<LoadedBundle> {
  let root: string;
  try {
    root = await realpath(path);
  } catch {
    throw new PolyheadError('BUNDLE_INVALID', `bundle folder not found: ${path}`);
  }
  let text: Buffer;
  try {
    text = await readFile(join(root, 'bundle.json'));
  } catch {
    throw new PolyheadError('BUNDLE_INVALID', `no bundle.json in ${path}`);
  }
  try {
    const manifest = parseBundleManifest(text.toString('utf8'));
    const files = await hashBundleFiles(root, manifestFiles(manifest));
    return { root, manifest, files, manifestSha256: createHash('sha256').update(text).digest('hex') };
  } catch (error) {
    if (error instanceof BundleValidationError) throw new PolyheadError('BUNDLE_INVALID', error.message, { problems: error.problems });
    throw new PolyheadError('BUNDLE_INVALID', `invalid bundle: ${(error as Error).message}`);
  }
}

/** Labelled examples to store with a dataset the bundle declares (when the registry creates it). */
export interface StoredExample {
  split: string;
  text: string;
  label?: string;
  entities?: Array<{ start: number; end: number; label: string }>;
}

export async function importBundle(prisma: PrismaClient, path: string, examples: Record<string, StoredExample[]> = {}): Promise<ImportResult> {
  const bundle = await readBundle(path);
  await storeBundleFiles(prisma, bundle);
  return prisma.$transaction(
    async (tx) => {
      // Imports take turns: two processes registering the same bundle at once (the built-in model when a
      // cluster starts, or two servers on one database) would otherwise both create its model and one fail.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${importLockId})`;
      return registerBundle(tx, bundle, examples);
    },
    { timeout: 60_000 },
  );
}

/**
 * Stores the bundle's files and bundle.json as blobs, before (not inside) the registration transaction: each
 * blob commits in its own transaction, so tens of MB are not written while the import lock is held. Blobs are
 * content-addressed, so those left by an import that fails afterwards are harmless: no row points at them
 * until a version with the same content registers them, and storing them again then writes nothing. Storing
 * also what an existing version already has fills in the blobs of versions registered before they were kept.
 */
async function storeBundleFiles(prisma: PrismaClient, bundle: LoadedBundle): Promise<void> {
  const files = [{ path: 'bundle.json', sha256: bundle.manifestSha256 }, ...bundle.files];
  for (const file of files) {
    try {
      await storeBlob(prisma, await resolveInside(bundle.root, file.path), file.sha256);
    } catch (error) {
      if (error instanceof BlobCorruptError) throw new PolyheadError('BUNDLE_INVALID', `${file.path} changed while the bundle was being imported`, { file: file.path });
      throw error;
    }
  }
}

/** Advisory lock key of bundle imports (the migration runner uses another). */
const importLockId = 72_707_370;

const taskEnum = {
  classification: 'CLASSIFICATION',
  token_classification: 'TOKEN_CLASSIFICATION',
  embedding: 'EMBEDDING',
  generation: 'GENERATION',
} as const;
const readsEnum = { pooled: 'POOLED', tokens: 'TOKENS', graph: 'GRAPH' } as const;
const roleEnum = { training: 'TRAINING', validation: 'VALIDATION', evaluation: 'EVALUATION' } as const;

async function registerBundle(tx: Tx, bundle: LoadedBundle, examples: Record<string, StoredExample[]>): Promise<ImportResult> {
  const { manifest } = bundle;
  const sha = new Map(bundle.files.map((f) => [f.path, f.sha256]));
  const model = await tx.model.upsert({
    where: { name: manifest.name },
    create: { name: manifest.name, description: manifest.description },
    update: {},
  });
  const existing = await tx.modelVersion.findUnique({
    where: { modelId_version: { modelId: model.id, version: manifest.version } },
    include: { files: true },
  });
  if (existing) {
    assertSameFiles(manifest, existing.files, bundle.files, existing.manifestSha256 === bundle.manifestSha256);
    return { modelName: model.name, version: existing.version, versionId: existing.id, created: false };
  }

  // Datasets first: a fine-tuned backbone's lineage names them.
  const datasetIds = new Map<string, number>();
  for (const dataset of manifest.datasets) {
    const { id, created } = await findOrCreateDataset(tx, dataset);
    datasetIds.set(dataset.name, id);
    const stored = examples[dataset.name];
    if (created && stored?.length) {
      await tx.datasetExample.createMany({
        data: stored.map((e) => ({ datasetId: id, split: e.split, text: e.text, label: e.label ?? null, entities: e.entities ?? undefined })),
      });
    }
  }

  const backbone = await findOrCreateBackbone(tx, manifest, sha.get(manifest.backbone.file)!, sha.get(manifest.tokenizer)!, datasetIds);
  const parent = manifest.parent
    ? await tx.modelVersion.findUnique({ where: { modelId_version: { modelId: model.id, version: manifest.parent } } })
    : null;
  if (manifest.parent && !parent) {
    throw new PolyheadError('BUNDLE_INVALID', `parent: version ${manifest.parent} of model ${manifest.name} is not registered`);
  }
  const version = await tx.modelVersion.create({
    data: {
      modelId: model.id,
      version: manifest.version,
      description: manifest.description,
      license: manifest.license,
      bundlePath: bundle.root,
      manifestSha256: bundle.manifestSha256,
      backboneId: backbone.id,
      parentId: parent?.id,
      files: { create: bundle.files.map((f) => ({ path: f.path, sha256: f.sha256, sizeBytes: f.sizeBytes })) },
    },
  });

  const headIds = new Map<string, number>();
  for (const head of manifest.heads) {
    const labelSetId = head.labels ? await findOrCreateLabelSet(tx, head.labels) : undefined;
    const created = await tx.head.create({
      data: {
        versionId: version.id,
        name: head.name,
        task: taskEnum[head.task],
        reads: readsEnum[head.reads],
        file: head.file,
        fileSha256: head.file ? sha.get(head.file) : undefined,
        description: head.description,
        sourceLanguage: head.languages?.source,
        targetLanguage: head.languages?.target,
        backboneId: backbone.id,
        labelSetId,
        datasets: { create: head.datasets.map((d) => ({ datasetId: datasetIds.get(d.name)!, role: roleEnum[d.role] })) },
      },
    });
    headIds.set(head.name, created.id);
  }
  if (manifest.evaluations.length) {
    await tx.evaluation.createMany({
      data: manifest.evaluations.map((e) => ({
        headId: headIds.get(e.head)!,
        datasetId: datasetIds.get(e.dataset)!,
        split: e.split,
        metric: e.metric,
        value: e.value,
        sampleCount: e.samples,
      })),
    });
  }
  return { modelName: model.name, version: version.version, versionId: version.id, created: true };
}

function assertSameFiles(manifest: BundleManifest, registered: HashedFile[], incoming: HashedFile[], sameManifest: boolean) {
  const before = new Map(registered.map((f) => [f.path, f.sha256]));
  for (const file of incoming) {
    const sha = before.get(file.path);
    if (sha !== file.sha256) {
      throw new PolyheadError(
        'BUNDLE_CONFLICT',
        `${manifest.name} ${manifest.version} is already registered and ${file.path} ${sha ? 'has changed' : 'is new'}: publish a new version instead`,
        { file: file.path },
      );
    }
  }
  if (!sameManifest || registered.length !== incoming.length) {
    throw new PolyheadError('BUNDLE_CONFLICT', `${manifest.name} ${manifest.version} is already registered with a different bundle.json: publish a new version instead`, { file: 'bundle.json' });
  }
}

async function findOrCreateBackbone(tx: Tx, manifest: BundleManifest, fileSha256: string, tokenizerSha256: string, datasetIds: Map<string, number>) {
  const b = manifest.backbone;
  const existing = await tx.backbone.findUnique({ where: { name_version: { name: b.name, version: b.version } } });
  if (existing) {
    if (existing.fileSha256 !== fileSha256 || existing.tokenizerSha256 !== tokenizerSha256) {
      throw new PolyheadError('BUNDLE_CONFLICT', `backbone ${b.name} ${b.version} is already registered with different weights or tokenizer`, { file: b.file });
    }
    return existing;
  }
  const parent = b.parent ? await tx.backbone.findUnique({ where: { name_version: { name: b.parent.name, version: b.parent.version } } }) : null;
  if (b.parent && !parent) throw new PolyheadError('BUNDLE_INVALID', `backbone.parent: backbone ${b.parent.name} ${b.parent.version} is not registered`);
  const tuning = b.fineTuning;
  return tx.backbone.create({
    data: {
      parentId: parent?.id,
      hyperparameters: tuning ? (tuning.hyperparameters as object) : undefined,
      validationCurves: tuning ? tuning.validationCurves : undefined,
      datasets: tuning ? { create: tuning.datasets.map((d) => ({ datasetId: datasetIds.get(d.name)!, role: roleEnum[d.role] })) } : undefined,
      name: b.name,
      version: b.version,
      architecture: b.architecture,
      modelType: b.modelType,
      architectures: b.architectures,
      layers: b.layers,
      hiddenSize: b.hiddenSize,
      vocabSize: b.vocabSize,
      maxTokens: b.maxTokens,
      pooling: b.pooling,
      sourceName: b.source.name,
      sourceVersion: b.source.version,
      sourceUrl: b.source.url,
      citation: b.source.citation,
      license: b.license,
      fileSha256,
      tokenizerSha256,
    },
  });
}

async function findOrCreateDataset(tx: Tx, d: BundleManifest['datasets'][number]): Promise<{ id: number; created: boolean }> {
  const existing = await tx.dataset.findUnique({ where: { name: d.name } });
  if (existing) {
    if (existing.size !== d.size || existing.source !== d.source || existing.license !== d.license) {
      throw new PolyheadError('BUNDLE_CONFLICT', `dataset ${d.name} is already registered with a different source, licence or size`);
    }
    return { id: existing.id, created: false };
  }
  const created = await tx.dataset.create({
    data: { name: d.name, source: d.source, license: d.license, size: d.size, splits: d.splits, description: d.description },
  });
  return { id: created.id, created: true };
}

async function findOrCreateLabelSet(tx: Tx, labels: string[]): Promise<number> {
  const name = labels.join(',');
  const set = await tx.labelSet.upsert({ where: { name }, create: { name, labels }, update: {} });
  return set.id;
}
