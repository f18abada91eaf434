#!/usr/bin/env node
/**
 * What a JavaScript team would write instead of Polyhead: a plain node:http server around transformers.js's
 * feature-extraction pipeline. The baseline for benchmarks.
 *
 *   node bench/hf-reference-server.mjs --model DIR [--pooling mean|cls|none] [--normalize] [--port 0]
 *        [--host 127.0.0.1] [--dtype fp32] [--threads N]
 *
 * POST /embed with { "texts": string[] } answers { "embeddings": number[][] } (one pipeline call per request, as
 * written naively: no batching across requests). Prints `listening on http://HOST:PORT` once the model is loaded
 * and has answered one warm-up call. DIR is a Hugging Face model folder (config.json, tokenizer.json,
 * tokenizer_config.json, onnx/model.onnx for fp32); it is read locally only (remote models off, no file cache).
 *
 * @huggingface/transformers is not a dependency of Polyhead: it is resolved from the test-only package
 * tests/reference (install it with `npm run reference:install`).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { failer, loadPipeline, serveTexts } from './reference-server-kit.mjs';

const fail = failer('hf-reference-server');
const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    pooling: { type: 'string', default: 'mean' },
    normalize: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    dtype: { type: 'string', default: 'fp32' },
    threads: { type: 'string' },
  },
});
if (!args.model) fail('--model DIR is required');
if (!['mean', 'cls', 'none'].includes(args.pooling)) fail(`--pooling must be mean, cls or none, got ${args.pooling}`);
const modelDir = resolve(args.model);

const pipeline = await loadPipeline(fail);
const session_options = args.threads ? { intraOpNumThreads: Number(args.threads) } : {};
const extractor = await pipeline('feature-extraction', modelDir, { dtype: args.dtype, device: 'cpu', session_options });
if (!extractor.tokenizer) fail(`no tokenizer loaded from ${modelDir} (tokenizer.json and tokenizer_config.json are needed)`);
const options = { pooling: args.pooling, normalize: args.normalize };
await extractor(['warm up'], options);

serveTexts({
  path: '/embed',
  host: args.host,
  port: args.port,
  maxBodyBytes: 16 * 1024 * 1024,
  answer: async (texts) => ({ embeddings: (await extractor(texts, options)).tolist() }),
});
