// The soak workload shared by bench/soak.ts (minutes, hundreds of clients) and tests/faults/soak-short.test.ts
// (seconds, a few dozen): closed-loop clients, each sending its next request when the last one answered, a
// mix of multi-task analyze, single-task fields, registry browsing and ~5% deliberately bad requests. Every
// answer is classified: ok, the expected error of a bad request, OVERLOADED (counted apart: the server's
// designed answer to more work than its queue holds), or unexpected. The server's RSS is sampled throughout.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request as httpRequest } from 'node:http';
import { packageRoot } from '../../src/paths.js';
import { createRng } from '../../src/datasets/split.js';

export interface SoakOptions {
  url: string;
  clients: number;
  durationMs: number;
  /** Memory growth is measured from the end of the warm-up. */
  warmupMs: number;
  /** Reads the server's resident memory in bytes. */
  rss: () => Promise<number>;
  sampleEveryMs?: number;
  seed?: number;
  onSample?: (sample: RssSample, totals: { requests: number; unexpected: number }) => void;
}

export interface RssSample {
  atMs: number;
  rssBytes: number;
  requests: number;
}

export interface KindStats {
  requests: number;
  ok: number;
  expectedErrors: number;
  overloaded: number;
  unexpected: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SoakResult {
  clients: number;
  durationMs: number;
  warmupMs: number;
  requests: number;
  ok: number;
  expectedErrors: number;
  overloaded: number;
  unexpected: number;
  unexpectedSamples: string[];
  requestsPerSecond: number;
  textsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  byKind: Record<string, KindStats>;
  rss: RssSample[];
  /** Median RSS of the samples in the minute after warm-up (or the first third after it in short runs). */
  rssAfterWarmupBytes: number;
  /** Median RSS of the last three samples. */
  rssEndBytes: number;
  rssGrowthPercent: number;
}

interface Request {
  kind: string;
  body: { query: string; variables?: Record<string, unknown> };
  texts: number;
  /** For a deliberately bad request, the code it must get. */
  expect?: string;
}

const sentences = readFileSync(join(packageRoot, 'tests', 'fixtures', 'sentences.txt'), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
const entitySentences = ['Maria Lopez flew from Madrid to Berlin for Acme Corp.', 'Apple opened an office in Paris.', 'John Smith met the Mayor of Chicago.', 'Angela Merkel spoke in Brussels on Monday.'];

function workload(rand: () => number) {
  const pick = <T,>(list: readonly T[]) => list[Math.floor(rand() * list.length)]!;
  const texts = (max: number) => Array.from({ length: 1 + Math.floor(rand() * max) }, () => (rand() < 0.3 ? pick(entitySentences) : pick(sentences)) + (rand() < 0.5 ? ` (${Math.floor(rand() * 1000)})` : ''));
  const mix: Array<[number, () => Request]> = [
    [25, () => {
      const t = texts(8);
      return { kind: 'analyze', texts: t.length, body: { query: 'query($t: [String!]!) { analyze(texts: $t) { tokenCount sentiment { label score } entities { text label start end } embedding } }', variables: { t } } };
    }],
    [14, () => {
      const t = texts(16);
      return { kind: 'sentiment', texts: t.length, body: { query: 'query($t: [String!]!) { sentiment(texts: $t) { label score scores { label score } } }', variables: { t } } };
    }],
    [12, () => {
      const t = texts(8);
      return { kind: 'entities', texts: t.length, body: { query: 'query($t: [String!]!) { entities(texts: $t) { text label start end score } }', variables: { t } } };
    }],
    [10, () => {
      const t = texts(8);
      return { kind: 'embed', texts: t.length, body: { query: 'query($t: [String!]!) { embed(texts: $t) }', variables: { t } } };
    }],
    [9, () => {
      const c = texts(6);
      return { kind: 'similarity', texts: c.length + 1, body: { query: 'query($q: String!, $c: [String!]!) { similarity(query: $q, candidates: $c) }', variables: { q: pick(sentences), c } } };
    }],
    [20, () =>
      pick([
        { kind: 'registry', texts: 0, body: { query: '{ models(first: 10) { totalCount edges { node { name version { version backbone { name pretrainedSource { name } } heads { name task labels trainingData { name license } evaluations { metric value split } } } } } } }' } },
        { kind: 'registry', texts: 0, body: { query: '{ model(name: "default") { name versions { version files { path sha256 } aliases } } datasets { name size } }' } },
        { kind: 'registry', texts: 0, body: { query: '{ backbones { name version heads { name } } server { version loadedModels { name version heads } queueDepth } }' } },
      ]),
    ],
    [5, () =>
      pick<Request>([
        { kind: 'bad', texts: 0, expect: 'BAD_USER_INPUT', body: { query: '{ sentiment(texts: []) { label } }' } },
        { kind: 'bad', texts: 0, expect: 'BAD_USER_INPUT', body: { query: 'query($t: [String!]!) { embed(texts: $t) }', variables: { t: Array.from({ length: 300 }, (_, i) => `text ${i}`) } } },
        { kind: 'bad', texts: 0, expect: 'MODEL_NOT_FOUND', body: { query: '{ sentiment(texts: ["x"], model: "no-such-model") { label } }' } },
        { kind: 'bad', texts: 0, expect: 'HEAD_NOT_FOUND', body: { query: '{ analyze(texts: ["x"]) { classify(head: "no-such-head") { label } } }' } },
        { kind: 'bad', texts: 0, expect: 'GRAPHQL_PARSE_FAILED', body: { query: '{ sentiment(texts: ["x"] { label }' } },
        { kind: 'bad', texts: 0, expect: 'GRAPHQL_VALIDATION_FAILED', body: { query: '{ sentiment(texts: "x") { nope } }' } },
        { kind: 'bad', texts: 0, expect: 'UNAUTHENTICATED', body: { query: 'mutation { unloadModel(model: "default") }' } },
      ]),
    ],
  ];
  const total = mix.reduce((sum, [weight]) => sum + weight, 0);
  return (): Request => {
    let r = rand() * total;
    for (const [weight, make] of mix) if ((r -= weight) < 0) return make();
    return mix[0]![1]();
  };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  // node:http with a keep-alive pool of one connection per client: what a fleet of app backends looks like.
  const agent = new Agent({ keepAlive: true, maxSockets: options.clients + 8 });
  const started = performance.now();
  const until = started + options.durationMs;
  const latencies: Record<string, number[]> = {};
  const counts: Record<string, Omit<KindStats, 'p50Ms' | 'p99Ms'>> = {};
  const unexpectedSamples: string[] = [];
  let requests = 0;
  let unexpected = 0;
  let texts = 0;

  const record = (kind: string, outcome: 'ok' | 'expectedErrors' | 'overloaded' | 'unexpected', ms: number, detail?: string) => {
    const c = (counts[kind] ??= { requests: 0, ok: 0, expectedErrors: 0, overloaded: 0, unexpected: 0 });
    c.requests++;
    c[outcome]++;
    requests++;
    (latencies[kind] ??= []).push(ms);
    if (outcome === 'unexpected') {
      unexpected++;
      if (unexpectedSamples.length < 20) unexpectedSamples.push(`${kind}: ${detail}`);
    }
  };

  const client = async (id: number) => {
    const next = workload(createRng((options.seed ?? 1) * 7919 + id));
    while (performance.now() < until) {
      const request = next();
      const sent = performance.now();
      try {
        const response = await postJson(options.url, request.body, agent);
        const json = response.json as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
        const ms = performance.now() - sent;
        const codes = (json.errors ?? []).map((e) => e.extensions?.code ?? 'NO_CODE');
        if (request.expect) {
          if (codes.length && codes.every((code) => code === request.expect)) record(request.kind, 'expectedErrors', ms);
          else record(request.kind, 'unexpected', ms, `${response.status} ${codes.join(',') || 'no error'} where ${request.expect} was expected`);
        } else if (!codes.length && response.status === 200 && json.data) {
          record(request.kind, 'ok', ms);
          texts += request.texts;
        } else if (codes.length && codes.every((code) => code === 'OVERLOADED')) record(request.kind, 'overloaded', ms);
        else record(request.kind, 'unexpected', ms, `${response.status} ${JSON.stringify(json.errors ?? json).slice(0, 300)}`);
      } catch (error) {
        record(request.kind, 'unexpected', performance.now() - sent, `no answer: ${(error as Error).message} ${String((error as { cause?: unknown }).cause ?? '')}`);
      }
    }
  };

  const rss: RssSample[] = [];
  const sampleEvery = options.sampleEveryMs ?? 5_000;
  const sample = async () => {
    const s = { atMs: Math.round(performance.now() - started), rssBytes: await options.rss().catch(() => 0), requests };
    rss.push(s);
    options.onSample?.(s, { requests, unexpected });
  };
  await sample();
  const sampler = setInterval(() => void sample(), sampleEvery);
  await Promise.all(Array.from({ length: options.clients }, (_, id) => client(id)));
  clearInterval(sampler);
  await sample();
  agent.destroy();

  const elapsedMs = performance.now() - started;
  const all = Object.values(latencies).flat().sort((a, b) => a - b);
  const byKind: Record<string, KindStats> = {};
  for (const [kind, c] of Object.entries(counts)) {
    const sorted = latencies[kind]!.sort((a, b) => a - b);
    byKind[kind] = { ...c, p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
  }
  const afterWarmup = rss.filter((s) => s.atMs >= options.warmupMs && s.rssBytes > 0);
  const windowEnd = options.warmupMs + Math.min(60_000, (options.durationMs - options.warmupMs) / 3);
  const baseline = median(afterWarmup.filter((s) => s.atMs <= windowEnd).map((s) => s.rssBytes)) || afterWarmup[0]?.rssBytes || 0;
  const end = median(afterWarmup.slice(-3).map((s) => s.rssBytes));
  const total = (key: 'ok' | 'expectedErrors' | 'overloaded') => Object.values(counts).reduce((sum, c) => sum + c[key], 0);
  return {
    clients: options.clients,
    durationMs: Math.round(elapsedMs),
    warmupMs: options.warmupMs,
    requests,
    ok: total('ok'),
    expectedErrors: total('expectedErrors'),
    overloaded: total('overloaded'),
    unexpected,
    unexpectedSamples,
    requestsPerSecond: round(requests / (elapsedMs / 1000)),
    textsPerSecond: round(texts / (elapsedMs / 1000)),
    p50Ms: round(percentile(all, 50)),
    p90Ms: round(percentile(all, 90)),
    p99Ms: round(percentile(all, 99)),
    maxMs: round(all.at(-1) ?? 0),
    byKind,
    rss,
    rssAfterWarmupBytes: baseline,
    rssEndBytes: end,
    rssGrowthPercent: baseline ? round(((end - baseline) / baseline) * 100) : 0,
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

function postJson(url: string, body: unknown, agent: Agent): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpRequest(url, { method: 'POST', agent, timeout: 120_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode!, json: JSON.parse(text) });
        } catch {
          reject(new Error(`${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', reject);
    req.end(data);
  });
}

/** RSS of a local process from /proc (Linux), else from the server's /metrics. */
export function rssReader(pid: number | undefined, metricsUrl: string): () => Promise<number> {
  return async () => {
    if (pid) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
        if (kb) return Number(kb) * 1024;
      } catch {
        // not Linux, or the process is gone: ask the server
      }
    }
    const text = await (await fetch(metricsUrl)).text();
    return Number(/^polyhead_process_resident_memory_bytes (\S+)$/m.exec(text)?.[1] ?? 0);
  };
}

export function formatSoak(result: SoakResult): string {
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const rows = Object.entries(result.byKind).map(
    ([kind, k]) => `| ${kind.padEnd(10)} | ${String(k.requests).padStart(8)} | ${String(k.ok).padStart(8)} | ${String(k.expectedErrors).padStart(8)} | ${String(k.overloaded).padStart(10)} | ${String(k.unexpected).padStart(10)} | ${String(k.p50Ms).padStart(8)} | ${String(k.p99Ms).padStart(8)} |`,
  );
  return [
    `| kind       | requests |       ok | expected | overloaded | unexpected |  p50 ms  |  p99 ms  |`,
    `|------------|---------:|---------:|---------:|-----------:|-----------:|---------:|---------:|`,
    ...rows,
    `| all        | ${String(result.requests).padStart(8)} | ${String(result.ok).padStart(8)} | ${String(result.expectedErrors).padStart(8)} | ${String(result.overloaded).padStart(10)} | ${String(result.unexpected).padStart(10)} | ${String(result.p50Ms).padStart(8)} | ${String(result.p99Ms).padStart(8)} |`,
    '',
    `${result.clients} clients for ${(result.durationMs / 1000).toFixed(0)} s: ${result.requestsPerSecond} requests/s, ${result.textsPerSecond} texts/s; p90 ${result.p90Ms} ms, max ${result.maxMs} ms`,
    `RSS: ${mb(result.rss[0]?.rssBytes ?? 0)} at start, ${mb(result.rssAfterWarmupBytes)} after warm-up (${(result.warmupMs / 1000).toFixed(0)} s), ${mb(result.rssEndBytes)} at the end: growth ${result.rssGrowthPercent}%`,
    `unexpected errors: ${result.unexpected}${result.unexpectedSamples.length ? `\n  ${result.unexpectedSamples.join('\n  ')}` : ''}`,
  ].join('\n');
}
