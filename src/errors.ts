// One error type for everything a client may see, and one mapping to GraphQL's extensions.code.
// Anything else that reaches the client is unexpected and gets masked (see formatError).
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

export const errorCodes = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'MODEL_NOT_FOUND',
  'VERSION_NOT_FOUND',
  'HEAD_NOT_FOUND',
  'BUNDLE_INVALID',
  'BUNDLE_CONFLICT',
  'MODEL_LOAD_FAILED',
  'OVERLOADED',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'SHUTTING_DOWN',
  'INFERENCE_FAILED',
  'BATCH_FAILED',
  'REGISTRY_UNAVAILABLE',
  'NOT_FOUND',
  'INTERNAL_SERVER_ERROR',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class PolyheadError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'PolyheadError';
  }
}

export function badInput(message: string, details?: Record<string, unknown>): PolyheadError {
  return new PolyheadError('BAD_USER_INPUT', message, details);
}

/** Errors with a `code` from a known list (engine, registry) become PolyheadErrors; others stay unexpected. */
export function toPolyheadError(error: unknown): PolyheadError | undefined {
  if (error instanceof PolyheadError) return error;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && (errorCodes as readonly string[]).includes(error.code)) {
    const details: Record<string, unknown> = {};
    if ('retryAfterMs' in error && typeof error.retryAfterMs === 'number') {
      details.retryAfter = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
      details.retryAfterMs = Math.ceil(error.retryAfterMs);
    }
    return new PolyheadError(error.code as ErrorCode, error.message, details);
  }
  return undefined;
}

export function toGraphQLError(error: PolyheadError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { code: error.code, ...error.details } });
}

/**
 * Apollo's formatError: typed errors keep their code and message; GraphQL's own validation and parse
 * errors pass through; everything else is masked unless in development, so stack traces and file
 * paths never reach a client.
 */
export function formatError(development: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    const typed = toPolyheadError(original);
    if (typed) {
      return { ...formatted, message: typed.message, extensions: { code: typed.code, ...typed.details } };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') {
      const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    if (development) return formatted;
    return { message: 'Internal server error', locations: formatted.locations, path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
