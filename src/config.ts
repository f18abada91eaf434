// Every setting comes from the environment, read once at start; each carries its default here.
import { resolve } from 'node:path';

export interface ServerConfig {
  /** PORT, default 4000. */
  port: number;
  /** HOST, default all interfaces (0.0.0.0). */
  host: string;
  /** POLYHEAD_DATA_DIR, default ./.polyhead: the embedded database and built bundles live here. */
  dataDir: string;
  /** DATABASE_URL (postgres://...); absent = embedded PGlite in dataDir. */
  databaseUrl?: string;
  /** POLYHEAD_API_KEY: bearer token for every mutation; absent = mutations are refused. */
  apiKey?: string;
  /** POLYHEAD_DEFAULT_MODEL, default "default": the model used when a query names none. */
  defaultModel: string;
  /** POLYHEAD_LOG (info | silent), default info. */
  logLevel: 'info' | 'silent';
  /** POLYHEAD_SHUTDOWN_TIMEOUT_MS, default 10000: how long SIGTERM waits for in-flight requests. */
  shutdownTimeoutMs: number;
  /** NODE_ENV=development shows error details to clients; otherwise unexpected errors are masked. */
  development: boolean;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return {
    port: integer(env, 'PORT', 4000),
    host: env.HOST ?? '0.0.0.0',
    dataDir: resolve(env.POLYHEAD_DATA_DIR ?? '.polyhead'),
    databaseUrl: env.DATABASE_URL || undefined,
    apiKey: env.POLYHEAD_API_KEY || undefined,
    defaultModel: env.POLYHEAD_DEFAULT_MODEL ?? 'default',
    logLevel: env.POLYHEAD_LOG === 'silent' ? 'silent' : 'info',
    shutdownTimeoutMs: integer(env, 'POLYHEAD_SHUTDOWN_TIMEOUT_MS', 10_000),
    development: env.NODE_ENV === 'development',
  };
}

export function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}
