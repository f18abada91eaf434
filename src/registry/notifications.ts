// LISTEN/NOTIFY on the registry database: how one replica tells the others (and itself) that registry state
// changed. On PostgreSQL one dedicated connection listens (a pool connection would go back to the pool and
// lose its LISTENs) and comes back by itself after PostgreSQL restarted or the session was terminated; on the
// embedded database PGlite's own listen/notify works within this one process.
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { RegistryDatabase } from './database.js';
import type { SqlExecutor } from './migrate.js';

/** Channels in use: payloads are small JSON objects (or a job id on 'polyhead_jobs'). */
export const modelsChannel = 'polyhead_models';
export const jobsChannel = 'polyhead_jobs';
export const versionsChannel = 'polyhead_versions';

export interface RegistryNotifications {
  /** Calls handler with each payload sent on channel by any process, this one included. */
  listen(channel: string, handler: (payload: string) => void): () => void;
  notify(channel: string, payload: string): Promise<void>;
  /** Called after the listening connection was lost and came back: changes may have been missed. */
  onReconnect(handler: () => void): () => void;
  close(): Promise<void>;
}

/** The application_name of the listening session (so it can be told apart in pg_stat_activity). */
export const listenerApplicationName = 'polyhead-listen';

/** Waits before reconnecting: doubles from the first to the last, then stays there. */
const reconnectDelaysMs = { first: 100, last: 5_000 };

export function openNotifications(db: RegistryDatabase, log: (line: string) => void = () => {}): RegistryNotifications {
  if (db.url) return new PostgresNotifications(db.url, db.sql, log);
  if (db.pglite) return new PgliteNotifications(db.pglite);
  throw new Error(`the ${db.kind} registry database gives no way to listen for notifications`);
}

type Handler = (payload: string) => void;

/** Handlers by channel, shared by both kinds; `subscribe` says when a channel gets its first handler. */
class Channels {
  private readonly handlers = new Map<string, Set<Handler>>();

  constructor(private readonly subscribe: (channel: string) => void) {}

  add(channel: string, handler: Handler): () => void {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      this.subscribe(channel);
    }
    set.add(handler);
    // The LISTEN stays when the last handler goes: channels are few and long-lived.
    return () => void set.delete(handler);
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }

  dispatch(channel: string, payload: string): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(payload);
      } catch {
        // One handler's bug must not keep the payload from the others.
      }
    }
  }
}

class PostgresNotifications implements RegistryNotifications {
  private readonly channels = new Channels((channel) => this.whenListening(() => this.listenOn(channel)));
  private readonly reconnectHandlers = new Set<() => void>();
  private client: pg.Client | undefined;
  /** Settles once the current connection listens on every channel (or failed to). */
  private listening: Promise<void>;
  private closed = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly sql: SqlExecutor,
    private readonly log: (line: string) => void,
  ) {
    this.listening = this.connect(false);
  }

  listen(channel: string, handler: Handler): () => void {
    return this.channels.add(channel, handler);
  }

  async notify(channel: string, payload: string): Promise<void> {
    // Our own LISTENs go first, so a notification this process sends right after listen() reaches it too.
    await this.listening;
    // Sent through the registry's pool, which reconnects on its own, not through the listening session.
    await this.sql.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => void this.reconnectHandlers.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private whenListening(step: () => Promise<void>): void {
    this.listening = this.listening.then(step).catch(() => {});
  }

  private async listenOn(channel: string): Promise<void> {
    await this.client?.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
  }

  private async connect(afterLoss: boolean): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: 5_000,
      application_name: listenerApplicationName,
      // A connection that died without a word (a network partition) is noticed by TCP keepalive.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = undefined;
      client.removeAllListeners('notification');
      if (this.closed) return;
      this.log(`registry notifications: the listening connection was lost (${error?.message ?? 'closed'}); reconnecting`);
      this.scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => this.channels.dispatch(message.channel, message.payload ?? ''));
    try {
      await client.connect();
      for (const channel of this.channels.names()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      client.removeAllListeners();
      client.on('error', () => {}); // a late socket error of a client given up on
      await client.end().catch(() => {});
      if (!this.closed) {
        this.log(`registry notifications: could not listen (${(error as Error).message}); retrying`);
        this.scheduleReconnect();
      }
      return;
    }
    if (this.closed) return void (await client.end().catch(() => {}));
    this.client = client;
    const missedSome = afterLoss || this.failures > 0;
    this.failures = 0;
    if (missedSome) {
      this.log('registry notifications: listening again');
      for (const handler of this.reconnectHandlers) {
        try {
          handler();
        } catch {
          // as in dispatch: the others still hear of it
        }
      }
    }
  }

  private scheduleReconnect(): void {
    const delay = Math.min(reconnectDelaysMs.last, reconnectDelaysMs.first * 2 ** this.failures);
    this.failures++;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.listening = this.connect(true);
    }, delay);
    this.retry.unref();
  }
}

class PgliteNotifications implements RegistryNotifications {
  private readonly channels = new Channels((channel) => {
    this.listening = this.listening.then(() => this.pglite.listen(channel, (payload) => this.channels.dispatch(channel, payload))).then(
      (unlisten) => void this.unlisteners.push(unlisten),
      () => {},
    );
  });
  private readonly unlisteners: Array<() => Promise<void>> = [];
  private listening: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly pglite: PGlite) {}

  listen(channel: string, handler: Handler): () => void {
    return this.channels.add(channel, handler);
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.listening;
    if (this.closed) return;
    await this.pglite.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /** One process, one in-process database: the "connection" cannot be lost. */
  onReconnect(_handler: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listening;
    if (this.pglite.closed) return;
    for (const unlisten of this.unlisteners.splice(0)) await unlisten().catch(() => {});
  }
}
