// Registry reads and writes that the GraphQL layer (and the CLI) need, in registry terms.
import { PolyheadError } from '../errors.js';
import type { PrismaClient, Model, ModelVersion, TaskKind } from '../generated/prisma/client.js';
import { importBundle, type ImportResult, type StoredExample } from './bundle-import.js';
import { importHuggingFace, type HuggingFaceImportResult, type ImportOptions } from '../import/huggingface/import-hf.js';

export interface ModelPage {
  models: Model[];
  hasNextPage: boolean;
  totalCount: number;
}

export interface ModelFilter {
  first: number;
  /** Name of the last model of the previous page. */
  afterName?: string;
  task?: TaskKind;
  search?: string;
}

/** The alias a model is served under when a query names no version. */
export const servingAlias = 'production';

/** A version that importBundle or importHuggingFace has just registered. */
export interface RegisteredVersion {
  model: string;
  version: string;
}

export class RegistryService {
  private readonly registeredListeners = new Set<(registered: RegisteredVersion) => void>();

  constructor(readonly prisma: PrismaClient) {}

  /** Tells listener of each new version registered through this service (the desired state announces it to every replica). */
  onVersionRegistered(listener: (registered: RegisteredVersion) => void): () => void {
    this.registeredListeners.add(listener);
    return () => void this.registeredListeners.delete(listener);
  }

  async listModels(filter: ModelFilter): Promise<ModelPage> {
    const where = {
      ...(filter.search
        ? { OR: [{ name: { contains: filter.search, mode: 'insensitive' as const } }, { description: { contains: filter.search, mode: 'insensitive' as const } }] }
        : {}),
      ...(filter.task ? { versions: { some: { heads: { some: { task: filter.task } } } } } : {}),
    };
    const [rows, totalCount] = await Promise.all([
      this.prisma.model.findMany({
        where: { ...where, ...(filter.afterName ? { name: { gt: filter.afterName } } : {}) },
        orderBy: { name: 'asc' },
        take: filter.first + 1,
      }),
      this.prisma.model.count({ where }),
    ]);
    return { models: rows.slice(0, filter.first), hasNextPage: rows.length > filter.first, totalCount };
  }

  modelByName(name: string): Promise<Model | null> {
    return this.prisma.model.findUnique({ where: { name } });
  }

  async requireModel(name: string): Promise<Model> {
    const model = await this.modelByName(name);
    if (!model) throw new PolyheadError('MODEL_NOT_FOUND', `no model named "${name}"`, { model: name });
    return model;
  }

  /** A version by its version string or an alias; without one, the `production` alias or else the newest version. */
  async resolveVersion(modelName: string, ref?: string | null): Promise<ModelVersion> {
    const model = await this.requireModel(modelName);
    const alias = await this.prisma.modelAlias.findUnique({
      where: { modelId_alias: { modelId: model.id, alias: ref ?? servingAlias } },
      include: { version: true },
    });
    if (alias) return alias.version;
    const version = ref
      ? await this.prisma.modelVersion.findUnique({ where: { modelId_version: { modelId: model.id, version: ref } } })
      : await this.prisma.modelVersion.findFirst({ where: { modelId: model.id }, orderBy: { id: 'desc' } });
    if (!version) {
      throw new PolyheadError('VERSION_NOT_FOUND', ref ? `model "${modelName}" has no version or alias "${ref}"` : `model "${modelName}" has no versions`, {
        model: modelName,
      });
    }
    return version;
  }

  async importBundle(path: string, examples?: Record<string, StoredExample[]>): Promise<ImportResult> {
    return this.registered(await importBundle(this.prisma, path, examples));
  }

  /** A Hugging Face folder, checked, assembled as a bundle under `bundleDir` and registered. */
  async importHuggingFace(path: string, options: ImportOptions & { bundleDir: string }): Promise<HuggingFaceImportResult> {
    return this.registered(await importHuggingFace(this.prisma, path, options));
  }

  private registered<T extends ImportResult>(result: T): T {
    if (result.created) for (const listener of this.registeredListeners) listener({ model: result.modelName, version: result.version });
    return result;
  }

  async setAlias(modelName: string, alias: string, version: string): Promise<ModelVersion> {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(alias)) {
      throw new PolyheadError('BAD_USER_INPUT', 'alias: lower-case letters, digits, "_" or "-", starting with a letter, at most 32');
    }
    const model = await this.requireModel(modelName);
    const target = await this.prisma.modelVersion.findUnique({ where: { modelId_version: { modelId: model.id, version } } });
    if (!target) throw new PolyheadError('VERSION_NOT_FOUND', `model "${modelName}" has no version "${version}"`);
    await this.prisma.modelAlias.upsert({
      where: { modelId_alias: { modelId: model.id, alias } },
      create: { modelId: model.id, alias, versionId: target.id },
      update: { versionId: target.id },
    });
    return target;
  }

  async removeAlias(modelName: string, alias: string): Promise<boolean> {
    const model = await this.requireModel(modelName);
    const { count } = await this.prisma.modelAlias.deleteMany({ where: { modelId: model.id, alias } });
    return count > 0;
  }

  /** Deletes one version with its heads, files, aliases and evaluations; the model goes when it was the last. */
  async deleteVersion(modelName: string, version: string): Promise<boolean> {
    const model = await this.requireModel(modelName);
    return this.prisma.$transaction(async (tx) => {
      const target = await tx.modelVersion.findUnique({ where: { modelId_version: { modelId: model.id, version } } });
      if (!target) throw new PolyheadError('VERSION_NOT_FOUND', `model "${modelName}" has no version "${version}"`);
      await tx.modelVersion.delete({ where: { id: target.id } });
      if ((await tx.modelVersion.count({ where: { modelId: model.id } })) === 0) await tx.model.delete({ where: { id: model.id } });
      return true;
    });
  }
}
