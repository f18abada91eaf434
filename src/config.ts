// Every setting comes from the environment, read once at start; each carries its default here.
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultQueryLimits, type QueryLimits } from './server/query-limits.js';
import { readTracingConfig, type TracingConfig } from './observability/tracing-config.js';

export interface ServerConfig {
  /** PORT, default 4000. */
  port: number;
  /** HOST, default all interfaces (0.0.0.0). */
  host: string;
  /** POLYHEAD_DATA_DIR, default ./.polyhead: the embedded database and built bundles live here. */
  dataDir: string;
  /** POLYHEAD_BUNDLE_DIR, default <dataDir>/bundles: where the built-in model bundle is built. */
  bundleDir: string;
  /**
   * POLYHEAD_CACHE_DIR, default <dataDir>/cache: this host's copies of bundle files fetched from the registry (by
   * sha256, each checked before use) for versions whose bundle folder is not on this host.
   */
  cacheDir: string;
  /** POLYHEAD_MODELS, default the default model: comma-separated models to load at start ("" = none). */
  models: string[];
  /** POLYHEAD_DEVICE (cpu | cuda | auto), default auto: where the backbone runs. */
  device: 'auto' | 'cpu' | 'cuda';
  /**
   * POLYHEAD_PRECISION (auto | fp32 | fp16 | q8), default auto: the fp16 backbone on CUDA, fp32 on the CPU (fp16 needs
   * CUDA); q8 loads an imported model's onnx/model_quantized.onnx where it has one.
   */
  precision: 'auto' | 'fp32' | 'fp16' | 'q8';
  /** Batch and queue sizes used instead of the CPU ones when the backbone runs on CUDA (POLYHEAD_CUDA_*). */
  cuda: { maxBatchSize: number; maxBatchTokens: number; maxQueueTexts: number; maxQueueTokens: number; concurrentBatches: number; batchOverheadTokens: number };
  /**
   * POLYHEAD_ORT_THREADS, default 0 (the cores shared out among the replicas; on the CPU with POLYHEAD_WORKERS > 1,
   * the cores divided by the workers, see server/runtime.ts): onnxruntime intra-op threads per replica.
   */
  ortThreads: number;
  /** POLYHEAD_FINE_TUNE_THREADS, default 1: onnxruntime threads of a backbone fine-tuning job (its own worker thread, beside serving). */
  fineTuneThreads: number;
  /**
   * Durable training jobs (docs/scaling.md). POLYHEAD_JOB_STALE_MS, default 30000: a running job whose record has had
   * no heartbeat for this long lost its replica (runners write one every sixth of it) and is queued again, or marked
   * failed with the reason; POLYHEAD_JOB_ATTEMPTS, default 2: runs a job gets in all, the first included.
   */
  jobs: { staleMs: number; attempts: number };
  /** POLYHEAD_ORT_REPLICAS, default 2 on a CPU with 2 cores or more (1 with POLYHEAD_WORKERS > 1), else 1: copies of each model, each in its own
   *  worker thread, so that several batches compute at once (measured in the README). Ignored on CUDA. */
  ortReplicas: number;
  /** POLYHEAD_ORT_OPTIMIZATION (disabled | basic | extended | all), default all. */
  ortOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  /** POLYHEAD_MAX_BATCH_SIZE, default 64: texts per backbone batch. */
  maxBatchSize: number;
  /** POLYHEAD_MAX_BATCH_TOKENS, default 8192: padded tokens (longest x count) per batch. */
  maxBatchTokens: number;
  /** POLYHEAD_CONCURRENT_BATCHES, default POLYHEAD_ORT_REPLICAS: batches handed to onnxruntime at once on the CPU
   *  (one per replica; more wait in a worker, so the backbone never idles while the node thread is busy). */
  concurrentBatches: number;
  /** POLYHEAD_MAX_WAIT_MS, default 0: how long a batch may wait to fill while the backbone is idle. */
  maxWaitMs: number;
  /**
   * POLYHEAD_BATCH_OVERHEAD_TOKENS: the fixed cost of one backbone run, in padded tokens, that the scheduler
   * weighs against padding when it groups texts by length (a smaller value: more, tighter batches).
   */
  batchOverheadTokens: number;
  /** POLYHEAD_MAX_QUEUE_TEXTS, default 4096: texts waiting before requests get OVERLOADED. */
  maxQueueTexts: number;
  /** POLYHEAD_MAX_QUEUE_TOKENS, default 262144: tokens waiting before requests get OVERLOADED. */
  maxQueueTokens: number;
  /** POLYHEAD_REQUEST_TIMEOUT_MS, default 30000: how long a request may wait for inference. */
  requestTimeoutMs: number;
  /** POLYHEAD_MAX_TEXTS, default 256: texts per field. */
  maxTexts: number;
  /** POLYHEAD_MAX_TEXT_CHARS, default 100000: characters per text. */
  maxTextChars: number;
  /**
   * Translation: POLYHEAD_MAX_NEW_TOKENS (default 256) caps maxNewTokens, POLYHEAD_MAX_BEAMS (8) beams;
   * POLYHEAD_GENERATION_MAX_ROWS (64) rows decoded together per step, POLYHEAD_GENERATION_TOKEN_BUDGET (65536)
   * cache tokens those rows may reserve, POLYHEAD_GENERATION_MAX_QUEUE (1024) requests waiting before OVERLOADED,
   * POLYHEAD_CONTINUOUS_BATCHING (true; false: static batches).
   */
  generation: { maxNewTokens: number; maxBeams: number; maxActiveRows: number; tokenBudget: number; maxQueue: number; continuous: boolean };
  /** POLYHEAD_MAX_BODY_BYTES, default 4194304 (4 MiB): largest request body. */
  maxBodyBytes: number;
  /**
   * After a refused body (413, 415) the rest of it is read and dropped so that the client can read the answer
   * before the connection closes (a lingering close): POLYHEAD_LINGER_BYTES, default 16777216 (16 MiB), at most
   * this much more, and POLYHEAD_LINGER_MS, default 5000, for at most this long.
   */
  refusedBodyLinger: { maxBytes: number; maxMs: number };
  /** POLYHEAD_MAX_QUERY_DEPTH, POLYHEAD_MAX_ALIASES, POLYHEAD_MAX_FIELDS, POLYHEAD_MAX_QUERY_COST (12, 30, 1000, 50000). */
  queryLimits: QueryLimits;
  /** POLYHEAD_REQUIRE_READ_KEY=true: queries need a key with the read scope too. Default false. */
  requireReadKey: boolean;
  /** POLYHEAD_INTROSPECTION=false turns schema introspection off. Default on. */
  introspection: boolean;
  /** POLYHEAD_GRAPHIQL=false stops serving GraphiQL. Default on. */
  graphiql: boolean;
  /** POLYHEAD_CORS_ORIGINS: comma-separated origins allowed to call from browsers ("*" = any). Default none. */
  corsOrigins: string[];
  /**
   * Subscriptions over WebSocket (graphql-ws) on /graphql: POLYHEAD_WS_MAX_CONNECTIONS, default 1000, open
   * connections per server process (more are refused with HTTP 503); POLYHEAD_WS_MAX_SUBSCRIPTIONS, default 20,
   * subscriptions at once on one connection.
   */
  subscriptions: { maxConnections: number; maxPerConnection: number };
  /**
   * POLYHEAD_APQ_CACHE_BYTES, default 8388608 (8 MiB): the automatic persisted queries' cache (query texts by
   * sha256, least recently used evicted first); 0 turns automatic persisted queries off.
   */
  persistedQueryCacheBytes: number;
  /** POLYHEAD_BUNDLE_ROOTS: colon-separated folders importBundle may read below. Default <bundleDir>:./bundles. */
  bundleRoots: string[];
  /**
   * POLYHEAD_WORKERS, default 1: server processes sharing the port (node:cluster), for when one event loop
   * cannot keep the device busy (GPU). More than 1 needs DATABASE_URL: embedded PGlite is one process's.
   */
  workers: number;
  /** DATABASE_URL (postgres://...); absent = embedded PGlite in dataDir. */
  databaseUrl?: string;
  /** POLYHEAD_API_KEY: bearer token for every mutation; absent = mutations are refused. */
  apiKey?: string;
  /** POLYHEAD_DEFAULT_MODEL, default "default": the model used when a query names none. */
  defaultModel: string;
  /** POLYHEAD_LOG (info | silent), default info. */
  logLevel: 'info' | 'silent';
  /** POLYHEAD_SHUTDOWN_TIMEOUT_MS, default 10000: how long SIGTERM waits for in-flight requests. */
  shutdownTimeoutMs: number;
  /**
   * POLYHEAD_SHUTDOWN_DELAY_MS, default 0: on SIGTERM, how long the server keeps serving while /readyz already says
   * "draining" and every answer closes its connection, before it stops taking requests. Behind a load balancer
   * that polls readiness (scripts/cluster.sh's nginx, a Kubernetes Service) this lets it stop sending here first,
   * so that no request meets a closing connection; a rolling restart then loses none.
   */
  shutdownDelayMs: number;
  /** NODE_ENV=development shows error details to clients; otherwise unexpected errors are masked. */
  development: boolean;
  /** OpenTelemetry traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; absent = no tracing (observability/tracing-config.ts). */
  tracing?: TracingConfig;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const dataDir = resolve(env.POLYHEAD_DATA_DIR ?? '.polyhead');
  const defaultModel = env.POLYHEAD_DEFAULT_MODEL ?? 'default';
  const bundleDir = resolve(env.POLYHEAD_BUNDLE_DIR ?? join(dataDir, 'bundles'));
  const workers = Math.max(1, integer(env, 'POLYHEAD_WORKERS', 1));
  // Several server processes share the cores: each gets one replica and its share of the threads.
  const ortReplicas = Math.max(1, integer(env, 'POLYHEAD_ORT_REPLICAS', workers === 1 && availableParallelism() >= 2 ? 2 : 1));
  return {
    port: integer(env, 'PORT', 4000),
    workers,
    host: env.HOST ?? '0.0.0.0',
    dataDir,
    bundleDir,
    cacheDir: resolve(env.POLYHEAD_CACHE_DIR ?? join(dataDir, 'cache')),
    models: (env.POLYHEAD_MODELS ?? defaultModel).split(',').map((name) => name.trim()).filter(Boolean),
    device: oneOf(env, 'POLYHEAD_DEVICE', ['auto', 'cpu', 'cuda'] as const, 'auto'),
    precision: oneOf(env, 'POLYHEAD_PRECISION', ['auto', 'fp32', 'fp16', 'q8'] as const, 'auto'),
    cuda: {
      maxBatchSize: integer(env, 'POLYHEAD_CUDA_MAX_BATCH_SIZE', 1024),
      maxBatchTokens: integer(env, 'POLYHEAD_CUDA_MAX_BATCH_TOKENS', 32_768),
      maxQueueTexts: integer(env, 'POLYHEAD_CUDA_MAX_QUEUE_TEXTS', 65_536),
      maxQueueTokens: integer(env, 'POLYHEAD_CUDA_MAX_QUEUE_TOKENS', 2_097_152),
      concurrentBatches: integer(env, 'POLYHEAD_CUDA_CONCURRENT_BATCHES', 2),
      batchOverheadTokens: integer(env, 'POLYHEAD_CUDA_BATCH_OVERHEAD_TOKENS', 4096),
    },
    ortThreads: integer(env, 'POLYHEAD_ORT_THREADS', 0),
    fineTuneThreads: Math.max(1, integer(env, 'POLYHEAD_FINE_TUNE_THREADS', 1)),
    jobs: { staleMs: Math.max(600, integer(env, 'POLYHEAD_JOB_STALE_MS', 30_000)), attempts: Math.max(1, integer(env, 'POLYHEAD_JOB_ATTEMPTS', 2)) },
    ortReplicas,
    ortOptimization: oneOf(env, 'POLYHEAD_ORT_OPTIMIZATION', ['disabled', 'basic', 'extended', 'all'] as const, 'all'),
    maxBatchSize: integer(env, 'POLYHEAD_MAX_BATCH_SIZE', 64),
    maxBatchTokens: integer(env, 'POLYHEAD_MAX_BATCH_TOKENS', 8192),
    maxWaitMs: integer(env, 'POLYHEAD_MAX_WAIT_MS', 0),
    batchOverheadTokens: integer(env, 'POLYHEAD_BATCH_OVERHEAD_TOKENS', 12),
    concurrentBatches: integer(env, 'POLYHEAD_CONCURRENT_BATCHES', ortReplicas),
    maxQueueTexts: integer(env, 'POLYHEAD_MAX_QUEUE_TEXTS', 4096),
    maxQueueTokens: integer(env, 'POLYHEAD_MAX_QUEUE_TOKENS', 262_144),
    requestTimeoutMs: integer(env, 'POLYHEAD_REQUEST_TIMEOUT_MS', 30_000),
    maxTexts: integer(env, 'POLYHEAD_MAX_TEXTS', 256),
    maxTextChars: integer(env, 'POLYHEAD_MAX_TEXT_CHARS', 100_000),
    maxBodyBytes: integer(env, 'POLYHEAD_MAX_BODY_BYTES', 4 * 1024 * 1024),
    generation: {
      maxNewTokens: Math.max(1, integer(env, 'POLYHEAD_MAX_NEW_TOKENS', 256)),
      maxBeams: Math.max(1, integer(env, 'POLYHEAD_MAX_BEAMS', 8)),
      maxActiveRows: Math.max(1, integer(env, 'POLYHEAD_GENERATION_MAX_ROWS', 64)),
      tokenBudget: Math.max(1, integer(env, 'POLYHEAD_GENERATION_TOKEN_BUDGET', 65_536)),
      maxQueue: Math.max(1, integer(env, 'POLYHEAD_GENERATION_MAX_QUEUE', 1024)),
      continuous: env.POLYHEAD_CONTINUOUS_BATCHING !== 'false',
    },
    refusedBodyLinger: { maxBytes: integer(env, 'POLYHEAD_LINGER_BYTES', 16 * 1024 * 1024), maxMs: integer(env, 'POLYHEAD_LINGER_MS', 5000) },
    queryLimits: {
      maxDepth: integer(env, 'POLYHEAD_MAX_QUERY_DEPTH', defaultQueryLimits.maxDepth),
      maxAliases: integer(env, 'POLYHEAD_MAX_ALIASES', defaultQueryLimits.maxAliases),
      maxFields: integer(env, 'POLYHEAD_MAX_FIELDS', defaultQueryLimits.maxFields),
      maxCost: integer(env, 'POLYHEAD_MAX_QUERY_COST', defaultQueryLimits.maxCost),
    },
    requireReadKey: env.POLYHEAD_REQUIRE_READ_KEY === 'true',
    introspection: env.POLYHEAD_INTROSPECTION !== 'false',
    graphiql: env.POLYHEAD_GRAPHIQL !== 'false',
    corsOrigins: (env.POLYHEAD_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    subscriptions: {
      maxConnections: integer(env, 'POLYHEAD_WS_MAX_CONNECTIONS', 1000),
      maxPerConnection: integer(env, 'POLYHEAD_WS_MAX_SUBSCRIPTIONS', 20),
    },
    persistedQueryCacheBytes: integer(env, 'POLYHEAD_APQ_CACHE_BYTES', 8 * 1024 * 1024),
    bundleRoots: (env.POLYHEAD_BUNDLE_ROOTS ?? `${bundleDir}:bundles`).split(':').filter(Boolean).map((root) => resolve(root)),
    databaseUrl: env.DATABASE_URL || undefined,
    apiKey: env.POLYHEAD_API_KEY || undefined,
    defaultModel,
    logLevel: env.POLYHEAD_LOG === 'silent' ? 'silent' : 'info',
    shutdownTimeoutMs: integer(env, 'POLYHEAD_SHUTDOWN_TIMEOUT_MS', 10_000),
    shutdownDelayMs: integer(env, 'POLYHEAD_SHUTDOWN_DELAY_MS', 0),
    development: env.NODE_ENV === 'development',
    tracing: readTracingConfig(env),
  };
}

export function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}
