/**
 * npm run bench [-- --duration 10 --bundle <dir>]
 *
 * 1. raw: the backbone alone (the engine's Backbone over onnxruntime-node) at its best batch size, in the
 *    better of two set-ups (one session on every core; one single-threaded replica per core): the ceiling.
 * 2. served: end-to-end GraphQL throughput and p50/p99 latency with 1, 16, 64 and 256 concurrent clients,
 *    each request carrying one text, unique in the run (autocannon, in this process; the server runs in its
 *    own process).
 * 3. multi-task: analyze { sentiment entities embedding } against analyze { sentiment } on the same texts,
 *    and against three separate single-task requests per text. The three are measured in turn, --rounds
 *    times, and each reports its median round: on a shared 2-core machine one run of a few seconds varies
 *    by some 10%, as much as the difference measured.
 * Prints a markdown table and writes bench/results/serve.json.
 */
import os from 'node:os';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { backboneSpecOf } from '../src/bundle/backbone-spec.js';
import { ensureDefaultBundle } from '../src/bundle/default-bundle.js';
import { Backbone } from '../src/engine/backbone.js';
import { packageRoot } from '../src/paths.js';
import { serverNodeFlags } from '../src/server/node-flags.js';
import { tempDir } from '../tests/helpers/bundle-fixture.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    bundle: { type: 'string' },
    model: { type: 'string', default: 'default' },
    clients: { type: 'string', default: '1,16,64,256' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(args.duration);
const apiKey = 'bench-key';
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function sentences(): Promise<string[]> {
  return (await readFile(join(packageRoot, 'tests/fixtures/sentences.txt'), 'utf8')).split('\n').filter(Boolean);
}

/**
 * The backbone alone at each batch size, in two onnxruntime set-ups, and the best of all as the ceiling:
 * one session using every core (one batch at a time), and one single-threaded replica per core with as
 * many batches in flight (what the server runs by default on the CPU).
 */
async function rawCeiling(bundleDir: string, texts: string[]) {
  const spec = await backboneSpecOf(bundleDir);
  const cores = os.availableParallelism();
  const setups = [
    { name: `1 session x ${cores} threads`, replicas: 1, intraOpThreads: 0 },
    ...(cores >= 2 ? [{ name: `${cores} replicas x 1 thread`, replicas: cores, intraOpThreads: 1 }] : []),
  ];
  const rows = [];
  for (const setup of setups) {
    const backbone = await Backbone.load(spec, { executionProvider: 'cpu', intraOpThreads: setup.intraOpThreads, graphOptimization: 'all', replicas: setup.replicas });
    // Texts in length order, as the scheduler groups them: the most favourable case for the ceiling.
    const lengths = (await backbone.encodeBatch(texts)).map((e) => e.ids.length);
    const sorted = texts.map((text, i) => ({ text, n: lengths[i]! })).sort((a, b) => a.n - b.n).map((t) => t.text);
    for (const batch of [1, 8, 16, 32, 64, 128]) {
      const batches: string[][] = [];
      for (let i = 0; i < sorted.length; i += batch) batches.push(sorted.slice(i, i + batch));
      for (const b of batches) await backbone.run(await backbone.encodeBatch(b), false);
      const latencies: number[] = [];
      let done = 0;
      let nextBatch = 0;
      const start = performance.now();
      // One loop per replica, each taking the next batch: as many batches in flight as replicas.
      await Promise.all(
        Array.from({ length: setup.replicas }, async () => {
          while (performance.now() - start < Math.min(duration, 3) * 1000) {
            const b = batches[nextBatch++ % batches.length]!;
            const t0 = performance.now();
            await backbone.run(await backbone.encodeBatch(b), false); // tokenization included, as when serving
            latencies.push(performance.now() - t0);
            done += b.length;
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      const row = { setup: setup.name, batch, sentencesPerSecond: round(done / ((performance.now() - start) / 1000)), p50Ms: round(latencies[Math.floor(latencies.length / 2)]!, 2) };
      console.error('raw', JSON.stringify(row));
      rows.push(row);
    }
    await backbone.release();
  }
  const fastestBatch1 = rows.filter((r) => r.batch === 1).reduce((a, b) => (b.p50Ms < a.p50Ms ? b : a));
  return { byBatch: rows, best: rows.reduce((a, b) => (b.sentencesPerSecond > a.sentencesPerSecond ? b : a)), batch1: fastestBatch1 };
}

async function startServer(dataDir: string, bundleDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [...serverNodeFlags, join(packageRoot, 'dist/src/main.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', POLYHEAD_DATA_DIR: dataDir, POLYHEAD_BUNDLE_DIR: bundleDir, POLYHEAD_API_KEY: apiKey, POLYHEAD_MODELS: args.bundle ? '' : 'default' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /ready at (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { url, stop: () => new Promise((resolve) => (child.once('exit', () => resolve()), child.kill('SIGTERM'))) };
}

async function gql(url: string, query: string, variables: object = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: any; errors?: Array<{ message: string }> };
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data;
}

/**
 * The k-th text a load sends: a fixture sentence with " (round)" appended, so no two requests in a run
 * carry the same text. Otherwise clients that happen to send the same sentence at the same moment share one
 * backbone pass (the scheduler runs a text once), which flatters the served figures; the raw ceiling is
 * measured on the same suffixed texts, so both sides do the same work.
 */
function uniqueText(texts: readonly string[], k: number): string {
  return `${texts[k % texts.length]} (${Math.floor(k / texts.length)})`;
}

/** autocannon with one text per request, each text unique; `queries` are sent in turn per text. */
async function load(url: string, connections: number, texts: string[], queries: string[], seconds = duration) {
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
          return { ...request, body: JSON.stringify({ query: queries[k % queries.length], variables: { t: [uniqueText(texts, Math.floor(k / queries.length))] } }) };
        },
      },
    ],
  });
  const failures = result.errors + result.timeouts + result.non2xx;
  return {
    connections,
    requestsPerSecond: round(result.requests.average),
    textsPerSecond: round(result.requests.average / queries.length),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    failures,
  };
}

async function main() {
  const texts = await sentences();
  const bundleDir = join(packageRoot, '.cache', 'bundles');
  const defaultBundle = await ensureDefaultBundle(bundleDir);
  console.error('measuring the raw backbone...');
  // The raw ceiling runs on the texts the loads send (one round of them: the same lengths).
  const raw = await rawCeiling(args.bundle ?? defaultBundle, texts.map((_, k) => uniqueText(texts, k)));

  const server = await startServer(tempDir('polyhead-bench-'), bundleDir);
  let model = args.model;
  if (args.bundle) {
    await gql(server.url, 'mutation($p: String!) { importBundle(path: $p) { created } }', { p: args.bundle });
    model = (await gql(server.url, 'mutation($m: String!) { loadModel(model: $m) { name } }', { m: 'multi' })).loadModel.name;
  }
  const heads: string[] = (await gql(server.url, '{ server { loadedModels { name heads } } }')).server.loadedModels.find((m: any) => m.name === model).heads;
  const has = (head: string) => heads.includes(head);
  const single = has('sentiment')
    ? `query($t: [String!]!) { sentiment(texts: $t, model: "${model}") { label score } }`
    : `query($t: [String!]!) { embed(texts: $t, model: "${model}") }`;

  const served = [];
  for (const connections of args.clients.split(',').map(Number)) {
    await load(server.url, connections, texts, [single], 2); // warm-up
    const row = await load(server.url, connections, texts, [single]);
    console.error('served', JSON.stringify(row));
    served.push(row);
  }

  let multiTask;
  if (has('sentiment') && has('entities')) {
    const at = 64;
    const queries = {
      one: [`query($t: [String!]!) { analyze(texts: $t, model: "${model}") { sentiment { label score } } }`],
      three: [`query($t: [String!]!) { analyze(texts: $t, model: "${model}") { sentiment { label score } entities { text label start end } embedding } }`],
      // Both model heads without the 512-float embedding: shows what the heads cost apart from that payload.
      two: [`query($t: [String!]!) { analyze(texts: $t, model: "${model}") { sentiment { label score } entities { text label start end } } }`],
      separate: [
        `query($t: [String!]!) { sentiment(texts: $t, model: "${model}") { label score } }`,
        `query($t: [String!]!) { entities(texts: $t, model: "${model}") { text label start end } }`,
        `query($t: [String!]!) { embed(texts: $t, model: "${model}") }`,
      ],
    };
    const rounds: Record<keyof typeof queries, Awaited<ReturnType<typeof load>>[]> = { one: [], three: [], two: [], separate: [] };
    for (const list of Object.values(queries)) await load(server.url, at, texts, list, 2); // warm-up
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const [name, list] of Object.entries(queries) as Array<[keyof typeof queries, string[]]>) rounds[name].push(await load(server.url, at, texts, list));
    }
    const median = (runs: Awaited<ReturnType<typeof load>>[]) => [...runs].sort((a, b) => a.textsPerSecond - b.textsPerSecond)[Math.floor(runs.length / 2)]!;
    const [one, three, two, separate] = [median(rounds.one), median(rounds.three), median(rounds.two), median(rounds.separate)];
    multiTask = {
      clients: at,
      oneHead: one,
      threeHeads: three,
      twoModelHeads: two,
      threeSeparateRequests: separate,
      costThreeVsOne: round(one.textsPerSecond / three.textsPerSecond, 3),
      costSeparateVsOne: round(one.textsPerSecond / separate.textsPerSecond, 3),
      costTwoModelHeadsVsOne: round(one.textsPerSecond / two.textsPerSecond, 3),
      rounds: Object.fromEntries(Object.entries(rounds).map(([name, runs]) => [name, runs.map((run) => run.textsPerSecond)])),
    };
    console.error('multi-task', JSON.stringify(multiTask));
  }
  const metrics = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
  await server.stop();

  const at64 = served.find((s) => s.connections === 64);
  const at1 = served.find((s) => s.connections === 1);
  const goals = {
    servedAt64VsRaw: at64 ? round(at64.textsPerSecond / raw.best.sentencesPerSecond, 3) : null,
    threeHeadsVsOne: multiTask?.costThreeVsOne ?? null,
    p50At1MinusRawBatch1Ms: at1 ? round(at1.latencyMs.p50 - raw.batch1.p50Ms, 2) : null,
  };
  const lines = [
    `Machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}; model "${model}" (heads: ${heads.join(', ')}); ${texts.length} sentences, one per request, made unique with a " (k)" suffix.`,
    '',
    '| measurement | clients | texts/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|',
    `| raw backbone, batch 1 (${raw.batch1.setup}) | - | ${raw.batch1.sentencesPerSecond} | ${raw.batch1.p50Ms} | |`,
    `| raw backbone, best batch (${raw.best.batch}, ${raw.best.setup}) | - | ${raw.best.sentencesPerSecond} | ${raw.best.p50Ms} (batch) | |`,
    ...served.map((s) => `| served \`${has('sentiment') ? 'sentiment' : 'embed'}\` | ${s.connections} | ${s.textsPerSecond} | ${s.latencyMs.p50} | ${s.latencyMs.p99} |`),
    ...(multiTask
      ? [
          `| analyze { sentiment } | ${multiTask.clients} | ${multiTask.oneHead.textsPerSecond} | ${multiTask.oneHead.latencyMs.p50} | ${multiTask.oneHead.latencyMs.p99} |`,
          `| analyze { sentiment entities embedding } | ${multiTask.clients} | ${multiTask.threeHeads.textsPerSecond} | ${multiTask.threeHeads.latencyMs.p50} | ${multiTask.threeHeads.latencyMs.p99} |`,
          `| analyze { sentiment entities } (no embedding payload) | ${multiTask.clients} | ${multiTask.twoModelHeads.textsPerSecond} | ${multiTask.twoModelHeads.latencyMs.p50} | ${multiTask.twoModelHeads.latencyMs.p99} |`,
          `| sentiment + entities + embed as 3 requests | ${multiTask.clients} | ${multiTask.threeSeparateRequests.textsPerSecond} | ${multiTask.threeSeparateRequests.latencyMs.p50} | ${multiTask.threeSeparateRequests.latencyMs.p99} |`,
        ]
      : []),
    ...(multiTask ? ['', `Multi-task rows: median of ${args.rounds} rounds measured in turn (texts/s per round: ${Object.entries(multiTask.rounds).map(([name, runs]) => `${name} ${runs.join(', ')}`).join('; ')}).`] : []),
    '',
    `Goals: served at 64 clients / raw best = ${goals.servedAt64VsRaw} (goal >= 0.8); three heads / one head = ${goals.threeHeadsVsOne} (goal <= 1.15); p50 at 1 client - raw batch-1 = ${goals.p50At1MinusRawBatch1Ms} ms (goal <= 2).`,
  ];
  console.log(lines.join('\n'));
  const meanBatch = /polyhead_batch_size_sum\{model="[^"]+"\} ([\d.e+]+)\npolyhead_batch_size_count\{model="[^"]+"\} (\d+)/.exec(metrics);
  await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(packageRoot, 'bench', 'results', 'serve.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version }, model, heads, durationSeconds: duration, raw, served, multiTask, goals, meanBatchSize: meanBatch ? Number(meanBatch[1]) / Number(meanBatch[2]) : null, table: lines.join('\n') }, null, 2)}\n`,
  );
}

await main();
