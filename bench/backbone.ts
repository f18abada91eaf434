/**
 * Throughput and latency of the ONNX USE-lite backbone (onnxruntime-node, CPU) against the TF.js
 * reference (@energetic-ai/embeddings, WASM backend) on the same sentences and machine.
 * Tokenization is inside the timed region for both. Writes bench/results/backbone.json.
 *
 *   node --import @swc-node/register/esm-register bench/backbone.ts [--quick]
 */
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../src/engine/tokenizer.js';
import { convertedUseLite, loadReference, loadSentences } from '../tests/convert/use-lite-fixture.js';

const quick = process.argv.includes('--quick');
const MIN_SECONDS = quick ? 0.5 : 2;
const ONNX_BATCHES = [1, 8, 16, 32, 64, 128];
const REFERENCE_BATCHES = [1, 16, 64];
/** The backbone reads 128 tokens at most; the bench sentences are far shorter. */
const MAX_TOKENS = 128;

interface Result {
  engine: string;
  options: string;
  batch: number;
  sentencesPerSecond: number;
  batchLatencyMs: { p50: number; p99: number };
}

/** Runs `runBatch` over all sentences repeatedly for at least MIN_SECONDS (after one warm-up pass). */
async function measure(engine: string, options: string, batch: number, sentences: string[], runBatch: (texts: string[]) => Promise<unknown>): Promise<Result> {
  // Batches are cut from the sentences in length order, as Polyhead's scheduler groups texts of similar
  // length; both engines get exactly the same batches.
  const batches: string[][] = [];
  for (let i = 0; i < sentences.length; i += batch) batches.push(sentences.slice(i, i + batch));
  for (const b of batches) await runBatch(b);
  const latencies: number[] = [];
  let done = 0;
  const start = performance.now();
  while (performance.now() - start < MIN_SECONDS * 1000) {
    for (const b of batches) {
      const t0 = performance.now();
      await runBatch(b);
      latencies.push(performance.now() - t0);
      done += b.length;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!, 2);
  const result = { engine, options, batch, sentencesPerSecond: round(done / seconds, 1), batchLatencyMs: { p50: pct(50), p99: pct(99) } };
  console.error(JSON.stringify(result));
  return result;
}

function onnxRunner(session: ort.InferenceSession, tokenizer: TextTokenizer) {
  return async (texts: string[]) => {
    const encodings = texts.map((t) => tokenizer.encode(t));
    const tokens = Math.max(1, ...encodings.map((e) => e.ids.length));
    const ids = new BigInt64Array(texts.length * tokens);
    const mask = new BigInt64Array(texts.length * tokens);
    encodings.forEach((e, row) => e.ids.forEach((id, j) => {
      ids[row * tokens + j] = BigInt(id);
      mask[row * tokens + j] = 1n;
    }));
    // Fetch only `pooled`, as the embed path does.
    return session.run(
      { input_ids: new ort.Tensor('int64', ids, [texts.length, tokens]), attention_mask: new ort.Tensor('int64', mask, [texts.length, tokens]) },
      ['pooled'],
    );
  };
}

function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

async function main(): Promise<void> {
  const files = await convertedUseLite();
  const tokenizer = await TextTokenizer.load(files.tokenizerPath, MAX_TOKENS);
  const sentences = (await loadSentences())
    .map((text) => ({ text, tokens: tokenizer.encode(text).ids.length }))
    .sort((a, b) => a.tokens - b.tokens)
    .map((s) => s.text);
  const tokenCounts = sentences.map((s) => tokenizer.encode(s).ids.length);
  const cores = os.cpus().length;
  const results: Result[] = [];

  const sessionVariants: Array<[string, ort.InferenceSession.SessionOptions]> = [
    [`all, intra=${cores}`, { graphOptimizationLevel: 'all', intraOpNumThreads: cores }],
    [`basic, intra=${cores}`, { graphOptimizationLevel: 'basic', intraOpNumThreads: cores }],
    ['all, intra=1', { graphOptimizationLevel: 'all', intraOpNumThreads: 1 }],
  ];
  for (const [label, options] of sessionVariants) {
    const session = await ort.InferenceSession.create(files.backbonePath, { executionProviders: ['cpu'], ...options });
    const run = onnxRunner(session, tokenizer);
    for (const batch of label.startsWith('all, intra=' + cores) ? ONNX_BATCHES : [1, 32]) {
      results.push(await measure('onnx', label, batch, sentences, run));
    }
    await session.release();
  }
  const reference = await loadReference();
  for (const batch of REFERENCE_BATCHES) {
    results.push(await measure('tfjs-reference', 'wasm backend', batch, sentences, (texts) => reference.embed(texts)));
  }

  const best = (engine: string) => results.filter((r) => r.engine === engine).reduce((a, b) => (b.sentencesPerSecond > a.sentencesPerSecond ? b : a));
  const at1 = (engine: string, options?: string) => results.find((r) => r.engine === engine && r.batch === 1 && (!options || r.options === options))!;
  const bestOnnx = best('onnx');
  const bestRef = best('tfjs-reference');
  const rows: Array<readonly [string, Result]> = [
    ['ONNX (onnxruntime-node)', at1('onnx', bestOnnx.options)],
    ['ONNX (onnxruntime-node)', bestOnnx],
    ['TF.js reference', at1('tfjs-reference')],
    ['TF.js reference', bestRef],
  ].filter(([, r], i, all) => all.findIndex(([, other]) => other === r) === i);
  const table = [
    '| engine | session options | batch | sentences/s | batch latency p50 (ms) | p99 (ms) |',
    '|---|---|---:|---:|---:|---:|',
    ...rows.map(([name, r]) => `| ${name} | ${r.options} | ${r.batch} | ${r.sentencesPerSecond} | ${r.batchLatencyMs.p50} | ${r.batchLatencyMs.p99} |`),
  ].join('\n');
  const speedup = { batch1: round(at1('onnx', bestOnnx.options).sentencesPerSecond / at1('tfjs-reference').sentencesPerSecond, 2), best: round(bestOnnx.sentencesPerSecond / bestRef.sentencesPerSecond, 2) };
  console.log(`${table}\n\nspeed-up: batch 1 ${speedup.batch1}x, best batch ${speedup.best}x`);

  const out = {
    date: new Date().toISOString(),
    machine: { cpus: cores, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.arch()}`, onnxruntime: ort.env.versions?.common ?? 'unknown' },
    sentences: { count: sentences.length, meanTokens: round(tokenCounts.reduce((a, b) => a + b, 0) / tokenCounts.length, 1), maxTokens: Math.max(...tokenCounts), source: 'tests/fixtures/sentences.txt' },
    timing: 'tokenization + model, per batch of sentences of similar length (sorted by token count, as the scheduler groups them); onnx fetches only `pooled`',
    speedup,
    table,
    results,
  };
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}backbone.json`, `${JSON.stringify(out, null, 2)}\n`);
}

await main();
