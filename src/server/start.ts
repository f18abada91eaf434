// Starts a Polyhead server: opens and migrates the registry, builds the schema, listens.
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from '../config.js';
import { packageVersion } from '../paths.js';
import { isMigrated, migrateDatabase, openDatabase, type RegistryDatabase } from '../registry/database.js';
import { RegistryService } from '../registry/registry.service.js';
import type { ServerState } from '../resolvers/context.js';
import { buildPolyheadSchema } from '../schema/build-schema.js';
import { ApiKeyService } from '../auth/api-keys.js';
import { Authenticator } from '../auth/authenticator.js';
import { Engine } from '../engine/engine.js';
import { InferenceService } from '../serving/inference.service.js';
import { ModelManager } from '../serving/model-manager.js';
import { DesiredState } from '../serving/desired-state.js';
import { openNotifications } from '../registry/notifications.js';
import { LocalBundles } from '../serving/local-bundle.js';
import { TrainingJobs } from '../serving/training-jobs.js';
import { FineTuneJobs } from '../serving/fine-tune-jobs.js';
import { DurableJobQueue } from '../jobs/job-queue.js';
import { pgliteJobSql, postgresJobSql } from '../jobs/job-sql.js';
import { LiveEvents } from '../serving/live-events.js';
import { followTrainingJob, jobNotices } from '../serving/job-updates.js';
import { createApp } from './app.js';
import { prepareRuntime } from './runtime.js';
import { ensureDefaultBundle, ensureFineTunedDefaultBundle } from '../bundle/default-bundle.js';
import { PolyheadMetrics } from './metrics.js';
import { Tracing } from '../observability/tracing.js';
import cluster from 'node:cluster';
import { ClusterLink } from './cluster-link.js';
import type { ClusterMessage } from './cluster.js';

export interface RunningServer {
  url: string;
  port: number;
  db: RegistryDatabase;
  /** The process's engine (for embedding Polyhead in another program, and for tests). */
  engine: Engine;
  /** The loaded set shared by every replica; `onChange` tells of models loaded, unloaded and registered. */
  desiredState: DesiredState;
  /** Stops taking connections, lets in-flight requests finish (up to the shutdown timeout), closes the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  onQuery?: (sql: string) => void;
  log?: (line: string) => void;
}

export async function startPolyhead(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const started = Date.now();
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (line: string) => console.log(line));
  const quiet = () => {}; // start-up says one line; the steps before it stay silent
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, onQuery: options.onQuery });
  const closers: Array<() => Promise<void>> = [];
  try {
    await migrateDatabase(db);
    const registry = new RegistryService(db.prisma);
    const apiKeys = new ApiKeyService(db.prisma);
    // Built once (or checked against its sha256) and shared by the fp16 variant and the registry.
    const builtInBundle = config.models.includes('default') ? await ensureDefaultBundle(config.bundleDir) : undefined;
    // The project's fine-tuned version of it, registered after it (so it is the newest, the one served); the frozen
    // version stays registered and loadable.
    const fineTunedBundle = builtInBundle ? await ensureFineTunedDefaultBundle(config.bundleDir, builtInBundle) : undefined;
    const runtime = await prepareRuntime(config, builtInBundle, quiet);
    const metrics = new PolyheadMetrics({ version: packageVersion, provider: () => runtime.provider, device: () => runtime.description });
    const engine = new Engine({
      session: runtime.session,
      scheduler: runtime.scheduler,
      requestTimeoutMs: config.requestTimeoutMs,
      observer: metrics.observer,
      generation: config.generation,
    });
    metrics.attach(engine);
    const tracing = config.tracing ? await Tracing.start(config.tracing, { version: packageVersion }) : undefined;
    const link = cluster.isWorker && process.send ? new ClusterLink((message: ClusterMessage) => process.send!(message)) : undefined;
    const bundles = new LocalBundles(db.prisma, config.cacheDir);
    // Loads and unloads asked for here are recorded in the registry's desired state and announced to every
    // replica (other hosts, the other processes of a cluster) with LISTEN/NOTIFY.
    const notifications = openNotifications(db, log);
    closers.push(() => notifications.close());
    const models: ModelManager = new ModelManager(engine, registry, log, (change): Promise<void> => desired.record(change), bundles);
    const desired = new DesiredState({ models, registry, notifications, log });
    closers.unshift(() => desired.close());
    const startupModels = new ModelManager(engine, registry, quiet, undefined, bundles);
    closers.push(() => engine.close());
    if (builtInBundle) await startupModels.registerBuiltInBundle(builtInBundle);
    if (fineTunedBundle) await startupModels.registerBuiltInBundle(fineTunedBundle);
    // Configured models without a row get one; then this replica serves what the rows say.
    await desired.start(config.models, startupModels);
    const inference = new InferenceService(
      engine,
      { maxTexts: config.maxTexts, maxTextChars: config.maxTextChars, maxNewTokens: config.generation.maxNewTokens, maxBeams: config.generation.maxBeams },
      config.defaultModel,
    );
    const state: ServerState = {
      version: packageVersion,
      startedAt: Date.now(),
      databaseKind: db.kind,
      defaultModel: config.defaultModel,
      bundleRoots: config.bundleRoots,
      bundleDir: config.bundleDir,
      device: () => runtime.description,
      loadedModels: () => engine.list().map((m) => ({ name: m.name, version: m.version, backbone: m.backbone, heads: m.heads.map((h) => h.name), provider: m.provider })),
      queueDepth: () => engine.depth().reduce((sum, d) => sum + d.entries, 0),
      totals: () => metrics.totals,
    };
    // Training jobs are rows of the registry, queued in pg-boss: any replica answers, runs or re-runs them.
    const jobs = new DurableJobQueue({
      sql: db.pglite ? pgliteJobSql(db.pglite) : postgresJobSql(config.databaseUrl!),
      prisma: db.prisma,
      staleMs: config.jobs.staleMs,
      attempts: config.jobs.attempts,
      embedded: db.kind === 'pglite',
      log,
    });
    const training = new TrainingJobs({ engine, models, registry, bundleDir: config.bundleDir, queue: jobs, log });
    const fineTuning = new FineTuneJobs({
      engine,
      models,
      registry,
      bundleDir: config.bundleDir,
      cacheDir: join(packageRoot, '.cache'),
      threads: config.fineTuneThreads,
      queue: jobs,
      log,
    });
    // Before the engine closes (closers run in order): a fine-tuning worker is stopped and waited for.
    closers.unshift(() => fineTuning.close());
    // First of all: the running job is handed back to the queue (its run stopped) while the database is open.
    closers.unshift(() => jobs.close());
    await jobs.start();
    // What subscriptions stream: this replica's model events, and jobs read through find() (any replica's) again
    // on each 'polyhead_jobs' notice, or every second without one.
    const live = new LiveEvents();
    desired.onChange((event) => live.publishModelChange(event));
    const jobUpdates = (id: string) => followTrainingJob(id, { find: (jobId) => training.find(jobId), watch: jobNotices(notifications), pollMs: 1_000 });
    // After the engine's closer: spans still buffered are exported once every request and batch has finished.
    if (tracing) closers.push(() => tracing.shutdown());
    let draining = false; // set when close() begins (see shutdownDelayMs)
    const httpServer = createServer();
    const { handler, apollo } = await createApp({
      schema: await buildPolyheadSchema(live),
      httpServer,
      registry,
      inference,
      models,
      desiredState: desired,
      training,
      jobUpdates,
      fineTuning,
      metrics,
      state,
      apiKeys,
      authenticator: new Authenticator(apiKeys, config.apiKey),
      config,
      tracing,
      isDraining: () => draining,
      // A probe must answer quickly whatever the database does: each database check gets 2 s. While the
      // database is away inference keeps serving, the probe says "unreachable: ..." (503) and turns ready
      // again by itself once a check gets through (the pools reconnect on their next checkout).
      readiness: async () => {
        const within = <T,>(work: Promise<T>) =>
          Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2000 ms')), 2_000).unref())]);
        const database = await within(db.sql.query('SELECT 1')).then(
          () => true as const,
          (error: Error) => `unreachable: ${error.message || (error as NodeJS.ErrnoException).code || 'unknown error'}`,
        );
        const migrations =
          database === true
            ? await within(isMigrated(db)).then(
                (done) => done || 'pending',
                () => 'unknown',
              )
            : 'unknown';
        return { database, migrations, models: desired.readiness(), ...(draining ? { shutdown: 'draining' } : {}) };
      },
    });
    httpServer.on('request', handler);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, resolve);
    });
    const port = (httpServer.address() as AddressInfo).port;
    const url = `http://localhost:${port}/graphql`;
    link?.ready(url);
    log(`polyhead ${packageVersion} ready at ${url} in ${Date.now() - started} ms (database: ${db.kind}, device: ${runtime.description}: ${runtime.reason}, models: ${engine.list().map((m) => `${m.name} ${m.version}`).join(', ') || 'none'}, bootstrap admin key: ${config.apiKey ? 'set' : 'none'})`);

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        // Lame duck first: not ready, connections closed after each answer, still serving (POLYHEAD_SHUTDOWN_DELAY_MS).
        draining = true;
        if (config.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
        const timer = setTimeout(() => httpServer.closeAllConnections(), config.shutdownTimeoutMs);
        await apollo.stop(); // drains in-flight requests through the drain plugin, then closes the listener
        clearTimeout(timer);
        for (const closeOne of closers) await closeOne();
        await db.close();
      })());
    return { url, port, db, engine, desiredState: desired, close };
  } catch (error) {
    for (const closeOne of closers) await closeOne().catch(() => {});
    await db.close().catch(() => {});
    throw error;
  }
}
