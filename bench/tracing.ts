/**
 * npm run bench:tracing [-- --duration 10 --clients 16 --rounds 3 --baseline <dir>]
 *
 * What tracing costs a request. The built server (dist/src/main.js) runs with tracing off, with tracing on
 * and every trace exported, and with 10% of traces sampled; spans go to an OTLP receiver in this process that
 * counts and drops them. With --baseline, another built Polyhead checkout runs too (e.g. one from before
 * tracing existed). Each round measures every set-up in turn, each round starting with the next one, under
 * the same load: one multi-task request per text (`analyze { sentiment entities }`, every text unique).
 * Besides requests/s and latency, which a busy machine moves by tens of per cent, it reports the CPU time the
 * server's main thread spent per request (from /proc, Linux only): HTTP, GraphQL, tokenization and every span
 * are made there, so that is where tracing's cost shows, and it is far less sensitive to other processes.
 * Prints a markdown table and writes bench/results/tracing.json.
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ensureDefaultBundle } from '../src/bundle/default-bundle.js';
import { packageRoot } from '../src/paths.js';
import { serverNodeFlags } from '../src/server/node-flags.js';
import { tempDir } from '../tests/helpers/bundle-fixture.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' },
  },
});
const duration = Number(args.duration);
const clients = Number(args.clients);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const query = 'query($t: [String!]!) { analyze(texts: $t) { sentiment { label score } entities { text label } } }';
const ticksPerSecond = 100; // USER_HZ: /proc reports CPU time in these on every Linux platform node runs on

/** An OTLP/HTTP receiver that counts spans and drops them (as bench/otlp-sink.mjs). */
async function startSink() {
  const counts = { exports: 0, spans: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      counts.exports++;
      counts.spans += Buffer.concat(chunks).toString('utf8').match(/"spanId":/g)?.length ?? 0;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts, close: () => new Promise<void>((done) => server.close(() => done())) };
}

/** CPU seconds (user + system) of one thread, or of the whole process. */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

async function measure(name: string, root: string, env: NodeJS.ProcessEnv, texts: string[], offset: number) {
  const bundleDir = join(packageRoot, '.cache', 'bundles');
  const server = await spawnServer(
    [...serverNodeFlags, join(root, 'dist/src/main.js')],
    { PORT: '0', HOST: '127.0.0.1', POLYHEAD_DATA_DIR: tempDir('polyhead-bench-tracing-'), POLYHEAD_BUNDLE_DIR: bundleDir, POLYHEAD_LOG: 'info', ...env },
    /ready at (\S+)/,
  );
  try {
    let next = offset;
    const run = (seconds: number) =>
      autocannon({
        url: server.url,
        connections: clients,
        duration: seconds,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        requests: [{ setupRequest: (request: any) => ({ ...request, body: JSON.stringify({ query, variables: { t: [`${texts[next % texts.length]} (${Math.floor(next++ / texts.length)})`] } }) }) }],
      });
    await run(2); // warm-up: JIT, onnxruntime's arenas
    const [thread0, process0] = [cpuSeconds(server.pid, server.pid), cpuSeconds(server.pid)];
    const result = await run(duration);
    const [thread1, process1] = [cpuSeconds(server.pid, server.pid), cpuSeconds(server.pid)];
    const requests = result.requests.total;
    const row = {
      name,
      requestsPerSecond: round(result.requests.average),
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      mainThreadCpuMsPerRequest: round(((thread1 - thread0) * 1000) / requests, 3),
      processCpuMsPerRequest: round(((process1 - process0) * 1000) / requests, 3),
      failures: result.errors + result.timeouts + result.non2xx,
    };
    console.error(JSON.stringify(row));
    return row;
  } finally {
    await server.stop();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  const texts = (await readFile(join(packageRoot, 'tests/fixtures/sentences.txt'), 'utf8')).split('\n').filter(Boolean);
  await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'));
  const sink = await startSink();
  const setups: Array<{ name: string; root: string; env: NodeJS.ProcessEnv }> = [
    ...(args.baseline ? [{ name: 'baseline (--baseline)', root: resolve(args.baseline), env: {} }] : []),
    { name: 'tracing off', root: packageRoot, env: {} },
    { name: 'tracing on (every span exported)', root: packageRoot, env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'polyhead-bench' } },
    {
      name: 'tracing on, 10% of traces sampled',
      root: packageRoot,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'polyhead-bench', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
    },
  ];
  const rows: Record<string, Array<Awaited<ReturnType<typeof measure>>>> = {};
  let offset = 0;
  for (let r = 0; r < Number(args.rounds); r++) {
    // Each round starts with the next set-up, so that none is always the one measured first (or after another).
    for (const setup of [...setups.slice(r % setups.length), ...setups.slice(0, r % setups.length)]) {
      (rows[setup.name] ??= []).push(await measure(setup.name, setup.root, { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', ...setup.env }, texts, offset));
      offset += 1_000_000; // no text repeats across runs either
    }
  }
  await sink.close();
  const summary = setups.map(({ name }) => {
    const runs = rows[name]!;
    return {
      name,
      requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
      p50Ms: median(runs.map((r) => r.p50Ms)),
      p99Ms: median(runs.map((r) => r.p99Ms)),
      mainThreadCpuMsPerRequest: median(runs.map((r) => r.mainThreadCpuMsPerRequest)),
      processCpuMsPerRequest: median(runs.map((r) => r.processCpuMsPerRequest)),
      failures: runs.reduce((sum, r) => sum + r.failures, 0),
    };
  });
  console.log(`Machine: ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model.trim()}), node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end; ${clients} clients, ${duration} s per run, median of ${args.rounds} rounds; spans received: ${sink.counts.spans} in ${sink.counts.exports} exports.\n`);
  console.log('| set-up | requests/s | p50 ms | p99 ms | main thread CPU ms / request | process CPU ms / request |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const s of summary) console.log(`| ${s.name} | ${s.requestsPerSecond} | ${s.p50Ms} | ${s.p99Ms} | ${s.mainThreadCpuMsPerRequest} | ${s.processCpuMsPerRequest} |`);
  await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(packageRoot, 'bench', 'results', 'tracing.json'),
    `${JSON.stringify({ date: new Date().toISOString(), cpus: os.availableParallelism(), node: process.version, clients, duration, rounds: Number(args.rounds), loadAverageAtEnd: os.loadavg(), spans: sink.counts, summary, runs: rows }, null, 2)}\n`,
  );
}

await main();
