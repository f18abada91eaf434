// The work of POST /v1/embeddings: the inputs checked against the server's limits, then embedded by the engine,
// batched by each model's scheduler with every other request (GraphQL's included).
import type { Engine, InferTrace } from '../../engine/engine.js';
import type { InputLimits } from '../../serving/inference.service.js';
import type { EmbeddingsRequest } from './embeddings.request.js';
import { resolveEmbeddingModel } from './model-ids.js';
import { OpenAiError, invalidRequest } from './openai-error.js';

export interface Embedded {
  /** Unit-length vectors, one per input, in input order. */
  vectors: number[][];
  /** Tokens of every input as the model's tokenizer counts them (before truncation to the model's length). */
  promptTokens: number;
}

/** Too many or too long inputs are 413 (what OpenAI answers for a request over its limits); empty ones 400. */
export function checkInputs(texts: readonly string[], limits: Pick<InputLimits, 'maxTexts' | 'maxTextChars'>): void {
  if (texts.length === 0) throw invalidRequest('input: give at least one text', 'input', 'invalid_value');
  if (texts.length > limits.maxTexts) {
    throw new OpenAiError(413, 'invalid_request_error', 'too_many_inputs', `input: at most ${limits.maxTexts} inputs per request (POLYHEAD_MAX_TEXTS), got ${texts.length}`, 'input');
  }
  texts.forEach((text, i) => {
    if (text.trim().length === 0) throw invalidRequest(`input[${i}]: empty text`, 'input', 'invalid_value');
    if (text.length > limits.maxTextChars) {
      throw new OpenAiError(413, 'invalid_request_error', 'input_too_long', `input[${i}]: ${text.length} characters, at most ${limits.maxTextChars} (POLYHEAD_MAX_TEXT_CHARS)`, 'input');
    }
  });
}

export async function embedInputs(engine: Engine, limits: Pick<InputLimits, 'maxTexts' | 'maxTextChars'>, request: EmbeddingsRequest, signal?: AbortSignal, trace?: InferTrace): Promise<Embedded> {
  const source = resolveEmbeddingModel(engine, request.model);
  checkInputs(request.texts, limits);
  const results = await engine.infer(source.model, request.texts, { heads: source.head ? [source.head] : [], signal, trace });
  const vectors: number[][] = [];
  let promptTokens = 0;
  for (const result of results) {
    if (result instanceof Error) throw result; // the request fails whole, with its first error (429, 504, ...)
    const vector = source.head ? (result.heads.get(source.head) as Float32Array | undefined) : result.embedding;
    if (!vector) throw new OpenAiError(500, 'server_error', 'inference_failed', `the model "${request.model}" gave no embedding for an input`);
    vectors.push(unitLength(vector));
    promptTokens += result.tokenCount;
  }
  // The width is known for certain only from the output (an embedding head may project the backbone's).
  const width = vectors[0]!.length;
  if (request.dimensions !== undefined && request.dimensions !== width) {
    throw invalidRequest(`dimensions: the model "${request.model}" gives ${width}-dimensional embeddings and cannot shorten them; leave dimensions out or send ${width}`, 'dimensions', 'invalid_value');
  }
  return { vectors, promptTokens };
}

/** The vector divided by its length in double precision, as GraphQL's embed does, so both answers agree. */
function unitLength(vector: Float32Array): number[] {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  const norm = Math.sqrt(sum) || 1;
  const values: number[] = new Array(vector.length);
  for (let i = 0; i < vector.length; i++) values[i] = vector[i]! / norm;
  return values;
}
