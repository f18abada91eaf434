// transformers.js (@huggingface/transformers 4.3.2) as the reference implementation for parity tests.
//
// It lives in the test-only package tests/reference (its own package.json and lock; about 475 MB installed, most of
// it onnxruntime-node 1.30 and onnxruntime-web), never in Polyhead's dependencies, and runs in a child process
// (tests/reference/run.mjs): Polyhead loads onnxruntime-node 1.29, and two native onnxruntime builds must not load
// in one process.
//
// Things transformers.js does that a parity test must know: pipelines never read modules.json or 1_Pooling (the
// pooling is passed by the caller); text-classification applies sigmoid only for problem_type
// multi_label_classification; token-classification drops special tokens and (by default) 'O', scores with softmax,
// gives no character offsets, and its 'simple' aggregation groups by B-/I- tags alone (a '##' piece can start a group).
//
// Installation: CI runs `npm run reference:install` after `npm ci`. Elsewhere the first call here installs it when
// tests/reference/node_modules lacks the pinned version (`npm ci --prefix tests/reference`, about 10 s from the npm
// registry; onnxruntime-node's postinstall is skipped by tests/reference/.npmrc); if that fails the error says to run
// `npm run reference:install`. The model folders are read locally only: remote models are always off there.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

export const referenceDir = join(packageRoot, 'tests', 'reference');
const runner = join(referenceDir, 'run.mjs');

/** Which ONNX file transformers.js loads: `${subfolder}/${modelFileName}${dtype suffix}.onnx`, default onnx/model.onnx (fp32). */
export interface ModelFileOptions {
  dtype?: 'fp32' | 'fp16' | 'int8' | 'uint8' | 'q8' | 'q4' | 'q4f16' | 'bnb4';
  modelFileName?: string;
  subfolder?: string;
}

export interface TokenizeOp extends ModelFileOptions {
  op: 'tokenize';
  model: string;
  texts: string[];
  /**
   * truncation: true with max_length. transformers.js cuts the encoded ids at maxLength, special tokens included (the
   * final [SEP] / </s> goes too). tokenizer.json's own `truncation` is ignored; pipelines truncate at tokenizer_config's
   * model_max_length.
   */
  truncation?: { maxLength: number };
  /** Default true, as tokenizer(text) does. */
  addSpecialTokens?: boolean;
}
export interface EmbedOp extends ModelFileOptions {
  op: 'embed';
  model: string;
  texts: string[];
  pooling: 'mean' | 'cls' | 'none';
  normalize?: boolean;
}
export interface ClassifyOp extends ModelFileOptions {
  op: 'classify';
  model: string;
  texts: string[];
}
export interface TokensOp extends ModelFileOptions {
  op: 'tokens';
  model: string;
  texts: string[];
  /** Labels left out of the output; transformers.js's default is ['O']. */
  ignoreLabels?: string[];
}
export type ReferenceOp = TokenizeOp | EmbedOp | ClassifyOp | TokensOp;

export interface TokenizeResult {
  /** Per text: input_ids as tokenizer(text) gives them (special tokens included unless addSpecialTokens: false). */
  ids: number[][];
  /** The vocabulary's token for each id. */
  tokens: (string | null)[][];
  attentionMask: number[][];
  /** Only when the tokenizer class returns token_type_ids (BertTokenizer does, RobertaTokenizer does not). */
  typeIds?: number[][];
}
export interface EmbedResult {
  /** mean / cls: one vector per text; none: per text one vector per token (number[][][]). */
  embeddings: number[][] | number[][][];
}
export interface LabelScore {
  label: string;
  score: number;
}
export interface ClassifyResult {
  /** What text-classification applied to the logits: sigmoid only for problem_type multi_label_classification. */
  function: 'softmax' | 'sigmoid';
  problemType: string | null;
  /** Per text, every label, highest score first. */
  results: LabelScore[][];
}
export interface TokenEntity {
  entity: string;
  /** Softmax probability of the winning label (always softmax, whatever the problem type). */
  score: number;
  /** Position in input_ids (so 1 is the first token after [CLS]). */
  index: number;
  /** The token decoded alone (a WordPiece continuation keeps its '##'). */
  word: string;
}
export interface EntityGroup {
  entity_group: string;
  score: number;
  word: string;
}
export interface TokensResult {
  /** aggregation_strategy 'none', per text. Special tokens and ignored labels are absent; no character offsets. */
  none: TokenEntity[][];
  /** aggregation_strategy 'simple', per text; null (with simpleError) if transformers.js rejected it. */
  simple: EntityGroup[][] | null;
  simpleError?: string;
}

export type ReferenceResult<O extends ReferenceOp> = O extends TokenizeOp
  ? TokenizeResult
  : O extends EmbedOp
    ? EmbedResult
    : O extends ClassifyOp
      ? ClassifyResult
      : TokensResult;

export interface RunOptions {
  /** Kills the reference process after this long. Default 180 s. */
  timeoutMs?: number;
}

let installed = false;

/** Installs tests/reference's packages when the pinned @huggingface/transformers is not there (see the top of this file). */
export function ensureReferenceInstalled(): void {
  if (installed) return;
  const wanted: string = JSON.parse(readFileSync(join(referenceDir, 'package.json'), 'utf8')).dependencies['@huggingface/transformers'];
  const manifest = join(referenceDir, 'node_modules', '@huggingface', 'transformers', 'package.json');
  const present = () => existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === wanted;
  if (!present()) {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: referenceDir, encoding: 'utf8', shell: process.platform === 'win32' });
    if (result.status !== 0 || !present()) {
      throw new Error(
        `@huggingface/transformers ${wanted} is not installed in tests/reference and installing it failed; run \`npm run reference:install\`.\n` +
          `${result.error?.message ?? ''}${result.stdout ?? ''}${result.stderr ?? ''}`,
      );
    }
  }
  installed = true;
}

/** Runs the ops in one reference process (transformers.js starts once) and resolves with their results in order. */
export async function runReference<const T extends readonly ReferenceOp[]>(
  ops: T,
  options: RunOptions = {},
): Promise<{ -readonly [K in keyof T]: ReferenceResult<T[K]> }> {
  const answer = await runJob({ ops }, options);
  const results = (answer as { results?: unknown[] }).results;
  if (!Array.isArray(results) || results.length !== ops.length) {
    throw new Error(`transformers.js reference: unexpected answer ${JSON.stringify(answer).slice(0, 500)}`);
  }
  const failures = results.flatMap((r, i) => (r && typeof r === 'object' && 'error' in r ? [`op ${i} (${ops[i]!.op}): ${(r as { error: string }).error}`] : []));
  if (failures.length) throw new Error(`transformers.js reference failed: ${failures.join('; ')}`);
  return results as { -readonly [K in keyof T]: ReferenceResult<T[K]> };
}

export async function referenceTokenize(
  model: string,
  texts: string[],
  opts: Omit<TokenizeOp, 'op' | 'model' | 'texts'> = {},
): Promise<TokenizeResult> {
  const [result] = await runReference([{ op: 'tokenize', model, texts, ...opts }]);
  return result;
}

export async function referenceEmbed(
  model: string,
  texts: string[],
  opts: Omit<EmbedOp, 'op' | 'model' | 'texts'>,
): Promise<EmbedResult> {
  const [result] = await runReference([{ op: 'embed', model, texts, ...opts }]);
  return result;
}

export async function referenceClassify(model: string, texts: string[], opts: ModelFileOptions = {}): Promise<ClassifyResult> {
  const [result] = await runReference([{ op: 'classify', model, texts, ...opts }]);
  return result;
}

export async function referenceTokenClassification(
  model: string,
  texts: string[],
  opts: Omit<TokensOp, 'op' | 'model' | 'texts'> = {},
): Promise<TokensResult> {
  const [result] = await runReference([{ op: 'tokens', model, texts, ...opts }]);
  return result;
}

/** Sends one job to tests/reference/run.mjs and resolves with its parsed answer (an { error } answer is returned, not thrown). */
export async function runJob(job: unknown, { timeoutMs = 180_000 }: RunOptions = {}): Promise<unknown> {
  ensureReferenceInstalled();
  const child = spawn(process.execPath, [runner], { cwd: referenceDir, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  child.stdin.on('error', () => {}); // a child that dies early closes stdin; its exit is reported below
  child.stdin.end(JSON.stringify(job));
  const { code, signal } = await exit.finally(() => clearTimeout(timer));
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`transformers.js reference exited with ${signal ?? code} and no JSON answer:\n${stdout}${stderr}`.slice(0, 4000));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Translation (encoder-decoder models such as Marian / opus-mt in Optimum's layout).
//
// What transformers.js 4.3.2 does that a translation parity test must know: it loads onnx/encoder_model.onnx and
// onnx/decoder_model_merged.onnx only (never decoder_model.onnx / decoder_with_past_model.onnx); the returned ids start
// with the decoder start token (opus-mt: <pad>); num_beams in generation_config.json would select its beam sampler, so
// the op asks for num_beams 1 (greedy); the default length limit is generation_config's max_length (the start token
// counts), and forced_eos_token_id puts </s> at position max_length - 1; in a padded batch every row keeps being
// generated until all rows end with </s> at the same step or max_length, so only a row's ids up to its first </s>
// mean anything (the pipeline's own text of such a row includes the tokens after it: see textToEos). Texts are
// trimmed, and truncated at tokenizer_config's model_max_length with the final </s> cut too.

export interface TranslateOp {
  op: 'translate';
  /** Absolute path of the model folder. */
  model: string;
  texts: string[];
  /** max_new_tokens; default: generation_config.json's max_length applies. */
  maxNewTokens?: number;
  /** All texts as one padded batch (default: one generate call per text). */
  batch?: boolean;
}

export interface TranslationResult {
  /** The row model.generate returns: the decoder start token first, then the generated ids (with </s>). */
  ids: number[];
  /** `ids` decoded with skip_special_tokens, as the translation pipeline returns it. */
  text: string;
  /** The ids up to the first </s> decoded (differs from `text` only for batch rows that went on after </s>). */
  textToEos: string;
}

export interface TranslateResult {
  /** Always true for transformers.js 4.3.2: ids[0] is the decoder start token. */
  startTokenIncluded: boolean;
  /** One per text, in order. */
  results: TranslationResult[];
}

/** Greedy translation by transformers.js (model.generate on the translation pipeline's inputs; see TranslateOp). */
export async function referenceTranslate(
  model: string,
  texts: string[],
  opts: Omit<TranslateOp, 'op' | 'model' | 'texts'> = {},
  runOptions: RunOptions = {},
): Promise<TranslateResult> {
  const op: TranslateOp = { op: 'translate', model, texts, ...opts };
  const answer = (await runJob({ ops: [op] }, runOptions)) as { results?: unknown[] };
  const result = Array.isArray(answer.results) && answer.results.length === 1 ? answer.results[0] : answer;
  if (!result || typeof result !== 'object' || 'error' in result) {
    throw new Error(`transformers.js reference failed: translate: ${(result as { error?: string } | undefined)?.error ?? JSON.stringify(answer).slice(0, 500)}`);
  }
  const translated = result as TranslateResult;
  if (!Array.isArray(translated.results) || translated.results.length !== texts.length) {
    throw new Error(`transformers.js reference: unexpected translate answer ${JSON.stringify(answer).slice(0, 500)}`);
  }
  return translated;
}
