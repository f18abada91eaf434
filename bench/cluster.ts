/**
 * npm run bench:cluster [-- --duration 10 --rounds 3 --clients 16,64]   (as root: scripts/cluster.sh)
 *
 * Through scripts/cluster.sh (PostgreSQL, three replicas on hosts of their own, nginx in front):
 * (a) what nginx costs: one replica's throughput and latency through nginx against the same replica directly,
 *     under the same load (autocannon, one unique text per request, as bench/serve.ts sends), the two measured in
 *     turn --rounds times; each reports its median round. Replicas 2 and 3 are stopped meanwhile, so that nginx
 *     has one replica to send to and the machine's cores serve that replica alone. The CPU time nginx's workers
 *     spend per request is read from /proc.
 * (b) how long a model change takes to reach every replica: loadModel through replica 1 (default 1.2.0, then
 *     back to 1.3.0), each replica's `server { loadedModels }` polled directly until it serves that version.
 * Prints a table and writes bench/results/cluster.json. Registry queries per inference request (0) are counted
 * by tests/server/registry-queries-per-inference.test.ts.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { packageRoot } from '../src/paths.js';
import { clusterGql, startCluster, type Cluster } from '../tests/helpers/cluster.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '16,64' },
    'change-timeout': { type: 'string', default: '60' },
  },
});
const duration = Number(args.duration);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = () => os.loadavg().map((x) => round(x, 2));
const query = 'query($t: [String!]!) { sentiment(texts: $t) { label score } }';

/** CPU seconds (user + system) the given processes have used so far. */
function cpuSeconds(pids: number[]): number {
  const tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick; // utime, stime
    } catch {
      // a worker that went away (an nginx reload) took its CPU time with it
    }
  }
  return total;
}

function nginxWorkers(cluster: Cluster): number[] {
  const master = readFileSync(cluster.nginx.pidFile, 'utf8').trim();
  return execFileSync('pgrep', ['-P', master], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
}

/** autocannon: one fixture sentence per request, made unique with a " (round)" suffix (see bench/serve.ts). */
async function load(url: string, connections: number, texts: string[], seconds: number) {
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request: any) => {
          const k = next++;
          return { ...request, body: JSON.stringify({ query, variables: { t: [`${texts[k % texts.length]} (${Math.floor(k / texts.length)})`] } }) };
        },
      },
    ],
  });
  return {
    connections,
    requestsPerSecond: round(result.requests.average),
    requests: result.requests.total,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    failures: result.errors + result.timeouts + result.non2xx,
  };
}

async function nginxCost(cluster: Cluster, texts: string[]) {
  await cluster.replica(2, 'stop');
  await cluster.replica(3, 'stop');
  for (const giveUpAt = Date.now() + 10_000; cluster.inNginx().join() !== '1' && Date.now() < giveUpAt; ) await sleep(100);
  if (cluster.inNginx().join() !== '1') throw new Error(`nginx still sends to ${cluster.inNginx()}`);
  const direct = cluster.replicas[0]!.url;
  const rows = [];
  for (const connections of args.clients.split(',').map(Number)) {
    await load(direct, connections, texts, 2); // warm-up, both paths
    await load(cluster.url, connections, texts, 2);
    const runs = { direct: [] as Awaited<ReturnType<typeof load>>[], nginx: [] as Awaited<ReturnType<typeof load>>[] };
    let nginxCpu = 0;
    let nginxRequests = 0;
    for (let r = 0; r < Number(args.rounds); r++) {
      runs.direct.push(await load(direct, connections, texts, duration));
      const workers = nginxWorkers(cluster);
      const before = cpuSeconds(workers);
      const run = await load(cluster.url, connections, texts, duration);
      nginxCpu += cpuSeconds(workers) - before;
      nginxRequests += run.requests;
      runs.nginx.push(run);
      console.error('nginx-cost', connections, 'direct', runs.direct.at(-1)!.requestsPerSecond, 'nginx', run.requestsPerSecond);
    }
    const median = (list: Awaited<ReturnType<typeof load>>[]) => [...list].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(list.length / 2)]!;
    const [d, n] = [median(runs.direct), median(runs.nginx)];
    rows.push({
      connections,
      direct: d,
      nginx: n,
      throughputCost: round(1 - n.requestsPerSecond / d.requestsPerSecond, 4),
      p50AddedMs: round(n.latencyMs.p50 - d.latencyMs.p50, 2),
      nginxCpuMicrosecondsPerRequest: round((nginxCpu / nginxRequests) * 1e6, 1),
      rounds: { direct: runs.direct.map((x) => x.requestsPerSecond), nginx: runs.nginx.map((x) => x.requestsPerSecond) },
    });
  }
  await cluster.replica(2, 'start');
  await cluster.replica(3, 'start');
  return rows;
}

/** Each replica's loaded version of `default`, asked directly (not through nginx). */
async function servedVersions(cluster: Cluster): Promise<Array<string | null>> {
  return Promise.all(
    cluster.replicas.map(async (replica) => {
      const answer = await clusterGql(replica.url, '{ server { loadedModels { name version } } }').catch(() => undefined);
      return answer?.data?.server.loadedModels.find((m: any) => m.name === 'default')?.version ?? null;
    }),
  );
}

async function modelChange(cluster: Cluster, version: string) {
  const started = performance.now();
  const answer = await clusterGql(cluster.replicas[0]!.url, 'mutation($v: String!) { loadModel(model: "default", version: $v) { version } }', { v: version }, cluster.apiKey);
  if (answer.errors) throw new Error(`loadModel ${version}: ${JSON.stringify(answer.errors)}`);
  const mutationMs = performance.now() - started;
  const reached: Array<number | null> = cluster.replicas.map(() => null);
  const giveUpAt = started + Number(args['change-timeout']) * 1000;
  while (reached.includes(null) && performance.now() < giveUpAt) {
    const versions = await servedVersions(cluster);
    versions.forEach((v, i) => {
      if (v === version && reached[i] === null) reached[i] = round(performance.now() - started, 0);
    });
    await sleep(25);
  }
  const all = reached.every((ms) => ms !== null);
  return { version, mutationMs: round(mutationMs, 0), reachedMs: reached, allReplicasMs: all ? Math.max(...(reached as number[])) : null, finalVersions: await servedVersions(cluster) };
}

/**
 * What the replicas ask of PostgreSQL with no request coming in: their connections (told apart by address, each
 * replica has its own) and the transactions per second the database counts (pg_stat_database, which a backend
 * updates within about a second of going idle; this client's own few are left out).
 */
async function postgresLoad(cluster: Cluster, seconds = 10) {
  const client = new pg.Client({ connectionString: cluster.databaseUrl });
  await client.connect();
  try {
    const { rows: connections } = await client.query<{ address: string; connections: number }>(
      `SELECT host(client_addr) AS address, count(*)::int AS connections FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1`,
    );
    const transactions = async () => Number((await client.query('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n);
    await sleep(2_000);
    const before = await transactions();
    await sleep(seconds * 1000);
    const after = await transactions();
    const own = 2; // the two reads above
    return {
      connectionsByReplica: connections.map((c) => ({ replica: cluster.replicas.find((r) => r.address === c.address)?.number ?? c.address, connections: c.connections })),
      idleTransactionsPerSecondPerReplica: round((after - before - own) / seconds / cluster.replicas.length, 2),
      seconds,
    };
  } finally {
    await client.end();
  }
}

/** Resident memory of each replica's server process, MiB. */
function replicaMemory(cluster: Cluster): number[] {
  return cluster.replicas.map((r) => round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${cluster.pid(r.number)}/status`, 'utf8'))![1]) / 1024, 0));
}

async function main() {
  const texts = (await readFile(join(packageRoot, 'tests/fixtures/sentences.txt'), 'utf8')).split('\n').filter(Boolean);
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadAverageAtStart: loadAverage() };
  console.error(`load average at start: ${machine.loadAverageAtStart.join(' ')}`);
  const cluster = await startCluster({ replicas: 3 });
  let nginx, changes, postgres, memoryMiB;
  try {
    console.error(`cluster up (${cluster.network}) in ${cluster.dir}`);
    nginx = await nginxCost(cluster, texts);
    memoryMiB = replicaMemory(cluster);
    changes = [];
    for (const version of ['1.2.0', '1.3.0']) {
      const change = await modelChange(cluster, version);
      console.error('model-change', JSON.stringify(change));
      changes.push(change);
    }
    postgres = await postgresLoad(cluster);
    console.error('postgres', JSON.stringify(postgres));
  } finally {
    await cluster.stop();
  }
  const loadAverageAtEnd = loadAverage();
  const propagated = changes.every((c) => c.allReplicasMs !== null);
  const lines = [
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel ?? 'unknown'}), node ${machine.node}; load average ${machine.loadAverageAtStart.join(' ')} at start, ${loadAverageAtEnd.join(' ')} at end; network: ${cluster.network}.`,
    '',
    '| one replica, `sentiment`, 1 unique text per request | clients | requests/s | p50 ms | p99 ms | failures |',
    '|---|---:|---:|---:|---:|---:|',
    ...nginx.flatMap((row) => [
      `| directly | ${row.connections} | ${row.direct.requestsPerSecond} | ${row.direct.latencyMs.p50} | ${row.direct.latencyMs.p99} | ${row.direct.failures} |`,
      `| through nginx | ${row.connections} | ${row.nginx.requestsPerSecond} | ${row.nginx.latencyMs.p50} | ${row.nginx.latencyMs.p99} | ${row.nginx.failures} |`,
    ]),
    '',
    ...nginx.map((row) => `nginx at ${row.connections} clients: costs ${round(row.throughputCost * 100, 1)}% of the throughput (goal <= 5%), adds ${row.p50AddedMs} ms at p50, ${row.nginxCpuMicrosecondsPerRequest} µs of nginx CPU per request; rounds (requests/s) direct ${row.rounds.direct.join(', ')}, nginx ${row.rounds.nginx.join(', ')}.`),
    '',
    ...changes.map((c) =>
      c.allReplicasMs !== null
        ? `loadModel default ${c.version} through replica 1: answered in ${c.mutationMs} ms, served by all ${cluster.replicas.length} replicas after ${c.allReplicasMs} ms (each: ${c.reachedMs.join(', ')} ms).`
        : `loadModel default ${c.version} through replica 1: answered in ${c.mutationMs} ms; not served by every replica within ${args['change-timeout']} s (each: ${c.reachedMs.map((ms) => ms ?? 'never').join(', ')}; versions then ${c.finalVersions.join(', ')}).`,
    ),
    '',
    `PostgreSQL with no requests: connections per replica ${postgres.connectionsByReplica.map((c) => `${c.replica}: ${c.connections}`).join(', ')}; ${postgres.idleTransactionsPerSecondPerReplica} transactions/s per idle replica (${postgres.seconds} s). Replica memory (RSS, after the nginx runs, replicas 2 and 3 freshly restarted): ${memoryMiB.join(', ')} MiB.`,
  ];
  console.log(lines.join('\n'));
  await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(packageRoot, 'bench', 'results', 'cluster.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine: { ...machine, loadAverageAtEnd }, network: cluster.network, durationSeconds: duration, rounds: Number(args.rounds), nginx, modelChange: { propagated, changes }, postgres, replicaMemoryMiB: memoryMiB, table: lines.join('\n') }, null, 2)}\n`,
  );
}

await main();
