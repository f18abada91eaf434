/**
 * npm run bench:translate [-- --duration 30 --clients 1,16,64 --device cpu|cuda]
 *
 * Translation served three ways on the same random-weight opus-mt-shaped Marian folder (tests/helpers/marian-fixtures.ts,
 * kind opus-mt-shape, layout merged: 6+6 layers, d_model 512, ~58k pieces; written once into
 * .cache/translate-bench/opus-mt-en-de and reused):
 *   - Polyhead (continuous): dist/src/main.js in its own process (empty data dir, no default model), the folder imported
 *     with importHuggingFace and loaded; its generator admits new requests at every decoding step;
 *   - Polyhead (static): the same with POLYHEAD_CONTINUOUS_BATCHING=false: static batching as generate() does it (new
 *     requests wait until the running batch has drained; a sequence that ends early is answered, but its rows run on
 *     as padding until the batch's longest ends);
 *   - transformers.js: bench/translate-reference-server.mjs, the translation pipeline behind node:http, one pipeline
 *     call per request.
 * They run one after the other, never together.
 *
 * Parity first: the reference server answers a few probe requests, then each Polyhead configuration must answer the
 * same texts (greedy, same limits; one text per request); any difference stops the run before it measures anything
 * of that system.
 *
 * Load: closed-loop clients in this process (node:http, keep-alive), each sending one request at a time with one text;
 * request k of a phase carries a fixture sentence made unique with a " (round)" suffix (as bench/serve.ts does) and a
 * length n in 8..64 drawn from a seeded generator, so every system gets the same sequence of requests. The request asks
 * for maxNewTokens = minNewTokens = n (min_new_tokens in transformers.js): the random-weight model would choose </s>
 * after ~12 tokens whatever the limit, so the minimum is what makes output lengths vary as a real model's do; every
 * answer is n - 1 tokens and the forced </s> (both systems force eos at the limit, as Marian's generation config
 * asks). Each phase
 * runs a warm-up, then the --duration window, then stops sending and lets every request in flight finish (the
 * reference server cannot cancel a pipeline call: a request abandoned by a client would run on into the next phase).
 * A phase counts the requests that ended inside its window: requests/s, generated tokens/s, p50/p99 latency timed
 * here from send to answer.
 *
 * Tokens are counted the same way for all three: each answer's text re-tokenized with the folder's tokenizer.json
 * (@huggingface/tokenizers, no special tokens), after the phase, so the counting costs the load nothing. Polyhead's
 * own tokenCount (ids generated, </s> excluded) is kept beside it: the two differ only where a decoded text
 * re-segments differently or an <unk> vanishes from the text; the JSON records the ratio.
 *
 * Time per token at one client: sum of latencies / sum of tokens over the requests (same k, so the same text and
 * maxNewTokens) that all three systems completed in their one-client window.
 *
 * Prints a markdown table and the three goals, and writes bench/results/translate.json (with Polyhead's step metrics
 * per phase: mean rows per decoding step and mean step time, from /metrics).
 *
 * --device cuda sets POLYHEAD_DEVICE=cuda for Polyhead only: the reference server always runs transformers.js on the
 * CPU (tests/reference installs onnxruntime-node without its CUDA binaries).
 */
import os from 'node:os';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import { packageRoot } from '../src/paths.js';
import { serverNodeFlags } from '../src/server/node-flags.js';
import { tempDir } from '../tests/helpers/bundle-fixture.js';
import { writeMarianFixture } from '../tests/helpers/marian-fixtures.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    clients: { type: 'string', default: '1,16,64' },
    device: { type: 'string', default: 'cpu' },
  },
});
const duration = Number(args.duration);
const warmup = Math.min(5, duration);
const clients = args.clients.split(',').map(Number);
if (!(duration > 0) || clients.some((c) => !(Number.isInteger(c) && c >= 1))) throw new Error('--duration must be a positive number and --clients positive integers');
if (!['cpu', 'cuda'].includes(args.device)) throw new Error(`--device must be cpu or cuda, got ${args.device}`);
const apiKey = 'bench-key';
const model = 'opus-mt-en-de';
const seed = 20240611;
const minNewTokens = 8;
const maxNewTokens = 64;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The fixture folder, written once; rewritten when a file of it is missing (the list is kept beside it, written last). */
async function ensureFixture(): Promise<string> {
  const dir = join(packageRoot, '.cache', 'translate-bench', model);
  const listFile = `${dir}.files.json`;
  const listed: string[] | null = existsSync(listFile) ? JSON.parse(await readFile(listFile, 'utf8')) : null;
  if (!listed || !listed.every((file) => existsSync(join(dir, file)))) {
    console.error(`writing the opus-mt-shape fixture into ${dir} (about 0.5 GB)...`);
    const info = await writeMarianFixture('opus-mt-shape', dir, { layout: 'merged' });
    await writeFile(listFile, JSON.stringify(info.files));
  }
  return dir;
}

/** A small seeded generator (mulberry32): the same draws in every run and for every system. */
function seeded(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Request k of every phase: its text (unique in the phase) and its maxNewTokens (8..64, the k-th seeded draw). */
function requestPlan(texts: readonly string[]) {
  const next = seeded(seed);
  const limits: number[] = [];
  return (k: number) => {
    while (limits.length <= k) limits.push(minNewTokens + Math.floor(next() * (maxNewTokens - minNewTokens + 1)));
    return { text: `${texts[k % texts.length]} (${Math.floor(k / texts.length)})`, maxNewTokens: limits[k]! };
  };
}
type Plan = ReturnType<typeof requestPlan>;

/** One POST with a JSON body over `agent`: status and parsed body (null when not JSON). */
function post(url: string, body: object, agent?: http.Agent, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {}
        resolve({ status: response.statusCode ?? 0, json });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });
}

async function postOk(url: string, body: object, headers: Record<string, string> = {}) {
  const { status, json } = await post(url, body, undefined, headers);
  if (status < 200 || status >= 300 || !json || json.errors || json.error) throw new Error(`${url}: ${status} ${JSON.stringify(json?.errors ?? json)}`);
  return json;
}

/**
 * CPU time (clock ticks) of the whole machine and of the benchmark's own processes (this one and the server), from
 * /proc on Linux: what other processes took during a window is the machine's busy time less ours.
 */
function cpuSnapshot(pids: number[]): { busy: number; total: number; ours: number } | null {
  if (!existsSync('/proc/stat')) return null;
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
    const ours = ['self', ...pids.map(String)].reduce((sum, pid) => {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return sum + Number(after[11]) + Number(after[12]);
    }, 0);
    return { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal, ours };
  } catch {
    return null;
  }
}

/** How one system is called, and how its answer is read: the text, and the generated token count where it says one. */
interface Target {
  name: string;
  url: string;
  body: (text: string, maxNewTokens: number) => object;
  read: (json: any) => { text: string; tokenCount?: number } | null;
  metricsUrl?: string;
  /** The server's process id (for the CPU accounting). */
  pid: number;
}

const polyheadTarget = (name: string, url: string, pid: number): Target => ({
  name,
  pid,
  url,
  body: (text, n) => ({ query: `query($t: [String!]!, $n: Int) { translate(texts: $t, model: "${model}", beams: 1, maxNewTokens: $n, minNewTokens: $n) { text tokenCount } }`, variables: { t: [text], n } }),
  read: (json) => {
    const t = json?.errors ? undefined : json?.data?.translate?.[0];
    return t && typeof t.text === 'string' ? { text: t.text, tokenCount: t.tokenCount } : null;
  },
  metricsUrl: url.replace(/\/graphql$/, '/metrics'),
});
const referenceTarget = (url: string, pid: number): Target => ({
  name: 'transformers.js',
  pid,
  url: `${url}/translate`,
  body: (text, n) => ({ texts: [text], maxNewTokens: n, minNewTokens: n }),
  read: (json) => {
    const t = json?.translations?.[0];
    return t && typeof t.text === 'string' ? { text: t.text } : null;
  },
});

/** Polyhead's generation histograms (sums and counts), to take the difference over a window. */
async function stepMetrics(target: Target) {
  if (!target.metricsUrl) return null;
  const text = await (await fetch(target.metricsUrl)).text();
  const value = (name: string) => {
    const match = new RegExp(`^${name}\\{model="${model}"\\} ([\\d.e+-]+)$`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  return {
    steps: value('polyhead_generation_step_seconds_count'),
    stepSeconds: value('polyhead_generation_step_seconds_sum'),
    rows: value('polyhead_generation_step_rows_sum'),
    queueWaitSeconds: value('polyhead_generation_queue_wait_seconds_sum'),
    queueWaits: value('polyhead_generation_queue_wait_seconds_count'),
    tokens: value('polyhead_generated_tokens_total'),
  };
}
type StepMetrics = NonNullable<Awaited<ReturnType<typeof stepMetrics>>>;

interface Done {
  k: number;
  maxNewTokens: number;
  latencyMs: number;
  text: string;
  tokenCount?: number;
  tokens: number;
}

/**
 * `connections` closed-loop clients for warm-up + duration seconds; then no new requests and every request in flight
 * is awaited. Rows count the requests that ended inside the window.
 */
async function measure(target: Target, connections: number, plan: Plan, tokenizer: Tokenizer) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const loadAverage = os.loadavg().map((x) => round(x, 2));
  const start = performance.now();
  const windowStart = start + warmup * 1000;
  const windowEnd = windowStart + duration * 1000;
  const done: Done[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let next = 0;
  let metricsBefore: Promise<StepMetrics | null> | undefined;
  let metricsAfter: Promise<StepMetrics | null> | undefined;
  let cpuBefore = null as ReturnType<typeof cpuSnapshot>;
  let cpuAfter = null as ReturnType<typeof cpuSnapshot>;
  const beforeTimer = setTimeout(() => ((cpuBefore = cpuSnapshot([target.pid])), (metricsBefore = stepMetrics(target))), windowStart - start);
  const afterTimer = setTimeout(() => ((cpuAfter = cpuSnapshot([target.pid])), (metricsAfter = stepMetrics(target))), windowEnd - start);
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < windowEnd) {
        const k = next++;
        const request = plan(k);
        const sentAt = performance.now();
        let answer: ReturnType<Target['read']> = null;
        let problem: string | undefined;
        try {
          const { status, json } = await post(target.url, target.body(request.text, request.maxNewTokens), agent);
          answer = status >= 200 && status < 300 ? target.read(json) : null;
          if (!answer) problem = `${status} ${JSON.stringify(json).slice(0, 300)}`;
        } catch (error) {
          problem = String(error);
        }
        const endedAt = performance.now();
        if (endedAt < windowStart || endedAt > windowEnd) continue;
        if (!answer) {
          failures++;
          firstFailure ??= problem;
          continue;
        }
        done.push({ k, maxNewTokens: request.maxNewTokens, latencyMs: endedAt - sentAt, text: answer.text, tokenCount: answer.tokenCount, tokens: 0 });
      }
    }),
  );
  clearTimeout(beforeTimer);
  clearTimeout(afterTimer);
  agent.destroy();
  for (const d of done) d.tokens = tokenizer.encode(d.text, { add_special_tokens: false }).ids.length;
  const [before, after] = await Promise.all([metricsBefore, metricsAfter]);
  const latencies = done.map((d) => d.latencyMs).sort((a, b) => a - b);
  const at = (q: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN, 1);
  const tokens = done.reduce((sum, d) => sum + d.tokens, 0);
  const polyheadTokens = done.every((d) => d.tokenCount !== undefined) ? done.reduce((sum, d) => sum + d.tokenCount!, 0) : null;
  const steps = before && after ? after.steps - before.steps : 0;
  const cores = os.availableParallelism();
  const cpu = (a: ReturnType<typeof cpuSnapshot>, b: ReturnType<typeof cpuSnapshot>) =>
    a && b && b.total > a.total
      ? { benchmarkCores: round(((b.ours - a.ours) / (b.total - a.total)) * cores, 2), otherProcessesCores: round((Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / (b.total - a.total)) * cores, 2) }
      : null;
  const row = {
    system: target.name,
    clients: connections,
    requests: done.length,
    tokensPerSecond: round(tokens / duration),
    requestsPerSecond: round(done.length / duration, 2),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    meanTokensPerRequest: round(tokens / done.length, 2),
    msPerToken: round(done.reduce((sum, d) => sum + d.latencyMs, 0) / tokens, 2),
    failures,
    ...(firstFailure ? { firstFailure } : {}),
    /** Polyhead's own count (ids generated, </s> excluded) over re-tokenized text. */
    polyheadTokenCountRatio: polyheadTokens === null ? null : round(polyheadTokens / tokens, 4),
    generation:
      before && after && steps > 0
        ? {
            steps,
            meanRowsPerStep: round((after.rows - before.rows) / steps, 2),
            meanStepMs: round(((after.stepSeconds - before.stepSeconds) / steps) * 1000, 2),
            busyFraction: round((after.stepSeconds - before.stepSeconds) / duration, 3),
            meanQueueWaitMs: after.queueWaits > before.queueWaits ? round(((after.queueWaitSeconds - before.queueWaitSeconds) / (after.queueWaits - before.queueWaits)) * 1000, 1) : null,
          }
        : null,
    loadAverage,
    /** Mean cores busy during the window: the server and this process, and everything else on the machine. */
    cpu: cpu(cpuBefore, cpuAfter),
  };
  return { row, done };
}
type Measured = Awaited<ReturnType<typeof measure>>;

async function loadAll(target: Target, plan: Plan, tokenizer: Tokenizer): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const connections of clients) {
    const measured = await measure(target, connections, plan, tokenizer);
    console.error(JSON.stringify(measured.row));
    out.push(measured);
  }
  return out;
}

/** The probe requests of the parity check: the first requests of every phase. */
const probeKs = [0, 1, 2, 3, 4, 5];

async function probe(target: Target, plan: Plan) {
  const answers = [];
  for (const k of probeKs) {
    const { text, maxNewTokens } = plan(k);
    const answer = target.read(await postOk(target.url, target.body(text, maxNewTokens)));
    if (!answer) throw new Error(`${target.name} gave no translation for probe ${k}`);
    answers.push({ text, maxNewTokens, translation: answer.text, tokenCount: answer.tokenCount });
  }
  return answers;
}

async function startPolyhead(name: string, fixture: string, continuous: boolean) {
  const dataDir = tempDir('polyhead-bench-translate-'); // removed when it stops: the import copies the ~0.5 GB model into it
  const started = await spawnServer(
    [...serverNodeFlags, join(packageRoot, 'dist/src/main.js')],
    {
      PORT: '0',
      HOST: '127.0.0.1',
      POLYHEAD_DATA_DIR: dataDir,
      POLYHEAD_MODELS: '',
      POLYHEAD_API_KEY: apiKey,
      POLYHEAD_BUNDLE_ROOTS: dirname(fixture),
      POLYHEAD_DEVICE: args.device,
      POLYHEAD_CONTINUOUS_BATCHING: String(continuous),
    },
    /ready at (\S+)/,
  ).catch(async (error) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const server = { ...started, stop: async () => (await started.stop(), await rm(dataDir, { recursive: true, force: true })) };
  const auth = { authorization: `Bearer ${apiKey}` };
  try {
    await postOk(server.url, { query: 'mutation($p: String!, $n: String) { importHuggingFace(path: $p, name: $n) { created } }', variables: { p: fixture, n: model } }, auth);
    await postOk(server.url, { query: `mutation { loadModel(model: "${model}") { name } }` }, auth);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { ...server, target: polyheadTarget(name, server.url, server.pid) };
}

function startReference(fixture: string) {
  return spawnServer([join(packageRoot, 'bench/translate-reference-server.mjs'), '--model', fixture, '--port', '0'], {}, /listening on (\S+)/);
}

async function main() {
  const texts = (await readFile(join(packageRoot, 'tests/fixtures/sentences.txt'), 'utf8')).split('\n').filter(Boolean);
  const fixture = await ensureFixture();
  const tokenizer = new Tokenizer(JSON.parse(await readFile(join(fixture, 'tokenizer.json'), 'utf8')), JSON.parse(await readFile(join(fixture, 'tokenizer_config.json'), 'utf8')));
  const plan = requestPlan(texts);
  if (!existsSync(join(packageRoot, 'tests/reference/node_modules'))) {
    spawnSync('npm', ['run', 'reference:install'], { cwd: packageRoot, stdio: 'inherit' });
  }

  // The reference's answers to the probes, before anything is measured.
  let ref = await startReference(fixture);
  const expected = await probe(referenceTarget(ref.url, ref.pid), plan);
  await ref.stop();

  const parity: Array<{ system: string; probes: Awaited<ReturnType<typeof probe>> }> = [{ system: 'transformers.js', probes: expected }];
  const measured: Measured[] = [];
  for (const [name, continuous] of [
    ['Polyhead (continuous)', true],
    ['Polyhead (static)', false],
  ] as const) {
    const server = await startPolyhead(name, fixture, continuous);
    try {
      const answers = await probe(server.target, plan);
      const differ = answers.map((a, i) => ({ ...a, expected: expected[i]!.translation })).filter((a) => a.translation !== a.expected);
      if (differ.length) {
        const shown = differ.map((a) => `  ${JSON.stringify(a.text)} (maxNewTokens ${a.maxNewTokens}):\n    Polyhead        ${JSON.stringify(a.translation)}\n    transformers.js ${JSON.stringify(a.expected)}`);
        throw new Error(`${name} and transformers.js translate differently (greedy, same maxNewTokens): not the same work\n${shown.join('\n')}`);
      }
      parity.push({ system: name, probes: answers });
      measured.push(...(await loadAll(server.target, plan, tokenizer)));
    } finally {
      await server.stop();
    }
  }
  ref = await startReference(fixture);
  try {
    measured.push(...(await loadAll(referenceTarget(ref.url, ref.pid), plan, tokenizer)));
  } finally {
    await ref.stop();
  }

  // Ratios and goals.
  const rows = measured.map((m) => m.row);
  const find = (system: string, c: number) => measured.find((m) => m.row.system === system && m.row.clients === c);
  const [cont, stat, tjs] = ['Polyhead (continuous)', 'Polyhead (static)', 'transformers.js'];
  const ratio = (a: number | undefined, b: number | undefined, digits = 2) => (a !== undefined && b !== undefined && b > 0 ? round(a / b, digits) : null);
  // Time per token at one client on the requests every system completed (same k: same text, same maxNewTokens).
  const ones = [cont, stat, tjs].map((s) => find(s, 1));
  let timePerTokenAt1: Record<string, number> | null = null;
  let commonRequests = 0;
  if (ones.every(Boolean)) {
    const common = ones.map((m) => new Map(m!.done.map((d) => [d.k, d])));
    const ks = [...common[0]!.keys()].filter((k) => common.every((byK) => byK.has(k)));
    commonRequests = ks.length;
    const perToken = (byK: Map<number, Done>) => {
      const chosen = ks.map((k) => byK.get(k)!);
      return round(chosen.reduce((s, d) => s + d.latencyMs, 0) / chosen.reduce((s, d) => s + d.tokens, 0), 2);
    };
    if (ks.length) timePerTokenAt1 = Object.fromEntries([cont, stat, tjs].map((s, i) => [s, perToken(common[i]!)]));
  }
  const top = Math.max(...clients);
  const ratios = {
    clientsCompared: top,
    tokensPerSecondContinuousVsTransformersJs: ratio(find(cont, top)?.row.tokensPerSecond, find(tjs, top)?.row.tokensPerSecond),
    tokensPerSecondContinuousVsStatic: ratio(find(cont, top)?.row.tokensPerSecond, find(stat, top)?.row.tokensPerSecond),
    tokensPerSecondStaticVsTransformersJs: ratio(find(stat, top)?.row.tokensPerSecond, find(tjs, top)?.row.tokensPerSecond),
    timePerTokenAt1ContinuousVsTransformersJs: timePerTokenAt1 ? ratio(timePerTokenAt1[cont], timePerTokenAt1[tjs], 3) : null,
    timePerTokenAt1StaticVsTransformersJs: timePerTokenAt1 ? ratio(timePerTokenAt1[stat], timePerTokenAt1[tjs], 3) : null,
  };
  const is64 = top === 64;
  const goals = {
    tokensPerSecondAt64VsTransformersJs: { goal: '>= 4', value: ratios.tokensPerSecondContinuousVsTransformersJs, met: is64 && (ratios.tokensPerSecondContinuousVsTransformersJs ?? 0) >= 4 },
    continuousVsStaticAt64: { goal: '>= 1.5', value: ratios.tokensPerSecondContinuousVsStatic, met: is64 && (ratios.tokensPerSecondContinuousVsStatic ?? 0) >= 1.5 },
    timePerTokenAt1VsTransformersJs: { goal: '<= 1.1', value: ratios.timePerTokenAt1ContinuousVsTransformersJs, met: ratios.timePerTokenAt1ContinuousVsTransformersJs !== null && ratios.timePerTokenAt1ContinuousVsTransformersJs <= 1.1 },
  };
  const metText = (g: { met: boolean }) => (g.met ? 'met' : 'not met');
  const lines = [
    `Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}, load average at start ${rows[0]?.loadAverage.join(' ')}; ${model} (random weights, opus-mt shape: 6+6 layers, d_model 512), greedy, one text per request, maxNewTokens drawn in ${minNewTokens}..${maxNewTokens} (seed ${seed}), ${warmup} s warm-up + ${duration} s per row; tokens = answer text re-tokenized; Polyhead device ${args.device}, transformers.js cpu; parity on ${probeKs.length} probes.`,
    '',
    '| system | clients | tokens/s | requests/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.system} | ${r.clients} | ${r.tokensPerSecond} | ${r.requestsPerSecond} | ${r.p50Ms} | ${r.p99Ms} |${r.failures ? ` (${r.failures} failures)` : ''}`),
    '',
    `CPU taken by other processes during the windows (cores, mean per row): ${rows.map((r) => r.cpu?.otherProcessesCores ?? '?').join(', ')}.`,
    ...(timePerTokenAt1 ? [`Time per token at 1 client (${commonRequests} requests all three completed): ${Object.entries(timePerTokenAt1).map(([s, v]) => `${s} ${v} ms`).join(', ')}.`] : []),
    `Continuous / transformers.js tokens/s at ${top} clients: ${ratios.tokensPerSecondContinuousVsTransformersJs} (goal >= 4 at 64: ${metText(goals.tokensPerSecondAt64VsTransformersJs)})`,
    `Continuous / static tokens/s at ${top} clients: ${ratios.tokensPerSecondContinuousVsStatic} (goal >= 1.5 at 64: ${metText(goals.continuousVsStaticAt64)})`,
    `Continuous / transformers.js time per token at 1 client: ${ratios.timePerTokenAt1ContinuousVsTransformersJs} (goal <= 1.1: ${metText(goals.timePerTokenAt1VsTransformersJs)})`,
  ];
  console.log(lines.join('\n'));
  await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
  const machine = { cores: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) };
  await writeFile(
    join(packageRoot, 'bench', 'results', 'translate.json'),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        model,
        device: { polyhead: args.device, transformersJs: 'cpu' },
        durationSeconds: duration,
        warmupSeconds: warmup,
        maxNewTokens: { min: minNewTokens, max: maxNewTokens, seed },
        tokenCounting: 'answer text re-tokenized with tokenizer.json (no special tokens), the same for all systems',
        parity,
        rows,
        timePerTokenAt1: timePerTokenAt1 ? { requests: commonRequests, ms: timePerTokenAt1 } : null,
        ratios,
        goals,
        table: lines.join('\n'),
      },
      null,
      2,
    )}\n`,
  );
}

await main();
