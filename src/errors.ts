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
    return new PolyheadError(error.code as ErrorCode, withoutPaths(error.message), details);
  }
  if (isDatabaseUnavailable(error)) {
    // The client learns that the registry is down, not where it lives (the host stays in /readyz).
    return new PolyheadError('REGISTRY_UNAVAILABLE', 'the model registry database is unreachable; inference keeps serving, retry registry requests later', {
      retryAfter: 5,
    });
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

/**
 * Engine messages quote what onnxruntime and the file system said, e.g. "Load model from /srv/data/bundles/
 * m-1.0.0/heads/topic.onnx failed". Where the server keeps its folders is its own business: an absolute
 * path keeps only its name inside the bundle ("heads/topic.onnx", "backbone.onnx").
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w.:/])\/(?:[^\s/'"`:,()]+\/)+([^\s/'"`:,()]+)/g, (path, file: string) => /\/((?:heads\/)?[^/]+)$/.exec(path)?.[1] ?? file);
}

// What a lost database looks like by the time it reaches a resolver. Prisma wraps the driver adapter's
// error: P1001 "Can't reach database server" (adapter kind DatabaseNotReachable, from ECONNREFUSED),
// P2010 with the PostgreSQL code 57P01 for a query cut off by a fast shutdown, kinds ConnectionClosed and
// SocketTimeout for ECONNRESET and ETIMEDOUT; node-postgres throws bare errno errors and "Connection
// terminated" messages. Anything else (a constraint, a bad query) stays what it is.
const unavailablePrismaCodes = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const unavailableAdapterKinds = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
const unavailableErrnos = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const unavailableMessages = /Can't reach database server|Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection due to administrator command|the database system is (?:shutting down|starting up)|Server has closed the connection/i;

/** True for errors that mean the registry database cannot be reached now (and may come back). */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 4) return false;
  const e = error as { code?: unknown; message?: unknown; kind?: unknown; originalCode?: unknown; meta?: { driverAdapterError?: { cause?: unknown } }; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && (unavailablePrismaCodes.has(code) || unavailableErrnos.has(code) || isConnectionSqlState(code))) return true;
  if (typeof e.kind === 'string' && unavailableAdapterKinds.has(e.kind)) return true;
  if (typeof e.originalCode === 'string' && isConnectionSqlState(e.originalCode)) return true;
  if (typeof e.message === 'string' && unavailableMessages.test(e.message)) return true;
  return isDatabaseUnavailable(e.meta?.driverAdapterError?.cause, depth + 1) || isDatabaseUnavailable(e.cause, depth + 1);
}

/** SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown, crash, not yet accepting), 53300 (too many connections). */
function isConnectionSqlState(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}
