// Puts registry versions into the engine: resolves a model name to a version, finds its files on this host
// (checked by sha256 against the registry, fetched from the registry when not here: local-bundle.ts), loads
// and warms it, and only then lets it serve. Also builds and registers the built-in default model on first start.
import { readConfig } from '../config.js';
import type { Engine, LoadedModelInfo } from '../engine/engine.js';
import { PolyheadError, toPolyheadError } from '../errors.js';
import type { RegistryService } from '../registry/registry.service.js';
import { LocalBundles } from './local-bundle.js';

/** A load or unload that succeeded, as passed on to the other server processes of a cluster. */
export type ModelChange = { op: 'load'; name: string; version: string } | { op: 'unload'; name: string };

export class ModelManager {
  constructor(
    readonly engine: Engine,
    readonly registry: RegistryService,
    private readonly log: (line: string) => void = () => {},
    /** Told after a load or unload succeeded (a cluster passes it on to the other server processes). */
    private readonly onChange: (change: ModelChange) => void = () => {},
    /** Where each version's files are on this host (its folder, or the cache filled from the registry). */
    readonly bundles: LocalBundles = new LocalBundles(registry.prisma, readConfig().cacheDir),
  ) {}

  /** Loads the version `ref` (version or alias; default: production alias, else newest) of a registered model. */
  async load(name: string, ref?: string | null): Promise<LoadedModelInfo> {
    const info = await this.loadVersion(name, ref);
    this.onChange({ op: 'load', name, version: info.version });
    return info;
  }

  async unload(name: string): Promise<boolean> {
    const unloaded = await this.engine.unload(name);
    if (unloaded) this.onChange({ op: 'unload', name });
    return unloaded;
  }

  /** Applies a change made by another server process of the cluster (not passed on again). */
  async apply(change: ModelChange): Promise<void> {
    try {
      if (change.op === 'load') await this.loadVersion(change.name, change.version);
      else await this.engine.unload(change.name);
    } catch (error) {
      // The version that served before keeps serving here; the log says why this process did not follow.
      this.log(`could not follow the cluster's ${change.op} of ${change.name}: ${(error as Error).message}`);
    }
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
