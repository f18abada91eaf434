/**
 * The engine's one error type. `code` says what went wrong in terms a caller can act on; the GraphQL layer
 * maps each code to `extensions.code` in one table. Add codes here, never a second error class.
 */
export type EngineErrorCode =
  /** The queue is full; retry after `retryAfterMs`. */
  | 'OVERLOADED'
  /** The caller's deadline passed before a result was ready. */
  | 'DEADLINE_EXCEEDED'
  /** The caller aborted (e.g. the client disconnected). */
  | 'CANCELLED'
  /** The scheduler is closing and takes no new work. */
  | 'SHUTTING_DOWN'
  /** The backend failed a whole batch; `cause` holds its error. */
  | 'BATCH_FAILED'
  /** No loaded model by that name. */
  | 'MODEL_NOT_FOUND'
  /** The model has no head by that name, or not of the kind asked for. */
  | 'HEAD_NOT_FOUND'
  /** A model could not be loaded or warmed; whatever served before keeps serving. */
  | 'MODEL_LOAD_FAILED'
  /** One text failed inside a batch that otherwise succeeded. */
  | 'INFERENCE_FAILED';

export interface EngineErrorOptions {
  cause?: unknown;
  retryAfterMs?: number;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  /** Only for OVERLOADED: a hint for when to try again, in milliseconds. */
  readonly retryAfterMs?: number;

  constructor(code: EngineErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineError';
    this.code = code;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export function isEngineError(error: unknown, code?: EngineErrorCode): error is EngineError {
  return error instanceof EngineError && (code === undefined || error.code === code);
}
