// Puts registry versions into the engine: resolves a model name to a version, finds its files on this host
// (checked by sha256 against the registry, fetched from the registry when not here: local-bundle.ts), loads
// and warms it, and only then lets it serve. Also builds and registers the built-in default model on first start.
import { readConfig } from '../config.js';
import type { Engine, LoadedModelInfo } from '../engine/engine.js';
import { PolyheadError, toPolyheadError } from '../errors.js';
import type { RegistryService } from '../registry/registry.service.js';
import { LocalBundles } from './local-bundle.js';

/**
 * A load or unload asked for on this server, told once it succeeded here (the desired state records it and
 * announces it to every replica). `ref` is what the caller named: a version, an alias, or null for the default.
 */
export type ModelChange = { op: 'load'; name: string; version: string; ref: string | null } | { op: 'unload'; name: string; wasLoaded: boolean };

/** What the desired state asks this server to serve (or stop serving), applied without being announced again. */
export type ModelAssignment = { op: 'load'; name: string; version: string } | { op: 'unload'; name: string };

export class ModelManager {
  constructor(
    readonly engine: Engine,
    readonly registry: RegistryService,
    private readonly log: (line: string) => void = () => {},
    /** Awaited after a load or unload succeeded here (the desired state records and announces it). */
    private readonly onChange: (change: ModelChange) => Promise<void> | void = () => {},
    /** Where each version's files are on this host (its folder, or the cache filled from the registry). */
    readonly bundles: LocalBundles = new LocalBundles(registry.prisma, readConfig().cacheDir),
  ) {}

  /** Loads the version `ref` (version or alias; default: production alias, else newest) of a registered model. */
  async load(name: string, ref?: string | null): Promise<LoadedModelInfo> {
    const info = await this.loadVersion(name, ref);
    await this.onChange({ op: 'load', name, version: info.version, ref: ref ?? null });
    return info;
  }

  /** True when it was loaded here. Told to the desired state either way: other replicas may still serve it. */
  async unload(name: string): Promise<boolean> {
    const unloaded = await this.engine.unload(name);
    await this.onChange({ op: 'unload', name, wasLoaded: unloaded });
    return unloaded;
  }

  /** Puts a version into the engine (or takes a model out) because the desired state says so; tells nobody. */
  async apply(assignment: ModelAssignment): Promise<void> {
    if (assignment.op === 'load') await this.loadVersion(assignment.name, assignment.version);
    else await this.engine.unload(assignment.name);
  }

  private async loadVersion(name: string, ref?: string | null): Promise<LoadedModelInfo> {
    const version = await this.registry.resolveVersion(name, ref);
    const files = await this.bundles.filesOf(version);
    let folder: string;
    try {
      folder = await this.bundles.folderOf(files);
    } catch (error) {
      // The database going away while files are fetched from it says so, as any registry request does.
      if (toPolyheadError(error)?.code === 'REGISTRY_UNAVAILABLE') throw toPolyheadError(error);
      throw new PolyheadError('MODEL_LOAD_FAILED', `could not load ${name} ${version.version}: ${(error as Error).message}`);
    }
    const started = Date.now();
    try {
      const info = await this.engine.load(name, folder, version.version);
      await this.registry.prisma.modelVersion.update({ where: { id: version.id }, data: { status: 'READY' } }).catch(() => {});
      this.log(`loaded ${name} ${version.version} (${info.heads.map((h) => h.name).join(', ') || 'no heads'}) in ${Date.now() - started} ms`);
      return info;
    } catch (error) {
      throw toPolyheadError(error) ?? error;
    }
  }

  /** Registers a bundle folder the server built itself, such as the default model's (idempotent). */
  async registerBuiltInBundle(dir: string): Promise<void> {
    const result = await this.registry.importBundle(dir);
    if (result.created) this.log(`registered the built-in model ${result.modelName} ${result.version}`);
  }
}
