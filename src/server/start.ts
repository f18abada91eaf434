// Starts a Polyhead server: opens and migrates the registry, builds the schema, listens.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerConfig } from '../config.js';
import { packageVersion } from '../paths.js';
import { isMigrated, migrateDatabase, openDatabase, type RegistryDatabase } from '../registry/database.js';
import { RegistryService } from '../registry/registry.service.js';
import type { ServerState } from '../resolvers/context.js';
import { buildPolyheadSchema } from '../schema/build-schema.js';
import { createApp } from './app.js';

export interface RunningServer {
  url: string;
  port: number;
  db: RegistryDatabase;
  /** Stops taking connections, lets in-flight requests finish (up to the shutdown timeout), closes the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  onQuery?: (sql: string) => void;
  log?: (line: string) => void;
}

export async function startPolyhead(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (line: string) => console.log(line));
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, onQuery: options.onQuery });
  try {
    await migrateDatabase(db);
    const registry = new RegistryService(db.prisma);
    const state: ServerState = {
      version: packageVersion,
      startedAt: Date.now(),
      databaseKind: db.kind,
      defaultModel: config.defaultModel,
      mutationsEnabled: Boolean(config.apiKey),
      loadedModels: () => [],
    };
    const httpServer = createServer();
    const { app, apollo } = await createApp({
      schema: await buildPolyheadSchema(),
      httpServer,
      registry,
      state,
      apiKey: config.apiKey,
      development: config.development,
      readiness: async () => ({
        database: await db.sql.query('SELECT 1').then(
          () => true as const,
          (error: Error) => `unreachable: ${error.message}`,
        ),
        migrations: await isMigrated(db).then(
          (done) => done || 'pending',
          () => 'unknown',
        ),
      }),
    });
    httpServer.on('request', app);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, resolve);
    });
    const port = (httpServer.address() as AddressInfo).port;
    const url = `http://localhost:${port}/graphql`;
    log(`polyhead ${packageVersion} ready at ${url} (database: ${db.kind}, mutations: ${config.apiKey ? 'API key' : 'disabled'})`);

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        const timer = setTimeout(() => httpServer.closeAllConnections(), config.shutdownTimeoutMs);
        await apollo.stop(); // drains in-flight requests through the drain plugin, then closes the listener
        clearTimeout(timer);
        await db.close();
      })());
    return { url, port, db, close };
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
}
