// One desired state of loaded models for every replica. Which version of each model is loaded (and the alias
// it follows) is registry state, one DesiredModel row per model. A change asked for on one replica (loadModel,
// unloadModel, setAlias, a training job that loads its result) is applied there first, then written (revision
// bumped) and announced on 'polyhead_models'; every replica, that one included, then makes its engine match the
// rows. A missed announcement (a replica that was down, a listening connection lost) is made good by reading
// the whole table again: at start, after the listener reconnects, and every `reconcileEveryMs`.
//
// Convergence does not depend on the order replicas hear of changes: every write is followed by a notification,
// every notification by a fresh read of the row on every replica, and reads run one after another per replica,
// so the last read each replica makes sees the last write.
import type { PrismaClient, ModelVersion } from '../generated/prisma/client.js';
import type { RegistryNotifications } from '../registry/notifications.js';
import { modelsChannel, versionsChannel } from '../registry/notifications.js';
import { servingAlias, type RegistryService } from '../registry/registry.service.js';
import type { ModelChange, ModelManager } from './model-manager.js';

export type ModelEventKind = 'LOADED' | 'UNLOADED' | 'VERSION_REGISTERED';

/** Emitted on every replica when it loads or unloads a model, and when any replica registers a version. */
export interface ModelEvent {
  kind: ModelEventKind;
  model: string;
  /** The version loaded or registered; the version that served, for UNLOADED (null when unknown). */
  version: string | null;
  at: Date;
}

export interface DesiredStateOptions {
  models: ModelManager;
  registry: RegistryService;
  notifications: RegistryNotifications;
  log?: (line: string) => void;
  /** How often the whole table is read again, in case an announcement was missed (default 30 s). */
  reconcileEveryMs?: number;
}

/** A DesiredModel row with the version string it names. */
interface Desired {
  model: string;
  loaded: boolean;
  alias: string | null;
  version: string | null;
  revision: number;
}

/** What 'polyhead_models' carries: which row changed, at which revision. */
interface ModelsPayload {
  model: string;
  revision: number;
}

/** What 'polyhead_versions' carries. */
interface VersionsPayload {
  model: string;
  version: string;
}

export class DesiredState {
  private readonly prisma: PrismaClient;
  private readonly log: (line: string) => void;
  private readonly listeners = new Set<(event: ModelEvent) => void>();
  /** The rows as last read or written here (readiness compares the engine with them). */
  private readonly desired = new Map<string, Desired>();
  /** Why this replica could not serve a row, by model (logged once per revision). */
  private readonly failures = new Map<string, { revision: number; error: unknown }>();
  private reconciledOnce = false;
  /** Applies the rows: options.models, or at start-up a manager that logs nothing (start-up says one line). */
  private applier: ModelManager;
  /** Reads run one after another; `next` gathers what was asked for while one runs. */
  private running: Promise<void> = Promise.resolve();
  private next: { scope: Set<string> | 'all'; done: Promise<void> } | undefined;
  private readonly stops: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: DesiredStateOptions) {
    this.prisma = options.registry.prisma;
    this.log = options.log ?? (() => {});
    this.applier = options.models;
  }

  /**
   * Listens, gives each of `seeds` (the configured models) a row when it has none, and makes this replica serve
   * what the rows say. Throws when a seeded model cannot be served here, as a server that cannot serve its
   * configured models does not start; other rows that fail are reported by readiness and retried. `quietly`
   * applies the rows read at start-up without log lines.
   */
  async start(seeds: readonly string[], quietly: ModelManager = this.options.models): Promise<void> {
    const { notifications } = this.options;
    this.stops.push(
      notifications.listen(modelsChannel, (payload) => this.heard(payload)),
      notifications.listen(versionsChannel, (payload) => this.heardVersion(payload)),
      notifications.onReconnect(() => this.reconcileInBackground('all', 'after the registry connection came back')),
      this.options.registry.onVersionRegistered((registered) => void this.announce(versionsChannel, registered)),
    );
    await this.seed(seeds);
    this.applier = quietly;
    try {
      await this.schedule('all');
    } finally {
      this.applier = this.options.models;
    }
    for (const name of seeds) {
      const failure = this.failures.get(name);
      if (failure && this.desired.get(name)?.loaded) throw failure.error;
    }
    const every = this.options.reconcileEveryMs ?? 30_000;
    this.timer = setInterval(() => this.reconcileInBackground('all', 'on its periodic check'), every);
    this.timer.unref();
  }

  /** The hook ModelManager awaits after a load or unload asked for here succeeded: record, then announce. */
  async record(change: ModelChange): Promise<void> {
    if (change.op === 'load') {
      const version = await this.prisma.modelVersion.findFirstOrThrow({ where: { version: change.version, model: { name: change.name } } });
      const alias = await this.followedAlias(change.name, change.ref);
      const row = await this.prisma.desiredModel.upsert({
        where: { modelName: change.name },
        create: { modelName: change.name, loaded: true, alias, versionId: version.id },
        update: { loaded: true, alias, versionId: version.id, revision: { increment: 1 } },
      });
      this.remember({ model: change.name, loaded: true, alias, version: change.version, revision: row.revision });
      this.emit('LOADED', change.name, change.version);
      await this.announce(modelsChannel, { model: change.name, revision: row.revision });
      return;
    }
    const [before] = await this.read([change.name]);
    if (!change.wasLoaded && !before?.loaded) return; // served nowhere as far as the registry knows
    const row = await this.prisma.desiredModel.upsert({
      where: { modelName: change.name },
      create: { modelName: change.name, loaded: false },
      update: { loaded: false, revision: { increment: 1 } },
    });
    this.remember({ model: change.name, loaded: false, alias: row.alias, version: before?.version ?? null, revision: row.revision });
    if (change.wasLoaded) this.emit('UNLOADED', change.name, before?.version ?? null);
    await this.announce(modelsChannel, { model: change.name, revision: row.revision });
  }

  /**
   * Points an alias at a version. A model whose row follows that alias moves with it: loaded here first (a
   * failed load leaves the alias where it was), then recorded and announced, so every replica follows.
   */
  async setAlias(model: string, alias: string, version: string): Promise<ModelVersion> {
    const row = await this.prisma.desiredModel.findUnique({ where: { modelName: model } });
    const follows = !!row && row.loaded && row.alias === alias;
    const loadedHere = follows && !this.serves(model, version);
    if (loadedHere) await this.options.models.apply({ op: 'load', name: model, version });
    const target = await this.options.registry.setAlias(model, alias, version);
    if (!follows) return target;
    const { count } = await this.prisma.desiredModel.updateMany({
      where: { modelName: model, alias, loaded: true },
      data: { versionId: target.id, revision: { increment: 1 } },
    });
    if (loadedHere) this.emit('LOADED', model, version);
    if (count > 0) {
      const [updated] = await this.read([model]);
      if (updated) this.remember(updated);
      await this.announce(modelsChannel, { model, revision: updated?.revision ?? row.revision + 1 });
    }
    return target;
  }

  /** Calls listener with each event on this replica; returns the function that stops it. */
  onChange(listener: (event: ModelEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** For /readyz: true when this replica serves what the desired state says, else what differs. */
  readiness(): true | string {
    if (!this.reconciledOnce) return 'not yet compared with the desired state';
    const differences: string[] = [];
    for (const row of this.desired.values()) {
      const serving = this.servingVersion(row.model);
      if (row.loaded && serving !== row.version) {
        const failure = this.failures.get(row.model);
        const why = failure ? `: ${(failure.error as Error).message}` : serving ? ` (serving ${serving})` : ' (not loaded)';
        differences.push(`${row.model} ${row.version ?? '(version gone)'}${why}`);
      } else if (!row.loaded && serving) differences.push(`${row.model} should be unloaded`);
    }
    return differences.length === 0 || `not as desired: ${differences.join('; ')}`;
  }

  /** Stops listening and the periodic check; a read under way finishes. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const stop of this.stops.splice(0)) stop();
    await this.running;
  }

  /** Configured models without a row get one that follows the serving alias (else the newest version). */
  private async seed(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const existing = new Set((await this.prisma.desiredModel.findMany({ where: { modelName: { in: [...names] } }, select: { modelName: true } })).map((r) => r.modelName));
    const missing = names.filter((name) => !existing.has(name));
    const rows = [];
    for (const name of missing) {
      const version = await this.options.registry.resolveVersion(name); // MODEL_NOT_FOUND: not registered
      rows.push({ modelName: name, loaded: true, alias: servingAlias, versionId: version.id });
    }
    // Replicas starting together seed the same rows: the first one's stay.
    if (rows.length) await this.prisma.desiredModel.createMany({ data: rows, skipDuplicates: true });
  }

  /** The alias a load follows: the serving alias for a load that named nothing, the alias named, else none. */
  private async followedAlias(model: string, ref: string | null): Promise<string | null> {
    if (ref === null) return servingAlias;
    const alias = await this.prisma.modelAlias.findFirst({ where: { alias: ref, model: { name: model } }, select: { alias: true } });
    return alias ? ref : null;
  }

  private heard(payload: string): void {
    const parsed = parseJson<ModelsPayload>(payload);
    if (!parsed || typeof parsed.model !== 'string' || typeof parsed.revision !== 'number') return this.reconcileInBackground('all', 'after an unreadable announcement');
    const known = this.desired.get(parsed.model);
    // Our own announcement, or an old one: what it says is already applied here.
    if (known && known.revision >= parsed.revision && this.matches(known)) return;
    this.reconcileInBackground([parsed.model], `on revision ${parsed.revision} of ${parsed.model}`);
  }

  private heardVersion(payload: string): void {
    const parsed = parseJson<VersionsPayload>(payload);
    if (parsed && typeof parsed.model === 'string' && typeof parsed.version === 'string') this.emit('VERSION_REGISTERED', parsed.model, parsed.version);
  }

  private reconcileInBackground(scope: string[] | 'all', when: string): void {
    if (this.closed) return;
    this.schedule(scope).catch((error: Error) => this.log(`desired state: could not read it ${when}: ${error.message}`));
  }

  /** Queues a read of `scope` behind the one running; asks made meanwhile join the queued read. */
  private schedule(scope: string[] | 'all'): Promise<void> {
    if (this.next) {
      if (scope === 'all') this.next.scope = 'all';
      else if (this.next.scope !== 'all') for (const name of scope) this.next.scope.add(name);
      return this.next.done;
    }
    const next: { scope: Set<string> | 'all'; done: Promise<void> } = { scope: scope === 'all' ? 'all' : new Set(scope), done: Promise.resolve() };
    next.done = this.running.then(() => {
      this.next = undefined;
      return this.reconcile(next.scope);
    });
    this.next = next;
    this.running = next.done.catch(() => {});
    return next.done;
  }

  /** Reads the rows of `scope` and makes the engine match them. */
  private async reconcile(scope: Set<string> | 'all'): Promise<void> {
    if (this.closed) return;
    const rows = await this.read(scope === 'all' ? undefined : [...scope]);
    if (scope === 'all') {
      for (const name of this.desired.keys()) if (!rows.some((r) => r.model === name)) this.desired.delete(name);
      this.reconciledOnce = true;
    }
    for (const row of rows) {
      this.remember(row);
      if (this.matches(row)) {
        this.failures.delete(row.model);
        continue;
      }
      await this.follow(row);
    }
  }

  private async follow(row: Desired): Promise<void> {
    const models = this.applier;
    const serving = this.servingVersion(row.model);
    try {
      if (row.loaded) {
        if (row.version === null) throw new Error(`the version it names is no longer registered`);
        await models.apply({ op: 'load', name: row.model, version: row.version });
        this.emit('LOADED', row.model, row.version);
      } else {
        await models.apply({ op: 'unload', name: row.model });
        this.emit('UNLOADED', row.model, serving);
      }
      this.failures.delete(row.model);
      if (models === this.options.models) this.log(`desired state: ${row.loaded ? `loaded ${row.model} ${row.version}` : `unloaded ${row.model}`} (revision ${row.revision})`);
    } catch (error) {
      // What served before keeps serving; readiness says why, and the next read tries again.
      if (this.failures.get(row.model)?.revision !== row.revision) {
        this.log(`desired state: could not ${row.loaded ? `load ${row.model} ${row.version}` : `unload ${row.model}`} (revision ${row.revision}): ${(error as Error).message}`);
      }
      this.failures.set(row.model, { revision: row.revision, error });
    }
  }

  private async read(models?: string[]): Promise<Desired[]> {
    const rows = await this.prisma.desiredModel.findMany(models ? { where: { modelName: { in: models } } } : undefined);
    const ids = rows.map((r) => r.versionId).filter((id): id is number => id !== null);
    const versions = new Map((await this.prisma.modelVersion.findMany({ where: { id: { in: ids } }, select: { id: true, version: true } })).map((v) => [v.id, v.version]));
    return rows.map((r) => ({
      model: r.modelName,
      loaded: r.loaded,
      alias: r.alias,
      version: r.versionId === null ? null : (versions.get(r.versionId) ?? null),
      revision: r.revision,
    }));
  }

  private remember(row: Desired): void {
    const known = this.desired.get(row.model);
    if (!known || known.revision <= row.revision) this.desired.set(row.model, row);
  }

  private matches(row: Desired): boolean {
    const serving = this.servingVersion(row.model);
    return row.loaded ? serving !== null && serving === row.version : serving === null;
  }

  private serves(model: string, version: string): boolean {
    return this.servingVersion(model) === version;
  }

  private servingVersion(model: string): string | null {
    return this.options.models.engine.list().find((m) => m.name === model)?.version ?? null;
  }

  private async announce(channel: string, payload: ModelsPayload | VersionsPayload): Promise<void> {
    try {
      await this.options.notifications.notify(channel, JSON.stringify(payload));
    } catch (error) {
      // Recorded already: replicas that miss the announcement catch up on their periodic check.
      this.log(`desired state: could not announce on ${channel}: ${(error as Error).message}`);
    }
  }

  private emit(kind: ModelEventKind, model: string, version: string | null): void {
    const event: ModelEvent = { kind, model, version, at: new Date() };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A subscriber's failure is its own.
      }
    }
  }
}

function parseJson<T>(text: string): Partial<T> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Partial<T>) : undefined;
  } catch {
    return undefined;
  }
}
