#!/usr/bin/env node
/**
 * What a JavaScript team would write instead of Polyhead for translation: a plain node:http server around
 * transformers.js's translation pipeline. The baseline for bench/translate.ts.
 *
 *   node bench/translate-reference-server.mjs --model DIR [--port 0] [--host 127.0.0.1] [--threads N]
 *
 * POST /translate with { "texts": string[], "maxNewTokens"?: number } answers { "translations": [{ "text" }] }: one
 * pipeline call per request (no batching across requests), greedy (num_beams 1, do_sample false), max_new_tokens as
 * given (the pipeline's default, 256, when absent). Prints `listening on http://HOST:PORT` once the model is loaded
 * and has answered one warm-up call. DIR is a Marian folder in Optimum's layout (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, onnx/encoder_model.onnx, onnx/decoder_model_merged.onnx); it is read
 * locally only (remote models off, no file cache).
 *
 * @huggingface/transformers is not a dependency of Polyhead: it is resolved from the test-only package
 * tests/reference (install it with `npm run reference:install`).
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    threads: { type: 'string' },
  },
});
if (!args.model) fail('--model DIR is required');
const modelDir = resolve(args.model);
const maxBodyBytes = 1024 * 1024;

function fail(message) {
  console.error(`translate-reference-server: ${message}`);
  process.exit(1);
}

for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx']) {
  if (!existsSync(join(modelDir, file))) fail(`${join(modelDir, file)} is missing`);
}

/** The ESM entry of @huggingface/transformers as installed in tests/reference (not resolvable from here). */
function transformersEntry() {
  const referenceDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'reference');
  let main;
  try {
    main = createRequire(join(referenceDir, 'package.json')).resolve('@huggingface/transformers');
  } catch {
    fail(`@huggingface/transformers is not installed in ${referenceDir}: run \`npm run reference:install\``);
  }
  for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
    if (pkg.name !== '@huggingface/transformers') continue;
    const esm = pkg.exports?.node?.import?.default;
    return esm ? join(dir, esm) : main;
  }
  return main;
}

const { env, pipeline } = await import(pathToFileURL(transformersEntry()).href);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/';
env.useFSCache = false;
env.useBrowserCache = false;

const session_options = args.threads ? { intraOpNumThreads: Number(args.threads) } : {};
const translator = await pipeline('translation', modelDir, { dtype: 'fp32', device: 'cpu', subfolder: 'onnx', session_options });
if (!translator.tokenizer) fail(`no tokenizer loaded from ${modelDir}`);
// generation_config.json may ask for beams (opus-mt: 4); greedy is what is compared.
const greedy = { num_beams: 1, do_sample: false };
await translator(['warm up'], { ...greedy, max_new_tokens: 8 });

function send(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > maxBodyBytes) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('body is not JSON'), { status: 400 });
  }
}

const server = createServer(async (req, res) => {
  if (req.url !== '/translate') return send(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
  try {
    const body = await readJson(req);
    const texts = body?.texts;
    if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
      return send(res, 400, { error: 'texts must be a non-empty array of strings' });
    }
    const maxNewTokens = body.maxNewTokens;
    if (maxNewTokens !== undefined && !(Number.isInteger(maxNewTokens) && maxNewTokens >= 1 && maxNewTokens <= 512)) {
      return send(res, 400, { error: 'maxNewTokens must be an integer in 1..512' });
    }
    const output = await translator(texts, { ...greedy, ...(maxNewTokens === undefined ? {} : { max_new_tokens: maxNewTokens }) });
    send(res, 200, { translations: output.map((t) => ({ text: t.translation_text })) });
  } catch (error) {
    if (!res.headersSent) send(res, error.status ?? 500, { error: error.message });
  }
});

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  console.log(`listening on http://${args.host}:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
