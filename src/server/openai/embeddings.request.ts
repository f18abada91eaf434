// The body of POST /v1/embeddings, checked field by field: OpenAI's request shape, refused in OpenAI's words
// (400 invalid_request_error naming the param) where Polyhead cannot honour it.
import { z } from 'zod';
import { invalidRequest } from './openai-error.js';

export interface EmbeddingsRequest {
  /** The OpenAI model id as sent: "<model>" or "<model>:<embedding head>". */
  model: string;
  /** The inputs in order (a single string becomes a list of one). */
  texts: string[];
  /** How the vectors come back: JSON numbers, or base64 of little-endian float32 (OpenAI's default is float). */
  encodingFormat: 'float' | 'base64';
  /** Asked width; served only when it is the model's own (the vectors are not truncated). */
  dimensions?: number;
}

const embeddingsBody = z.strictObject({
  model: z.string({ error: 'model: give the model id, e.g. "default" (GET /v1/models lists them)' }).min(1, 'model: give the model id, e.g. "default" (GET /v1/models lists them)'),
  input: z.union([z.string(), z.array(z.string())], { error: 'input: a string or an array of strings' }),
  encoding_format: z.enum(['float', 'base64'], { error: 'encoding_format: "float" or "base64"' }).optional(),
  dimensions: z.number({ error: 'dimensions: a positive integer' }).int('dimensions: a positive integer').positive('dimensions: a positive integer').optional(),
  // OpenAI records it against abuse; Polyhead accepts it and keeps nothing.
  user: z.string({ error: 'user: a string' }).optional(),
});

export function parseEmbeddingsRequest(body: unknown): EmbeddingsRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest('the body must be a JSON object such as {"model": "default", "input": "some text"}');
  const input = (body as { input?: unknown }).input;
  // OpenAI also takes token ids (an array of integers, or of such arrays): they are ids of OpenAI's own
  // tokenizer, meaningless to another model's, so they are refused rather than guessed at.
  if (Array.isArray(input) && input.some((item) => typeof item === 'number' || Array.isArray(item))) {
    throw invalidRequest('input: token ids are not supported, send the texts themselves (LangChain: OpenAIEmbeddings with check_embedding_ctx_length=False)', 'input', 'unsupported_input');
  }
  const parsed = embeddingsBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw invalidRequest(`unrecognized request argument${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')} (accepted: model, input, encoding_format, dimensions, user)`, issue.keys[0]!, 'unknown_parameter');
    }
    const param = issue.path.length ? String(issue.path[0]) : null;
    throw invalidRequest(issue.message, param, param === null ? null : 'invalid_value');
  }
  const { model, input: texts, encoding_format, dimensions } = parsed.data;
  return { model, texts: typeof texts === 'string' ? [texts] : texts, encodingFormat: encoding_format ?? 'float', dimensions };
}
