// A real Polyhead server on loopback for integration tests, with a small GraphQL client.
import { readConfig, type ServerConfig } from '../../src/config.js';
import { startPolyhead, type RunningServer } from '../../src/server/start.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { tempDir } from './bundle-fixture.js';

export const testApiKey = 'test-key-0123456789';

export interface GraphQLResponse<T = any> {
  status: number;
  data?: T;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }>;
  extensions?: Record<string, any>;
}

export interface TestServer extends RunningServer {
  config: ServerConfig;
  queries: string[];
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<T>>;
  /** The same with the API key. */
  admin<T = any>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
}

/** The built-in bundle is built once for the whole suite (it is deterministic and verified by sha256). */
export const sharedBundleDir = join(packageRoot, '.cache', 'bundles');

/** Starts a server; registry-only tests pass `models: []` to skip loading the default model. */
export async function startTestServer(overrides: Partial<ServerConfig> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir();
  const config: ServerConfig = {
    ...readConfig({ POLYHEAD_LOG: 'silent', ...env }),
    port: 0,
    host: '127.0.0.1',
    dataDir,
    bundleDir: sharedBundleDir,
    // Each test server's own cache, as each replica has (not the checkout's .polyhead/cache).
    cacheDir: env.POLYHEAD_CACHE_DIR ?? join(dataDir, 'cache'),
    bundleRoots: [tmpdir(), sharedBundleDir],
    apiKey: testApiKey,
    ...overrides,
  };
  const queries: string[] = [];
  const server = await startPolyhead(config, { onQuery: (sql) => queries.push(sql) });
  const gql = async (query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, ...((await response.json()) as object) };
  };
  return {
    ...server,
    config,
    queries,
    gql,
    admin: (query, variables) => gql(query, variables, { authorization: `Bearer ${testApiKey}` }),
  };
}
