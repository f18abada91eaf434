// Errors of the OpenAI-compatible routes in OpenAI's own shape, {error: {message, type, param, code}}, with the
// HTTP status OpenAI's clients act on (they retry 429 and 5xx, honouring Retry-After, and raise the rest).
import type { ServerResponse } from 'node:http';
import { toPolyheadError, type ErrorCode } from '../../errors.js';

export type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'rate_limit_error' | 'server_error';

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    readonly type: OpenAiErrorType,
    readonly code: string | null,
    message: string,
    /** The request field at fault, as OpenAI names it ("input", "model", ...), or null. */
    readonly param: string | null = null,
    /** How long before a retry may succeed (429, 503), in milliseconds: sent as Retry-After. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'OpenAiError';
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) => new OpenAiError(400, 'invalid_request_error', code, message, param);

/** Each typed Polyhead code as OpenAI would answer it (one table, as the GraphQL side has extensions.code). */
const byPolyheadCode: Record<ErrorCode, { status: number; type: OpenAiErrorType; code: string | null }> = {
  BAD_USER_INPUT: { status: 400, type: 'invalid_request_error', code: null },
  UNAUTHENTICATED: { status: 401, type: 'authentication_error', code: 'invalid_api_key' },
  FORBIDDEN: { status: 403, type: 'permission_error', code: 'insufficient_permissions' },
  MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  VERSION_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  HEAD_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  OVERLOADED: { status: 429, type: 'rate_limit_error', code: 'overloaded' },
  // The client left: nobody reads this answer (499 is nginx's "client closed request").
  CANCELLED: { status: 499, type: 'invalid_request_error', code: 'cancelled' },
  SHUTTING_DOWN: { status: 503, type: 'server_error', code: 'shutting_down' },
  REGISTRY_UNAVAILABLE: { status: 503, type: 'server_error', code: 'registry_unavailable' },
  DEADLINE_EXCEEDED: { status: 504, type: 'server_error', code: 'timeout' },
  BUNDLE_INVALID: { status: 500, type: 'server_error', code: 'bundle_invalid' },
  BUNDLE_CONFLICT: { status: 500, type: 'server_error', code: 'bundle_conflict' },
  MODEL_LOAD_FAILED: { status: 500, type: 'server_error', code: 'model_load_failed' },
  INFERENCE_FAILED: { status: 500, type: 'server_error', code: 'inference_failed' },
  BATCH_FAILED: { status: 500, type: 'server_error', code: 'inference_failed' },
  INTERNAL_SERVER_ERROR: { status: 500, type: 'server_error', code: null },
};

/** Any error as an OpenAiError: typed ones keep their message; anything else is masked (no stack, no path). */
export function openAiErrorOf(error: unknown): OpenAiError {
  if (error instanceof OpenAiError) return error;
  const typed = toPolyheadError(error);
  if (!typed) return new OpenAiError(500, 'server_error', null, 'Internal server error');
  const { status, type, code } = byPolyheadCode[typed.code];
  const retryAfterMs = typeof typed.details.retryAfterMs === 'number' ? typed.details.retryAfterMs : typeof typed.details.retryAfter === 'number' ? typed.details.retryAfter * 1000 : undefined;
  return new OpenAiError(status, type, code, typed.message, null, retryAfterMs);
}

/** The answer's body and headers (Retry-After in whole seconds; retry-after-ms too, which OpenAI's own clients read first). */
export function openAiErrorResponse(error: OpenAiError): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (error.retryAfterMs !== undefined) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
    headers['retry-after-ms'] = String(Math.max(1, Math.ceil(error.retryAfterMs)));
  }
  return { headers, body: JSON.stringify({ error: { message: error.message, type: error.type, param: error.param, code: error.code } }) };
}

export function sendOpenAiError(res: ServerResponse, error: OpenAiError): void {
  const { headers, body } = openAiErrorResponse(error);
  res.statusCode = error.status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
