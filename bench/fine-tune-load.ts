/**
 * npm run bench:fine-tune-load [-- --duration 20 --clients 16 --epochs 1]
 *
 * What a backbone fine-tune costs the requests served beside it: one server (dist/src/main.js, the default model,
 * POLYHEAD_FINE_TUNE_THREADS=1) answers `analyze { classify(head: "sentiment") }` for one text per request at 16
 * closed-loop clients (autocannon, each text unique) for --duration seconds while idle, then again while a
 * fineTuneBackbone job runs (its worker thread started before the window, the window ending before the job does).
 * Prints p50/p99 and requests/s of both windows and writes bench/results/fine-tune-load.json.
 */
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { packageRoot } from '../src/paths.js';
import { serverNodeFlags } from '../src/server/node-flags.js';
import { tempDir } from '../tests/helpers/bundle-fixture.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '20' }, clients: { type: 'string', default: '16' }, epochs: { type: 'string', default: '1' } } });
const duration = Number(args.duration);
const clients = Number(args.clients);
const apiKey = 'bench-key';
const sentences = ['The film was a delight from start to finish', 'I would not recommend this restaurant to anyone', 'An honest, moving story told with care', 'The plot drags and the jokes fall flat', 'Service was quick and the staff were friendly'];

async function gql(url: string, query: string, variables: object = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: any; errors?: Array<{ message: string }> };
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data;
}

async function load(url: string, round: string) {
  let k = 0;
  const result = await autocannon({
    url,
    connections: clients,
    duration,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request: any) => {
          const text = `${sentences[k % sentences.length]} (${round} ${Math.floor(k++ / sentences.length)})`;
          return { ...request, body: JSON.stringify({ query: 'query($t: [String!]!) { analyze(texts: $t) { classify(head: "sentiment") { label } } }', variables: { t: [text] } }) };
        },
      },
    ],
  });
  return { requestsPerSecond: Math.round(result.requests.average * 10) / 10, p50Ms: result.latency.p50, p99Ms: result.latency.p99, failures: result.errors + result.timeouts + result.non2xx };
}

async function main() {
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const server = await spawnServer(
    [...serverNodeFlags, join(packageRoot, 'dist/src/main.js')],
    { PORT: '0', HOST: '127.0.0.1', POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_BUNDLE_DIR: join(packageRoot, '.cache', 'bundles'), POLYHEAD_API_KEY: apiKey, POLYHEAD_FINE_TUNE_THREADS: '1' },
    /ready at (\S+)/,
  );
  try {
    await load(server.url, 'warm-up');
    const idle = await load(server.url, 'idle');
    console.error(`idle: ${JSON.stringify(idle)}`);
    const { fineTuneBackbone: job } = await gql(
      server.url,
      'mutation($e: Int) { fineTuneBackbone(model: "default", tasks: [{ head: "sentiment", dataset: "pang-lee-sentence-polarity" }, { head: "entities", dataset: "synthetic-ner" }], epochs: $e, load: false) { id } }',
      { e: Number(args.epochs) },
    );
    // Into the training steps proper (past the teacher passes) before the window opens.
    for (;;) {
      const { trainingJob } = await gql(server.url, 'query($id: ID!) { trainingJob(id: $id) { status phase error } }', { id: job.id });
      if (trainingJob.status === 'FAILED') throw new Error(trainingJob.error);
      if (trainingJob.phase === 'fine-tune') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const during = await load(server.url, 'during');
    const { trainingJob: after } = await gql(server.url, 'query($id: ID!) { trainingJob(id: $id) { status phase epoch progress } }', { id: job.id });
    console.error(`during fine-tuning: ${JSON.stringify(during)}; the job at the window's end: ${JSON.stringify(after)}`);
    const stillTraining = after.status === 'RUNNING' && after.phase === 'fine-tune';
    const result = {
      date: new Date().toISOString(),
      machine: { cores: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      clients,
      durationSeconds: duration,
      fineTuneThreads: 1,
      idle,
      duringFineTune: during,
      jobStillTrainingAtWindowEnd: stillTraining,
      p50Ratio: Math.round((during.p50Ms / idle.p50Ms) * 100) / 100,
    };
    console.log(`| window | requests/s | p50 ms | p99 ms | failures |\n|---|---:|---:|---:|---:|\n| idle | ${idle.requestsPerSecond} | ${idle.p50Ms} | ${idle.p99Ms} | ${idle.failures} |\n| fine-tune running | ${during.requestsPerSecond} | ${during.p50Ms} | ${during.p99Ms} | ${during.failures} |`);
    if (!stillTraining) console.log('note: the job left its training phase before the window ended; use more --epochs');
    await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
    await writeFile(join(packageRoot, 'bench', 'results', 'fine-tune-load.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await server.stop();
  }
}

await main();
