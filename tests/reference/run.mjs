#!/usr/bin/env node
// transformers.js (@huggingface/transformers, pinned in ./package.json) as the reference implementation for
// Polyhead's parity tests. Reads one JSON job from stdin (or from the file named by the first argument), prints one
// JSON result on stdout, exits 0 (1 if the job or any of its ops failed). Runs in its own process because
// transformers.js brings onnxruntime-node 1.30 and Polyhead loads 1.29: two native builds must never share a process.
//
// A job is one op, or { ops: [op, ...] } to pay transformers.js's start-up once for several ops:
//   { op: 'tokenize', model, texts, truncation?: { maxLength }, addSpecialTokens? = true }
//       -> { ids: number[][], tokens: string[][], attentionMask: number[][], typeIds?: number[][] }
//   { op: 'embed', model, texts, pooling: 'mean' | 'cls' | 'none', normalize? = false }
//       -> { embeddings: number[][] }            (pooling 'none': number[][][], each text's own tokens, no padding)
//   { op: 'classify', model, texts }
//       -> { function: 'softmax' | 'sigmoid', problemType: string | null, results: { label, score }[][] }
//          (every label per text, best first, as text-classification with top_k: null gives them)
//   { op: 'tokens', model, texts, ignoreLabels? = ['O'] }
//       -> { none: { entity, score, index, word }[][], simple: { entity_group, score, word }[][] | null, simpleError? }
//   { op: 'translate', model, texts, maxNewTokens?, batch? = false }
//       -> { startTokenIncluded: true, results: { ids: number[], text: string, textToEos: string }[] }
//          Greedy model.generate (num_beams 1, do_sample false; config and generation_config.json give the rest:
//          decoder_start_token_id, bad_words_ids, forced_eos_token_id, max_length unless maxNewTokens is given) on
//          the inputs the translation pipeline builds (padding and truncation at model_max_length). ids: the row
//          transformers.js returns, starting with the decoder start token. text: that row decoded with
//          skip_special_tokens, as the pipeline returns it; textToEos: only the ids up to the first </s>. batch:
//          all texts as one padded batch, where transformers.js keeps generating for rows that have emitted </s>
//          until every row ends with </s> at the same step or max_length (ids after a row's first </s> mean
//          nothing); otherwise one generate call per text. Loads onnx/encoder_model.onnx and
//          onnx/decoder_model_merged.onnx (only the merged decoder).
// Every op but translate also takes dtype (default 'fp32': the file onnx/model.onnx), modelFileName (default 'model')
// and subfolder (default 'onnx'). `model` is an absolute path to a Hugging Face model folder.
// One op gives its result object, or { error }; { ops } gives { results: [...] } with { error } in place of a
// failed op's result. Nothing is fetched: remote models are off and there is no file cache.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

// transformers.js and onnxruntime may log; stdout carries only the result.
for (const method of ['log', 'info', 'debug']) console[method] = (...args) => console.error(...args);

const { env, pipeline, AutoTokenizer, AutoModelForSeq2SeqLM } = await import('@huggingface/transformers');

env.allowRemoteModels = false; // always: a missing optional file would otherwise become a Hub request
env.allowLocalModels = true;
env.localModelPath = '/'; // absolute model paths are used as they are
env.useFSCache = false;
env.useBrowserCache = false;

const DTYPE_SUFFIX = { fp32: '', fp16: '_fp16', int8: '_int8', uint8: '_uint8', q8: '_quantized', q4: '_q4', q4f16: '_q4f16', bnb4: '_bnb4' };

function checkFolder(op, { needsModel }) {
  const dir = op.model;
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new Error(`model must be an absolute path to a model folder, got ${JSON.stringify(dir)}`);
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  // Without tokenizer_config.json transformers.js's pipeline() silently loads no tokenizer and fails later, obscurely.
  const required = ['tokenizer.json', 'tokenizer_config.json'];
  if (needsModel) {
    const dtype = op.dtype ?? 'fp32';
    if (!(dtype in DTYPE_SUFFIX)) throw new Error(`unknown dtype ${dtype}`);
    required.push('config.json', join(op.subfolder ?? 'onnx', `${op.modelFileName ?? 'model'}${DTYPE_SUFFIX[dtype]}.onnx`));
  }
  for (const file of required) {
    if (!existsSync(join(dir, file))) throw new Error(`${join(dir, file)} is missing`);
  }
  if (!Array.isArray(op.texts) || op.texts.length === 0 || !op.texts.every((t) => typeof t === 'string')) {
    throw new Error('texts must be a non-empty array of strings');
  }
}

const pipelines = new Map();
async function pipelineFor(task, op) {
  const options = { dtype: op.dtype ?? 'fp32', device: 'cpu', subfolder: op.subfolder ?? 'onnx', model_file_name: op.modelFileName ?? 'model' };
  const key = JSON.stringify([task, op.model, options]);
  if (!pipelines.has(key)) pipelines.set(key, pipeline(task, op.model, options));
  const pipe = await pipelines.get(key);
  if (!pipe.tokenizer) throw new Error(`transformers.js loaded no tokenizer from ${op.model}`);
  return pipe;
}

const tokenizers = new Map();
function tokenizerFor(dir) {
  if (!tokenizers.has(dir)) tokenizers.set(dir, AutoTokenizer.from_pretrained(dir));
  return tokenizers.get(dir);
}

const toNumbers = (list) => list.map(Number);

async function tokenize(op) {
  checkFolder(op, { needsModel: false });
  const tokenizer = await tokenizerFor(op.model);
  const vocab = tokenizer.get_vocab();
  const byId = new Map((vocab instanceof Map ? [...vocab] : Object.entries(vocab)).map(([token, id]) => [Number(id), token]));
  const options = { return_tensor: false, add_special_tokens: op.addSpecialTokens ?? true };
  if (op.truncation) {
    if (!Number.isInteger(op.truncation.maxLength) || op.truncation.maxLength < 1) throw new Error('truncation.maxLength must be a positive integer');
    Object.assign(options, { truncation: true, max_length: op.truncation.maxLength });
  }
  const out = { ids: [], tokens: [], attentionMask: [] };
  for (const text of op.texts) {
    // One text per call, as tokenizer(text) gives it (a batch without padding: true would be rejected if lengths differ).
    const encoded = tokenizer(text, options);
    const ids = toNumbers(encoded.input_ids);
    out.ids.push(ids);
    out.tokens.push(ids.map((id) => byId.get(id) ?? null));
    out.attentionMask.push(toNumbers(encoded.attention_mask));
    if (encoded.token_type_ids) (out.typeIds ??= []).push(toNumbers(encoded.token_type_ids));
  }
  return out;
}

async function embed(op) {
  checkFolder(op, { needsModel: true });
  const pooling = op.pooling ?? 'none';
  if (!['mean', 'cls', 'none'].includes(pooling)) throw new Error(`pooling must be 'mean', 'cls' or 'none', got ${JSON.stringify(pooling)}`);
  const extractor = await pipelineFor('feature-extraction', op);
  const options = { pooling, normalize: Boolean(op.normalize) };
  if (pooling === 'none') {
    // Per text: a batched call pads, and the padded positions would come back as tokens.
    const embeddings = [];
    for (const text of op.texts) embeddings.push((await extractor([text], options)).tolist()[0]);
    return { embeddings };
  }
  // Batched (padded), as a server would call it; mean pooling is masked, so padding does not count.
  return { embeddings: (await extractor(op.texts, options)).tolist() };
}

async function classify(op) {
  checkFolder(op, { needsModel: true });
  const classifier = await pipelineFor('text-classification', op);
  const problemType = classifier.model.config.problem_type ?? null;
  const results = await classifier(op.texts, { top_k: null });
  // The pipeline's own rule: sigmoid for multi_label_classification, softmax for everything else.
  return { function: problemType === 'multi_label_classification' ? 'sigmoid' : 'softmax', problemType, results };
}

async function tokens(op) {
  checkFolder(op, { needsModel: true });
  const tagger = await pipelineFor('token-classification', op);
  const ignore_labels = op.ignoreLabels ?? ['O'];
  const none = await tagger(op.texts, { aggregation_strategy: 'none', ignore_labels });
  const out = { none, simple: null };
  try {
    out.simple = await tagger(op.texts, { aggregation_strategy: 'simple', ignore_labels });
  } catch (error) {
    out.simpleError = error instanceof Error ? error.message : String(error);
  }
  return out;
}

const seq2seqModels = new Map();
function seq2seqModelFor(dir) {
  if (!seq2seqModels.has(dir)) seq2seqModels.set(dir, AutoModelForSeq2SeqLM.from_pretrained(dir, { dtype: 'fp32', device: 'cpu', subfolder: 'onnx' }));
  return seq2seqModels.get(dir);
}

async function translate(op) {
  checkFolder(op, { needsModel: false });
  for (const file of ['config.json', 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx']) {
    if (!existsSync(join(op.model, file))) throw new Error(`${join(op.model, file)} is missing`);
  }
  if (op.maxNewTokens !== undefined && (!Number.isInteger(op.maxNewTokens) || op.maxNewTokens < 1)) throw new Error('maxNewTokens must be a positive integer');
  const tokenizer = await tokenizerFor(op.model);
  const model = await seq2seqModelFor(op.model);
  const options = { num_beams: 1, do_sample: false, ...(op.maxNewTokens === undefined ? {} : { max_new_tokens: op.maxNewTokens }) };
  const eos = model.generation_config?.eos_token_id ?? model.config.eos_token_id;
  const eosIds = new Set((Array.isArray(eos) ? eos : [eos]).map(Number));
  const generate = async (texts) => {
    // As the translation pipeline builds its inputs (Text2TextGenerationPipeline: padding and truncation).
    const inputs = tokenizer(texts, { padding: true, truncation: true });
    const output = await model.generate({ ...inputs, ...options });
    return output.tolist().map((row) => {
      const ids = row.map(Number);
      const end = ids.findIndex((id, i) => i > 0 && eosIds.has(id));
      return {
        ids,
        text: tokenizer.decode(ids, { skip_special_tokens: true }),
        textToEos: tokenizer.decode(end < 0 ? ids : ids.slice(0, end + 1), { skip_special_tokens: true }),
      };
    });
  };
  const results = [];
  if (op.batch) results.push(...(await generate(op.texts)));
  else for (const text of op.texts) results.push(...(await generate([text])));
  return { startTokenIncluded: true, results };
}

const OPS = { tokenize, embed, classify, tokens, translate };

async function runOp(op) {
  try {
    if (!op || typeof op !== 'object') throw new Error('an op must be an object');
    const fn = OPS[op.op];
    if (!fn) throw new Error(`unknown op ${JSON.stringify(op.op)}; expected one of ${Object.keys(OPS).join(', ')}`);
    return await fn(op);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

async function readJob() {
  if (process.argv[2]) return readFileSync(process.argv[2], 'utf8');
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

let result;
try {
  const job = JSON.parse(await readJob());
  if (job && Array.isArray(job.ops)) {
    const results = [];
    for (const op of job.ops) results.push(await runOp(op));
    result = { results };
  } else {
    result = await runOp(job);
  }
} catch (error) {
  result = { error: `bad job: ${error instanceof Error ? error.message : String(error)}` };
}
const failed = 'error' in result || (result.results ?? []).some((r) => 'error' in r);
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(failed ? 1 : 0));
