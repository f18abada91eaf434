/**
 * npm run bench:hf [-- --duration 10 --clients 1,16,64 --device cpu|cuda]
 *
 * Polyhead against transformers.js serving the same Hugging Face encoder (a random-weight folder shaped like
 * all-MiniLM-L6-v2: tests/helpers/hf-fixtures.ts, kind minilm-l6, made once into .cache/hf-bench/minilm-l6).
 *
 * 0. The model alone (the engine's Backbone in this process: tokenization and pooling, no HTTP or GraphQL) at its
 *    best batch size and onnxruntime set-up: the ceiling no server can pass on this machine.
 * 1. Polyhead (dist/src/main.js in its own process, empty data dir, no default model) imports the folder with
 *    importHuggingFace and loads it; transformers.js runs behind bench/hf-reference-server.mjs (feature-extraction,
 *    mean pooling, normalized), also in its own process. The two run one after the other, never together.
 * 2. Before any load, both must answer the same vectors for a few texts (cosine >= 0.9999): same work on both sides.
 * 3. Each is loaded with autocannon (in this process) at each client count, one text per request, every text unique
 *    in the run (a " (k)" suffix, so Polyhead's scheduler cannot share one pass between equal texts), after a warm-up.
 *    Latency is timed here per request with sub-millisecond resolution (autocannon's histogram keeps whole ms, too
 *    coarse for the one-client ratio); a request counts as a failure unless it is a 2xx with an embedding in it.
 * Prints a markdown table and the two goal ratios, and writes bench/results/hf.json.
 *
 * --device cuda sets POLYHEAD_DEVICE=cuda for Polyhead only: the reference server always runs transformers.js on the
 * CPU (it has no device option, and tests/reference installs onnxruntime-node without its CUDA binaries).
 */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { backboneSpecOf } from '../src/bundle/backbone-spec.js';
import { Backbone } from '../src/engine/backbone.js';
import { planHuggingFaceImport, writeBundle } from '../src/import/huggingface/import-hf.js';
import { packageRoot } from '../src/paths.js';
import { serverNodeFlags } from '../src/server/node-flags.js';
import { tempDir } from '../tests/helpers/bundle-fixture.js';
import { writeHfFixture } from '../tests/helpers/hf-fixtures.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,16,64' },
    device: { type: 'string', default: 'cpu' },
  },
});
const duration = Number(args.duration);
const clients = args.clients.split(',').map(Number);
if (!(duration > 0) || clients.some((c) => !(c >= 1))) throw new Error('--duration and --clients must be positive numbers');
if (!['cpu', 'cuda'].includes(args.device)) throw new Error(`--device must be cpu or cuda, got ${args.device}`);
const apiKey = 'bench-key';
const model = 'minilm-l6';
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The fixture folder, written once; rewritten when a file of it is missing (the list is kept beside it, written last). */
async function ensureFixture(): Promise<string> {
  const dir = join(packageRoot, '.cache', 'hf-bench', model);
  const listFile = `${dir}.files.json`;
  const listed: string[] | null = existsSync(listFile) ? JSON.parse(await readFile(listFile, 'utf8')) : null;
  if (!listed || !listed.every((file) => existsSync(join(dir, file)))) {
    console.error(`writing the ${model} fixture into ${dir}...`);
    const info = await writeHfFixture(model, dir);
    await writeFile(listFile, JSON.stringify(info.files));
  }
  return dir;
}

async function post(url: string, body: object, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const json = (await response.json()) as any;
  if (!response.ok || json.errors) throw new Error(`${url}: ${response.status} ${JSON.stringify(json.errors ?? json)}`);
  return json;
}

/** How one system is called: where, the request body for a list of texts, and how to read vectors back. */
interface Target {
  name: string;
  url: string;
  pid: number;
  body: (texts: string[]) => object;
  /** The start of every successful answer (the load checks it instead of parsing each body). */
  okPrefix: string;
  vectors: (answer: any) => number[][];
}

const polyhead = (url: string, pid: number): Target => ({
  name: 'Polyhead',
  url,
  pid,
  body: (t) => ({ query: `query($t: [String!]!) { embed(texts: $t, model: "${model}") }`, variables: { t } }),
  okPrefix: '{"data":{"embed":[[',
  vectors: (answer) => answer.data.embed,
});
const reference = (url: string, pid: number): Target => ({
  name: 'transformers.js',
  url: `${url}/embed`,
  pid,
  body: (texts) => ({ texts }),
  okPrefix: '{"embeddings":[[',
  vectors: (answer) => answer.embeddings,
});

/**
 * CPU seconds used so far by the whole machine, by this process and by the server process `pid` (its ORT threads
 * included; read from /proc, so 0 where there is none). Their difference over a row is what other processes took:
 * on a shared 2-core machine that is the first thing to look at before believing a row.
 */
function cpuSeconds(pid: number) {
  const machine = os.cpus().reduce((sum, { times: t }) => sum + t.user + t.nice + t.sys + t.irq, 0) / 1000;
  const self = process.cpuUsage();
  let server = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    server = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {}
  return { machine, self: (self.user + self.system) / 1e6, server };
}

/** The k-th text a load sends: a fixture sentence made unique in the run (as bench/serve.ts does). */
const uniqueText = (texts: readonly string[], k: number) => `${texts[k % texts.length]} (${Math.floor(k / texts.length)})`;

/** autocannon at `connections`, one unique text per request; latency timed per request from send to answer. */
async function load(target: Target, connections: number, texts: string[], seconds: number) {
  let next = 0;
  let ok = 0;
  let bad = 0;
  const latencies: number[] = [];
  const cpuBefore = cpuSeconds(target.pid);
  const result = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        // The context is per connection and lives from building a request to its answer.
        setupRequest: (request: any, context: any) => {
          context.sentAt = performance.now();
          return { ...request, body: JSON.stringify(target.body([uniqueText(texts, next++)])) };
        },
        onResponse: (status: number, body: string, context: any) => {
          if (status >= 200 && status < 300 && body.startsWith(target.okPrefix)) {
            ok++;
            latencies.push(performance.now() - context.sentAt);
          } else bad++;
        },
      },
    ],
  });
  const cpuAfter = cpuSeconds(target.pid);
  const used = (key: keyof typeof cpuBefore) => cpuAfter[key] - cpuBefore[key];
  latencies.sort((a, b) => a - b);
  const at = (q: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN, 2);
  return {
    system: target.name,
    clients: connections,
    textsPerSecond: round(ok / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    failures: bad + result.errors, // errors include timeouts; non-2xx answers are in `bad`
    /** Cores used on average during the row: by the server, by this process (the load generator), by all others. */
    cores: { server: round(used('server') / seconds, 2), bench: round(used('self') / seconds, 2), others: round((used('machine') - used('server') - used('self')) / seconds, 2) },
  };
}
type Row = Awaited<ReturnType<typeof load>>;

/** Every client count in turn, each after a 2-second warm-up at that count. */
async function loadAll(target: Target, texts: string[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const connections of clients) {
    await load(target, connections, texts, Math.min(2, duration));
    const row = await load(target, connections, texts, duration);
    console.error(JSON.stringify(row));
    rows.push(row);
  }
  return rows;
}

const cosine = (a: number[], b: number[]) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) (dot += a[i]! * b[i]!), (na += a[i]! ** 2), (nb += b[i]! ** 2);
  return dot / Math.sqrt(na * nb);
};

/**
 * The model alone, through the engine's Backbone (tokenization and pooling included, no HTTP, no GraphQL), on the
 * same unique texts in length-sorted batches: the best of two onnxruntime set-ups (one single-threaded copy per
 * core, each with a batch in flight; one copy on every core) over batch sizes. What no server can beat on this
 * machine, so it says whether a throughput goal is reachable at all.
 */
async function rawCeiling(fixture: string, texts: string[]) {
  const plan = await planHuggingFaceImport(fixture, { name: model });
  const bundle = tempDir('polyhead-bench-hf-bundle-');
  await writeBundle(plan.root, plan.manifest, plan.files, bundle);
  const spec = await backboneSpecOf(bundle);
  const cores = os.availableParallelism();
  const unique = Array.from({ length: 2000 }, (_, k) => uniqueText(texts, k));
  const rows: Array<{ setup: string; batch: number; textsPerSecond: number }> = [];
  for (const setup of [{ replicas: cores, intraOpThreads: 1 }, { replicas: 1, intraOpThreads: 0 }]) {
    const backbone = await Backbone.load(spec, { executionProvider: 'cpu', graphOptimization: 'all', ...setup });
    const lengths = (await backbone.encodeBatch(unique)).map((e) => e.ids.length);
    const sorted = unique.map((text, i) => ({ text, n: lengths[i]! })).sort((a, b) => a.n - b.n).map((t) => t.text);
    for (const batch of [1, 8, 16, 32, 64]) {
      const batches: string[][] = [];
      for (let i = 0; i < sorted.length; i += batch) batches.push(sorted.slice(i, i + batch));
      for (const b of batches.slice(0, 3)) await backbone.run(await backbone.encodeBatch(b), false);
      let done = 0;
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: setup.replicas }, async () => {
          while (performance.now() - t0 < 3000) {
            const b = batches[next++ % batches.length]!;
            await backbone.run(await backbone.encodeBatch(b), false);
            done += b.length;
          }
        }),
      );
      rows.push({ setup: `${setup.replicas} x ${setup.intraOpThreads || cores} thread(s)`, batch, textsPerSecond: round(done / ((performance.now() - t0) / 1000)) });
    }
    await backbone.release();
  }
  await rm(bundle, { recursive: true, force: true });
  return { byBatch: rows, best: rows.reduce((a, b) => (b.textsPerSecond > a.textsPerSecond ? b : a)) };
}

async function main() {
  const texts = (await readFile(join(packageRoot, 'tests/fixtures/sentences.txt'), 'utf8')).split('\n').filter(Boolean);
  const fixture = await ensureFixture();
  const probe = [0, 1, 7, 42].map((k) => uniqueText(texts, k)); // texts for the parity check
  console.error('measuring the model alone (the ceiling)...');
  const ceiling = await rawCeiling(fixture, texts);

  // Polyhead: import and load the folder, answer the probe texts, then the load.
  const dataDir = tempDir('polyhead-bench-hf-'); // removed afterwards: the import copies the ~90 MB model into it
  const server = await spawnServer(
    [...serverNodeFlags, join(packageRoot, 'dist/src/main.js')],
    { PORT: '0', HOST: '127.0.0.1', POLYHEAD_DATA_DIR: dataDir, POLYHEAD_MODELS: '', POLYHEAD_API_KEY: apiKey, POLYHEAD_BUNDLE_ROOTS: dirname(fixture), POLYHEAD_DEVICE: args.device },
    /ready at (\S+)/,
  );
  const auth = { authorization: `Bearer ${apiKey}` };
  await post(server.url, { query: 'mutation($p: String!) { importHuggingFace(path: $p, name: "minilm-l6") { created } }', variables: { p: fixture } }, auth);
  await post(server.url, { query: `mutation { loadModel(model: "${model}") { name } }` }, auth);
  const ph = polyhead(server.url, server.pid);
  const polyheadVectors = ph.vectors(await post(ph.url, ph.body(probe)));
  const polyheadRows = await loadAll(ph, texts);
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });

  // transformers.js on the same folder, same texts and loads.
  if (!existsSync(join(packageRoot, 'tests/reference/node_modules'))) {
    spawnSync('npm', ['run', 'reference:install'], { cwd: packageRoot, stdio: 'inherit' });
  }
  const ref = await spawnServer(
    [join(packageRoot, 'bench/hf-reference-server.mjs'), '--model', fixture, '--pooling', 'mean', '--normalize', '--port', '0'],
    {},
    /listening on (\S+)/,
  );
  const rt = reference(ref.url, ref.pid);
  const referenceVectors = rt.vectors(await post(rt.url, rt.body(probe)));
  const cosines = probe.map((_, i) => round(cosine(polyheadVectors[i]!, referenceVectors[i]!), 6));
  if (cosines.some((c) => !(c >= 0.9999))) {
    await ref.stop();
    throw new Error(`Polyhead and transformers.js disagree on the probe texts (cosines ${cosines.join(', ')}): not the same work`);
  }
  const referenceRows = await loadAll(rt, texts);
  await ref.stop();

  // The table, the two goals, the JSON.
  const rows = [...polyheadRows, ...referenceRows];
  const find = (system: string, c: number) => rows.find((r) => r.system === system && r.clients === c);
  const [p64, r64, p1, r1] = [find('Polyhead', 64), find('transformers.js', 64), find('Polyhead', 1), find('transformers.js', 1)];
  const ratios = {
    throughputAt64: p64 && r64 ? round(p64.textsPerSecond / r64.textsPerSecond, 2) : null,
    p50At1: p1 && r1 ? round(p1.p50Ms / r1.p50Ms, 3) : null,
  };
  const goals = {
    throughputAt64: { goal: '>= 3', met: ratios.throughputAt64 !== null && ratios.throughputAt64 >= 3 },
    p50At1: { goal: '<= 1.1', met: ratios.p50At1 !== null && ratios.p50At1 <= 1.1 },
  };
  const lines = [
    `Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}; ${model} (random weights, all-MiniLM-L6-v2 shape), one text per request, ${duration} s per row; Polyhead device ${args.device}, transformers.js cpu; probe cosines ${cosines.join(', ')}.`,
    '',
    '| system | clients | texts/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.system} | ${r.clients} | ${r.textsPerSecond} | ${r.p50Ms} | ${r.p99Ms} |${r.failures ? ` (${r.failures} failures)` : ''}`),
    '',
    `Cores taken by other processes during the rows: ${rows.map((r) => r.cores.others).join(', ')} (of ${os.availableParallelism()}; above ~0.2 the row is not to be trusted).`,
    `The model alone (Backbone, tokenization and pooling included, no HTTP): best ${ceiling.best.textsPerSecond} texts/s (${ceiling.best.setup}, batch ${ceiling.best.batch}); Polyhead at 64 clients serves ${p64 ? round(p64.textsPerSecond / ceiling.best.textsPerSecond, 2) : '?'} of it, transformers.js ${r64 ? round(r64.textsPerSecond / ceiling.best.textsPerSecond, 2) : '?'}.`,
    `Polyhead / transformers.js throughput at 64 clients: ${ratios.throughputAt64} (goal >= 3: ${goals.throughputAt64.met ? 'met' : 'not met'}${r64 && 3 * r64.textsPerSecond > ceiling.best.textsPerSecond ? `; 3x would be ${round(3 * r64.textsPerSecond)} texts/s, above the model's own ceiling here` : ''})`,
    `Polyhead p50 / transformers.js p50 at 1 client: ${ratios.p50At1} (goal <= 1.1: ${goals.p50At1.met ? 'met' : 'not met'})`,
  ];
  console.log(lines.join('\n'));
  await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
  const machine = { cores: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version, loadAverage: os.loadavg().map((x) => round(x, 2)) };
  await writeFile(
    join(packageRoot, 'bench', 'results', 'hf.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine, model, device: { polyhead: args.device, transformersJs: 'cpu' }, durationSeconds: duration, probeCosines: cosines, ceiling, rows, ratios, goals, table: lines.join('\n') }, null, 2)}\n`,
  );
}

await main();
