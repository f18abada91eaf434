#!/usr/bin/env node
/**
 * What a JavaScript team would write instead of Polyhead for translation: a plain node:http server around
 * transformers.js's translation pipeline. The baseline for bench/translate.ts.
 *
 *   node bench/translate-reference-server.mjs --model DIR [--port 0] [--host 127.0.0.1] [--threads N]
 *
 * POST /translate with { "texts": string[], "maxNewTokens"?: number, "minNewTokens"?: number } answers { "translations": [{ "text" }] }: one
 * pipeline call per request (no batching across requests), greedy (num_beams 1, do_sample false), max_new_tokens and
 * min_new_tokens as given (the pipeline's defaults, 256 and none, when absent). Prints `listening on http://HOST:PORT` once the model is loaded
 * and has answered one warm-up call. DIR is a Marian folder in Optimum's layout (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, onnx/encoder_model.onnx, onnx/decoder_model_merged.onnx); it is read
 * locally only (remote models off, no file cache).
 *
 * @huggingface/transformers is not a dependency of Polyhead: it is resolved from the test-only package
 * tests/reference (install it with `npm run reference:install`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { failer, loadPipeline, serveTexts } from './reference-server-kit.mjs';

const fail = failer('translate-reference-server');
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

for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx']) {
  if (!existsSync(join(modelDir, file))) fail(`${join(modelDir, file)} is missing`);
}

const pipeline = await loadPipeline(fail);

const session_options = args.threads ? { intraOpNumThreads: Number(args.threads) } : {};
const translator = await pipeline('translation', modelDir, { dtype: 'fp32', device: 'cpu', subfolder: 'onnx', session_options });
if (!translator.tokenizer) fail(`no tokenizer loaded from ${modelDir}`);
// generation_config.json may ask for beams (opus-mt: 4); greedy is what is compared.
const greedy = { num_beams: 1, do_sample: false };
await translator(['warm up'], { ...greedy, max_new_tokens: 8 });

serveTexts({
  path: '/translate',
  host: args.host,
  port: args.port,
  maxBodyBytes: 1024 * 1024,
  answer: async (texts, body) => {
    const maxNewTokens = body.maxNewTokens;
    if (maxNewTokens !== undefined && !(Number.isInteger(maxNewTokens) && maxNewTokens >= 1 && maxNewTokens <= 512)) {
      throw Object.assign(new Error('maxNewTokens must be an integer in 1..512'), { status: 400 });
    }
    const minNewTokens = body.minNewTokens;
    if (minNewTokens !== undefined && !(Number.isInteger(minNewTokens) && minNewTokens >= 0 && minNewTokens <= 512)) {
      throw Object.assign(new Error('minNewTokens must be an integer in 0..512'), { status: 400 });
    }
    const output = await translator(texts, {
      ...greedy,
      ...(maxNewTokens === undefined ? {} : { max_new_tokens: maxNewTokens }),
      ...(minNewTokens === undefined ? {} : { min_new_tokens: minNewTokens }),
    });
    return { translations: output.map((t) => ({ text: t.translation_text })) };
  },
});
