/**
 * The GPU benchmark (issue 6, item 5): one script, every figure.
 *
 *   npm run bench:gpu                        # on a GPU machine (POLYHEAD_DEVICE=cuda for the server)
 *   npm run bench:gpu -- --device cpu --quick  # anywhere: the same steps, small and on the CPU
 *
 * Options (POLYHEAD_BUNDLE_DIR: where bundles are built, default .cache/bundles): --device cuda|cpu (default cuda), --quick, --duration <s> (served runs, default 8),
 *   --clients 64,256  --texts 1,64  --workers 1,4,8 (server processes sharing the GPU, node:cluster),
 *   --batches 1,8,...,1024  --cpu-batches 1,16,...,256  --server <main.js> (default dist/src/main.js)  --out <json>
 *   --profile <dir> (V8 CPU profiles of the server processes, node --cpu-prof; read them with
 *   scripts/profile-summary.mjs)
 *
 * 1. device: selectDevice (the GPU's name), onnxruntime version, CPU cores.
 * 2. fp16 parity: backbone.fp16.onnx against backbone.onnx on tests/fixtures/sentences.txt (cosine min, and
 *    the labels of every head), on the device.
 * 3. raw ceiling: the engine's Backbone alone, texts pre-tokenized, `pooled` fetched (as the sentiment path),
 *    fp32 and fp16 at batches up to 1024 on the device; then the same machine's CPU (all cores, fp32).
 *    Batches are cut from the fixture sentences in length order (as the scheduler groups texts).
 * 4. served: `node dist/src/main.js` in a child process (POLYHEAD_DEVICE=<device>; with --workers N > 1 a
 *    node:cluster primary forks N servers sharing one port and the GPU), autocannon with requests of 1 and
 *    of 64 texts at 64 and 256 concurrent clients. Texts are made unique (the sentence + " (k)") so the
 *    server's de-duplication of concurrent identical texts cannot inflate the figures; the raw ceiling is
 *    also measured on those texts. Server-side: mean batch size, share of wall time in inference, server
 *    CPU seconds per second (from /metrics; one worker only), GPU utilisation (nvidia-smi).
 * Prints a markdown table and the goals; writes bench/results/gpu.json (gpu-cpu.json for --device cpu).
 */
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { serverNodeFlags } from '../src/server/node-flags.js';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    clients: { type: 'string' },
    texts: { type: 'string', default: '1,64' },
    workers: { type: 'string' },
    batches: { type: 'string' },
    'cpu-batches': { type: 'string' },
    profile: { type: 'string' },
    server: { type: 'string' },
    out: { type: 'string' },
    'launch-cluster': { type: 'string' },
    'data-dir': { type: 'string' },
  },
});

// ---- launcher mode: this file is also the node:cluster primary for --workers N > 1 ----
if (args['launch-cluster']) {
  const cluster = (await import('node:cluster')).default;
  const workers = Number(args['launch-cluster']);
  cluster.setupPrimary({ exec: resolve(args.server!), args: [], execArgv: [...serverNodeFlags, ...profileFlags(args.profile)] });
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork({ POLYHEAD_DATA_DIR: join(args['data-dir']!, `worker-${i}`) });
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      console.error(`cluster: worker ${worker.id} exited with ${code}`);
      process.exit(1);
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  process.once('SIGTERM', () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  });
} else {
  await main();
}

async function main(): Promise<void> {
  // Imported here so the cluster launcher above stays light.
  const { default: autocannon } = await import('autocannon');
  const { ensureDefaultBundle } = await import('../src/bundle/default-bundle.js');
  const { backboneSpecOf } = await import('../src/bundle/backbone-spec.js');
  const { checkFp16Parity, ensureFp16Backbone, parityTexts } = await import('../src/convert/fp16.js');
  const { Backbone } = await import('../src/engine/backbone.js');
  const { selectDevice } = await import('../src/engine/device.js');
  const { onnxRuntimeInstall } = await import('../src/engine/onnx-runtime.js');
  type SessionOptions = import('../src/engine/onnx-runtime.js').SessionOptions;
  type TextEncoding = import('../src/engine/tokenizer.js').TextEncoding;
  const { packageRoot } = await import('../src/paths.js');

  const device = args.device === 'cpu' ? 'cpu' : 'cuda';
  const quick = args.quick;
  const duration = Number(args.duration ?? (quick ? 2 : 8));
  const rawSeconds = quick ? 0.5 : 2;
  const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map(Number).filter((n) => n > 0);
  const batches = list(args.batches, quick ? '1,16,64' : '1,8,32,64,128,256,512,1024,2048');
  const cpuBatches = list(args['cpu-batches'], quick ? '1,16,64' : '1,16,32,64,128,256');
  const clientCounts = list(args.clients, quick ? '4,16' : '64,256');
  const textsPerRequest = list(args.texts, '1,64');
  const workerCounts = list(args.workers ?? process.env.POLYHEAD_WORKERS, device === 'cuda' && !quick ? '1,4,8' : '1');
  const serverMain = resolve(args.server ?? join(packageRoot, 'dist/src/main.js'));
  const outFile = resolve(args.out ?? join(packageRoot, 'bench', 'results', device === 'cuda' ? 'gpu.json' : 'gpu-cpu.json'));
  const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
  const log = (line: string) => console.error(line);

  // 1. device
  const selection = await selectDevice(device); // throws with the reason when cuda cannot work
  log(`device: ${selection.provider}${selection.gpuName ? ` (${selection.gpuName})` : ''}: ${selection.reason}`);
  const session = (provider: 'cpu' | 'cuda'): SessionOptions => ({ executionProvider: provider, intraOpThreads: 0, graphOptimization: 'all' });
  const machine = {
    gpu: selection.gpuName ?? null,
    gpuMemory: device === 'cuda' ? await nvidiaSmi(['--query-gpu=memory.total,driver_version', '--format=csv,noheader']) : null,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    onnxruntime: onnxRuntimeInstall().version,
  };

  // 2. bundle, fp16 variant, parity
  const bundlesDir = resolve(process.env.POLYHEAD_BUNDLE_DIR ?? join(packageRoot, '.cache', 'bundles'));
  const bundleDir = await ensureDefaultBundle(bundlesDir, log);
  const fp16 = await ensureFp16Backbone(bundleDir, { log });
  const sentences = await parityTexts();
  const started = performance.now();
  const parity = await checkFp16Parity(bundleDir, fp16.fp16File, session(device), sentences);
  log(`fp16 parity on ${device}: min cosine ${parity.minCosine} (${round(performance.now() - started)} ms), heads ${JSON.stringify(parity.heads)}`);

  // 3. raw ceilings
  const bundleSpec = await backboneSpecOf(bundleDir);
  const spec = (file: string) => ({ ...bundleSpec, file });
  // The served texts: every fixture sentence with " (k)" appended, k = 1.. (unique, so never de-duplicated).
  const servedPool = Array.from({ length: sentences.length * 256 }, (_, i) => `${sentences[i % sentences.length]} (${Math.floor(i / sentences.length) + 1})`);

  async function rawRun(label: string, file: string, options: SessionOptions, sizes: number[], texts: readonly string[]) {
    const backbone = await Backbone.load(spec(file), options);
    const tokenCount = (e: TextEncoding) => e.ids.length;
    const sorted = [...(await backbone.encodeBatch(texts))].sort((a, b) => tokenCount(a) - tokenCount(b));
    const meanTokens = round(sorted.reduce((s, e) => s + tokenCount(e), 0) / sorted.length, 2);
    const rows: Array<{ batch: number; sentencesPerSecond: number; p50Ms: number }> = [];
    for (const batch of sizes) {
      // Each text repeated in place until there are two batches' worth, still in length order.
      const copies = Math.max(1, Math.ceil((2 * batch) / sorted.length));
      const pool = sorted.flatMap((e) => Array<TextEncoding>(copies).fill(e));
      const chunks: TextEncoding[][] = [];
      for (let i = 0; i + batch <= pool.length; i += batch) chunks.push(pool.slice(i, i + batch));
      // Visit the batches in a fixed shuffled order, so that a short run is not all short texts.
      for (let i = chunks.length - 1, seed = 42; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const j = seed % (i + 1);
        [chunks[i], chunks[j]] = [chunks[j]!, chunks[i]!];
      }
      for (const chunk of chunks.slice(0, 8)) await backbone.run(chunk, false); // warm-up (CUDA: kernels, arena)
      const latencies: number[] = [];
      let done = 0;
      const start = performance.now();
      for (let i = 0; performance.now() - start < rawSeconds * 1000; i = (i + 1) % chunks.length) {
        const t0 = performance.now();
        await backbone.run(chunks[i]!, false);
        latencies.push(performance.now() - t0);
        done += batch;
      }
      latencies.sort((a, b) => a - b);
      const row = { batch, sentencesPerSecond: round(done / ((performance.now() - start) / 1000)), p50Ms: round(latencies[Math.floor(latencies.length / 2)]!, 3) };
      log(`raw ${label} ${JSON.stringify(row)}`);
      rows.push(row);
    }
    // Tokenization alone, one thread (the served path tokenizes on the event loop).
    const t0 = performance.now();
    let tokenized = 0;
    while (performance.now() - t0 < Math.min(1000, rawSeconds * 500)) for (const t of texts.slice(0, 2000)) (await backbone.encodeBatch([t]), tokenized++);
    const tokenizePerSecond = round(tokenized / ((performance.now() - t0) / 1000));
    await backbone.release();
    const best = rows.reduce((a, b) => (b.sentencesPerSecond > a.sentencesPerSecond ? b : a));
    return { label, provider: options.executionProvider, meanTokens, byBatch: rows, best, tokenizePerSecond };
  }

  const raw = {
    fp32: await rawRun(`${device} fp32`, fp16.fp32File, session(device), batches, sentences),
    fp16: await rawRun(`${device} fp16`, fp16.fp16File, session(device), batches, sentences),
    cpu: device === 'cpu' ? undefined : await rawRun('cpu fp32 (all cores)', fp16.fp32File, session('cpu'), cpuBatches, sentences),
  };
  const cpuRaw = raw.cpu ?? raw.fp32;
  const ceiling = raw.fp16.best.sentencesPerSecond >= raw.fp32.best.sentencesPerSecond ? raw.fp16 : raw.fp32;
  // The ceiling again on the served (unique, slightly longer) texts, at the best batch.
  const ceilingOnServedTexts = await rawRun(`${ceiling.label} on the served texts`, ceiling === raw.fp16 ? fp16.fp16File : fp16.fp32File, session(device), [ceiling.best.batch], servedPool.slice(0, sentences.length * 16));

  // 4. served
  const served: any[] = [];
  let serverInfo: any;
  for (const workers of workerCounts) {
    const server = await startServer(workers, ceiling.best.batch);
    try {
      const info = await gql(server.url, '{ server { device loadedModels { name heads provider } } }');
      serverInfo = info.server;
      const model = serverInfo.loadedModels[0];
      if (!String(serverInfo.device).startsWith(device)) log(`WARNING: the server reports device "${serverInfo.device}", not ${device}: is POLYHEAD_DEVICE wired in src/server/start.ts?`);
      const query = model.heads.includes('sentiment') ? 'query($t: [String!]!) { sentiment(texts: $t) { label score } }' : 'query($t: [String!]!) { embed(texts: $t) }';
      for (const perRequest of textsPerRequest) {
        for (const clients of clientCounts) {
          await load(server.url, query, clients, perRequest, Math.min(2, duration)); // warm-up
          const row = { workers, field: query.includes('sentiment') ? 'sentiment' : 'embed', ...(await measureServed(server.url, query, clients, perRequest, workers === 1 ? server.pid : undefined)) };
          log(`served ${JSON.stringify(row)}`);
          served.push(row);
        }
      }
    } finally {
      await server.stop();
    }
  }

  // Goals (issue 6): served 64-text requests >= 0.5x the CUDA ceiling; GPU raw >= 20x CPU raw.
  const served64 = served.filter((s) => s.textsPerRequest === 64);
  const bestServed64 = served64.reduce((a, b) => (b.textsPerSecond > (a?.textsPerSecond ?? -1) ? b : a), undefined as any);
  const goals = {
    served64VsCeiling: bestServed64 ? round(bestServed64.textsPerSecond / ceiling.best.sentencesPerSecond, 3) : null,
    served64VsCeilingOnServedTexts: bestServed64 ? round(bestServed64.textsPerSecond / ceilingOnServedTexts.best.sentencesPerSecond, 3) : null,
    gpuVsCpuRaw: device === 'cuda' ? round(ceiling.best.sentencesPerSecond / cpuRaw.best.sentencesPerSecond, 1) : null,
    fp16MinCosine: parity.minCosine,
  };
  const lines = [
    `GPU: ${machine.gpu ?? 'none'}${machine.gpuMemory ? ` (${machine.gpuMemory})` : ''}; ${machine.cpus} CPUs (${machine.cpuModel}); node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; server device: ${serverInfo?.device ?? '?'}.`,
    `Texts: tests/fixtures/sentences.txt (${sentences.length} sentences, ${raw.fp32.meanTokens} tokens on average); served texts get " (k)" appended (${ceilingOnServedTexts.meanTokens} tokens on average).`,
    '',
    '| measurement | batch / clients | texts/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|',
    ...[raw.fp32, raw.fp16, ...(raw.cpu ? [raw.cpu] : [])].flatMap((r) => [
      `| raw ${r.label}, batch ${r.byBatch[0]!.batch} | ${r.byBatch[0]!.batch} | ${r.byBatch[0]!.sentencesPerSecond} | ${r.byBatch[0]!.p50Ms} | |`,
      `| raw ${r.label}, best batch | ${r.best.batch} | ${r.best.sentencesPerSecond} | ${r.best.p50Ms} (batch) | |`,
    ]),
    `| raw ${ceilingOnServedTexts.label} | ${ceilingOnServedTexts.best.batch} | ${ceilingOnServedTexts.best.sentencesPerSecond} | ${ceilingOnServedTexts.best.p50Ms} (batch) | |`,
    ...served.map((s) => `| served \`${s.field}\`, ${s.textsPerRequest} text(s)/request, ${s.workers} process(es) | ${s.clients} | ${s.textsPerSecond} | ${s.latencyMs.p50} | ${s.latencyMs.p99} |`),
    '',
    `fp16 vs fp32 on ${device}: min cosine ${round(parity.minCosine, 6)} over ${parity.texts} sentences (goal >= 0.999); heads: ${Object.entries(parity.heads).map(([n, h]) => `${n} ${h.compared - h.different}/${h.compared} same`).join(', ') || 'none with a model file'}.`,
    `Tokenization (one thread): ${raw.fp32.tokenizePerSecond} texts/s.`,
    `Goals: served 64-text requests / ${device === 'cuda' ? 'CUDA' : 'CPU'} ceiling = ${goals.served64VsCeiling} (goal >= 0.5; on the served texts ${goals.served64VsCeilingOnServedTexts}); GPU raw / CPU raw = ${goals.gpuVsCpuRaw ?? 'n/a (no GPU)'} (goal >= 20).`,
  ];
  console.log(lines.join('\n'));
  await mkdir(join(outFile, '..'), { recursive: true });
  await writeFile(
    outFile,
    `${JSON.stringify({ date: new Date().toISOString(), device, quick, selection, machine, parity, raw, ceiling: { label: ceiling.label, ...ceiling.best }, ceilingOnServedTexts, served, serverInfo, goals, table: lines.join('\n') }, null, 2)}\n`,
  );
  log(`wrote ${outFile}`);

  // ---- helpers ----

  async function startServer(workers: number, batch: number): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
    if (!existsSync(serverMain)) throw new Error(`${serverMain} is missing: run npm run build first`);
    const dataDir = mkdtempSync(join(os.tmpdir(), 'polyhead-bench-gpu-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      POLYHEAD_DATA_DIR: dataDir,
      POLYHEAD_BUNDLE_DIR: bundlesDir,
      POLYHEAD_DEVICE: device,
      POLYHEAD_LOG: 'info',
      // Each server is one process: the benchmark starts several itself (its own launcher, PGlite each).
      POLYHEAD_WORKERS: '1',
      // Device-specific serving settings (kept when already set in the environment).
      POLYHEAD_MAX_BATCH_SIZE: process.env.POLYHEAD_MAX_BATCH_SIZE ?? String(device === 'cuda' ? batch : 64),
      POLYHEAD_MAX_BATCH_TOKENS: process.env.POLYHEAD_MAX_BATCH_TOKENS ?? String(device === 'cuda' ? batch * 64 : 8192),
      POLYHEAD_MAX_QUEUE_TEXTS: process.env.POLYHEAD_MAX_QUEUE_TEXTS ?? '131072',
      POLYHEAD_MAX_QUEUE_TOKENS: process.env.POLYHEAD_MAX_QUEUE_TOKENS ?? '8388608',
      // The same for a server that reads CUDA-specific settings (POLYHEAD_CUDA_*, docs/gpu.md).
      POLYHEAD_CUDA_MAX_BATCH_SIZE: process.env.POLYHEAD_CUDA_MAX_BATCH_SIZE ?? String(batch),
      POLYHEAD_CUDA_MAX_BATCH_TOKENS: process.env.POLYHEAD_CUDA_MAX_BATCH_TOKENS ?? String(batch * 64),
      POLYHEAD_CUDA_MAX_QUEUE_TEXTS: process.env.POLYHEAD_CUDA_MAX_QUEUE_TEXTS ?? '131072',
      POLYHEAD_CUDA_MAX_QUEUE_TOKENS: process.env.POLYHEAD_CUDA_MAX_QUEUE_TOKENS ?? '8388608',
      POLYHEAD_REQUEST_TIMEOUT_MS: process.env.POLYHEAD_REQUEST_TIMEOUT_MS ?? '120000',
    };
    const command =
      workers > 1
        ? [...process.execArgv, new URL(import.meta.url).pathname, '--launch-cluster', String(workers), '--server', serverMain, '--data-dir', dataDir, ...(args.profile ? ['--profile', args.profile] : [])]
        : [...serverNodeFlags, ...profileFlags(args.profile), serverMain];
    const child = spawn(process.execPath, command, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await new Promise<string>((resolveUrl, reject) => {
      let out = '';
      let ready = 0;
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk;
        process.stderr.write(chunk);
        ready = (out.match(/ready at /g) ?? []).length;
        const match = /ready at (\S+)/.exec(out);
        if (match && ready >= workers) resolveUrl(match[1]!.replace('localhost', '127.0.0.1'));
      });
      child.once('exit', (code) => {
        rmSync(dataDir, { recursive: true, force: true });
        reject(new Error(`server exited with ${code} before it was ready`));
      });
    });
    return {
      url,
      pid: child.pid!,
      stop: () =>
        new Promise<void>((done) => {
          child.once('exit', () => {
            rmSync(dataDir, { recursive: true, force: true });
            done();
          });
          child.kill('SIGTERM');
        }),
    };
  }

  /** With `serverPid` (one server process): its metrics and the CPU time of its main (event loop) thread. */
  async function measureServed(url: string, query: string, clients: number, perRequest: number, serverPid: number | undefined) {
    const scrapeMetrics = serverPid !== undefined;
    const before = scrapeMetrics ? await metrics(url) : undefined;
    const threadsBefore = serverPid !== undefined ? await threadCpuSeconds(serverPid) : undefined;
    const machineBefore = await machineCpu();
    const gpu = device === 'cuda' ? sampleGpu() : undefined;
    const wall = performance.now();
    const result = await load(url, query, clients, perRequest, duration);
    const seconds = (performance.now() - wall) / 1000;
    const gpuUtilisation = await gpu?.stop();
    const after = scrapeMetrics ? await metrics(url) : undefined;
    const threadsAfter = serverPid !== undefined ? await threadCpuSeconds(serverPid) : undefined;
    const machineAfter = await machineCpu();
    const texts = result.textsPerSecond * seconds;
    // CPU seconds per second of each server thread over the run, busiest first (main = the event loop).
    const threadLoad =
      threadsBefore && threadsAfter
        ? [...threadsAfter].map(([tid, cpu]) => ({ tid, busy: (cpu - (threadsBefore.get(tid) ?? 0)) / seconds })).sort((a, b) => b.busy - a.busy)
        : undefined;
    const mainBusy = threadLoad?.find((t) => t.tid === serverPid)?.busy;
    const delta = (name: string) => (before && after ? (after[name] ?? 0) - (before[name] ?? 0) : NaN);
    const batchesRun = delta('batches');
    return {
      clients,
      textsPerRequest: perRequest,
      ...result,
      server: scrapeMetrics
        ? {
            meanBatchSize: round(delta('batchTexts') / batchesRun, 1),
            inferenceShareOfWall: round(delta('inferenceSeconds') / seconds, 3),
            cpuSecondsPerSecond: round(delta('cpuSeconds') / seconds, 2),
            // Event-loop thread CPU per text served (GraphQL, JSON, tokenization, scheduling), and its share of wall time.
            mainThreadMicrosPerText: mainBusy !== undefined ? round((mainBusy * seconds * 1e6) / texts, 1) : null,
            mainThreadBusy: mainBusy !== undefined ? round(mainBusy, 2) : null,
            otherThreadsBusiest: threadLoad?.filter((t) => t.tid !== serverPid).slice(0, 4).map((t) => round(t.busy, 2)) ?? null,
          }
        : null,
      gpuUtilisationPercent: gpuUtilisation ?? null,
      // Cores busy on the whole machine (servers, load generator, everything), from /proc/stat.
      machineBusyCores: machineBefore && machineAfter ? round(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * os.cpus().length, 1) : null,
    };
  }

  async function load(url: string, query: string, connections: number, perRequest: number, seconds: number) {
    let next = 0;
    let graphqlErrors = 0;
    const body = () => {
      const texts: string[] = [];
      for (let i = 0; i < perRequest; i++) texts.push(servedPool[next++ % servedPool.length]!);
      return JSON.stringify({ query, variables: { t: texts } });
    };
    const result = await autocannon({
      url,
      connections,
      duration: seconds,
      timeout: 120,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (request: any) => ({ ...request, body: body() }),
          onResponse: (_status: number, responseBody: string) => {
            if (responseBody.includes('"errors"')) graphqlErrors++;
          },
        },
      ],
    });
    return {
      requestsPerSecond: round(result.requests.average),
      textsPerSecond: round(result.requests.average * perRequest),
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
      failures: result.errors + result.timeouts + result.non2xx + graphqlErrors,
    };
  }

  async function gql(url: string, query: string) {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const body = (await response.json()) as { data?: any; errors?: Array<{ message: string }> };
    if (body.errors) throw new Error(body.errors.map((e) => e.message).join('; '));
    return body.data;
  }

  async function metrics(url: string): Promise<Record<string, number>> {
    const text = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
    const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((s, m) => s + Number(m[1]), 0);
    return {
      batches: sum(/^polyhead_batch_size_count\{[^}]*\} (\S+)$/gm),
      batchTexts: sum(/^polyhead_batch_size_sum\{[^}]*\} (\S+)$/gm),
      inferenceSeconds: sum(/^polyhead_inference_seconds_sum\{[^}]*\} (\S+)$/gm),
      cpuSeconds: sum(/^polyhead_process_process_cpu_seconds_total (\S+)$/gm),
    };
  }
}

/**
 * node flags that write V8 CPU profiles of a server into `dir` (none without one). node refuses --cpu-prof in
 * NODE_OPTIONS, so they go on the server's command line; the cluster launcher hands them to its workers.
 */
function profileFlags(dir: string | undefined): string[] {
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`, '--cpu-prof-interval=250'] : [];
}

/** CPU seconds (user + system) of each thread of a process, by thread id, from /proc (Linux); undefined elsewhere. */
async function threadCpuSeconds(pid: number): Promise<Map<number, number> | undefined> {
  try {
    const seconds = new Map<number, number>();
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) continue; // the thread ended
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / 100); // USER_HZ is 100 on Linux
    }
    return seconds;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat (Linux); undefined elsewhere. */
async function machineCpu(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
    return { busy, total: busy + idle! + iowait! };
  } catch {
    return undefined;
  }
}

/** Mean GPU utilisation (%) from nvidia-smi sampled every 200 ms until stop(). */
function sampleGpu(): { stop: () => Promise<number | undefined> } {
  let child: ChildProcess | undefined;
  const samples: number[] = [];
  try {
    child = spawn('nvidia-smi', ['--query-gpu=utilization.gpu', '--format=csv,noheader,nounits', '-lms', '200'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.on('error', () => {});
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (/^\s*\d+/.test(line)) samples.push(Number(line.trim()));
    });
  } catch {
    child = undefined;
  }
  return {
    stop: async () => {
      child?.kill('SIGTERM');
      return samples.length ? Math.round(samples.reduce((a, b) => a + b, 0) / samples.length) : undefined;
    },
  };
}

function nvidiaSmi(argv: string[]): Promise<string | null> {
  return new Promise((done) => {
    const child = spawn('nvidia-smi', argv, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.on('error', () => done(null));
    child.on('exit', (code) => done(code === 0 ? out.trim().split('\n')[0]! : null));
  });
}
