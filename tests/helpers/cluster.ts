// Drives scripts/cluster.sh (PostgreSQL, replicas on hosts of their own, nginx in front) from tests and
// benchmarks: start, stop, a replica or PostgreSQL stopped, killed and started again. The script needs root
// (network namespaces), nginx and the PostgreSQL binaries: without them the tests are skipped locally and fail
// under CI, like the other PostgreSQL tests.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { tempDir } from './bundle-fixture.js';
import { postgresBinDir } from './postgres-cluster.js';

const run = promisify(execFile);
export const clusterScript = join(packageRoot, 'scripts/cluster.sh');

function nginxInstalled(): boolean {
  return ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].some((path) => existsSync(path));
}

const missing = [
  process.getuid?.() !== 0 && 'root (network namespaces)',
  !nginxInstalled() && 'nginx (apt-get install nginx)',
  !postgresBinDir() && 'the PostgreSQL binaries (apt-get install postgresql)',
].filter(Boolean);

export const skipWithoutCluster: string | false =
  missing.length === 0 ? false : process.env.CI ? false : `the cluster tests need ${missing.join(', ')}`;

export interface ClusterReplica {
  number: number;
  address: string;
  port: number;
  url: string;
  /** The network namespace the replica runs in (null on the loopback fallback). */
  netns: string | null;
  dataDir: string;
  log: string;
  pidFile: string;
}

/** What the script writes to DIR/cluster.json. */
export interface ClusterInfo {
  dir: string;
  id: number;
  network: 'netns' | 'loopback';
  /** nginx's GraphQL endpoint. */
  url: string;
  /** nginx's origin (http://127.0.0.1:PORT). */
  front: string;
  databaseUrl: string;
  apiKeyFile: string;
  nginx: { config: string; upstream: string; pidFile: string };
  replicas: ClusterReplica[];
}

export interface Cluster extends ClusterInfo {
  apiKey: string;
  /** Runs scripts/cluster.sh --dir DIR with these arguments; rejects when it exits with an error. */
  script(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  replica(n: number, action: 'stop' | 'kill' | 'start' | 'restart', options?: { wait?: boolean }): Promise<void>;
  postgres(action: 'stop' | 'kill' | 'start' | 'restart'): Promise<void>;
  /** The replica numbers nginx sends to now, as the health loop last wrote them. */
  inNginx(): number[];
  /** The replica's own pid (from its pid file). */
  pid(n: number): number;
  /** Takes the whole cluster down and deletes its folder. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  replicas?: number;
  loopback?: boolean;
  /** Added to the environment of the script (and so of every replica): POLYHEAD_* settings. */
  env?: NodeJS.ProcessEnv;
  timeoutSeconds?: number;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dir = tempDir('polyhead-cluster-'); // the script deletes it on stop
  const env = { ...process.env, ...options.env };
  const timeout = options.timeoutSeconds ?? 300;
  const script = (...args: string[]) => run('bash', [clusterScript, '--dir', dir, ...args], { env, maxBuffer: 16 * 1024 * 1024 });
  try {
    await script('start', '--port', '0', '--replicas', String(options.replicas ?? 3), '--timeout', String(timeout), ...(options.loopback ? ['--loopback'] : []));
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`scripts/cluster.sh start failed: ${stderr ?? (error as Error).message}`);
  }
  const info = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterInfo;
  return {
    ...info,
    apiKey: readFileSync(info.apiKeyFile, 'utf8').trim(),
    script,
    async replica(n, action, { wait = true } = {}) {
      await script('replica', String(n), action, ...(wait ? [] : ['--no-wait']));
    },
    async postgres(action) {
      await script('postgres', action);
    },
    inNginx() {
      const text = existsSync(join(dir, 'health/in-nginx')) ? readFileSync(join(dir, 'health/in-nginx'), 'utf8') : '';
      return text.split(/\s+/).filter(Boolean).map(Number);
    },
    pid(n) {
      return Number(readFileSync(info.replicas[n - 1]!.pidFile, 'utf8'));
    },
    async stop() {
      await script('stop');
    },
  };
}

/** POST a GraphQL request; the answer with the replica that nginx says answered it (x-polyhead-replica). */
export async function clusterGql<T = any>(url: string, query: string, variables?: Record<string, unknown>, apiKey?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
  return { status: response.status, replica: response.headers.get('x-polyhead-replica'), ...body };
}

/** The sum over labels of a counter in a replica's /metrics (0 when absent). */
export async function metricTotal(origin: string, name: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
