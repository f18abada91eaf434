// The HTTP surface: POST/GET /graphql (Apollo, on plain node:http: graphql-http.ts), OpenAI's /v1 embeddings API
// (openai/, also on plain node:http), GraphiQL on GET /graphql from a browser, health probes and metrics (express).
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import express from 'express';
import cors from 'cors';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLSchema } from 'graphql';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import { formatError } from '../errors.js';
import type { RequestContext, ServerState } from '../resolvers/context.js';
import { createRegistryLoaders } from '../registry/registry.loaders.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { ApiKeyService } from '../auth/api-keys.js';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import type { InferenceService } from '../serving/inference.service.js';
import type { ModelManager } from '../serving/model-manager.js';
import type { DesiredState } from '../serving/desired-state.js';
import type { TrainingJob, TrainingJobs } from '../serving/training-jobs.js';
import type { FineTuneJobs } from '../serving/fine-tune-jobs.js';
import { EvaluationService } from '../evaluation/evaluation.service.js';
import { graphiqlPage } from './graphiql.js';
import { graphqlHttpHandler, sendError } from './graphql-http.js';
import { observabilityPlugin } from './observability.plugin.js';
import { guardPlugin } from './guard.plugin.js';
import { serveSubscriptions, subscriptionDrainPlugin, subscriptionsOverHttpRefused } from './subscriptions.js';
import { tracingPlugin } from './tracing.plugin.js';
import type { Tracing } from '../observability/tracing.js';
import { isOpenAiPath, openAiHandler } from './openai/openai.handler.js';
import type { ServerConfig } from '../config.js';
import type { PolyheadMetrics } from './metrics.js';

export interface AppOptions {
  schema: GraphQLSchema;
  httpServer: Server;
  registry: RegistryService;
  inference: InferenceService;
  models: ModelManager;
  desiredState: DesiredState;
  training: TrainingJobs;
  /** A training job's states until it ends (trainingJobUpdates). */
  jobUpdates: (id: string) => AsyncIterable<TrainingJob>;
  fineTuning: FineTuneJobs;
  metrics: PolyheadMetrics;
  state: ServerState;
  authenticator: Authenticator;
  apiKeys: ApiKeyService;
  config: Pick<ServerConfig, 'development' | 'maxBodyBytes' | 'refusedBodyLinger' | 'queryLimits' | 'requireReadKey' | 'introspection' | 'graphiql' | 'corsOrigins' | 'shutdownTimeoutMs' | 'subscriptions' | 'persistedQueryCacheBytes'>;
  /** Answers /readyz: each check true when fine, else a short reason. */
  readiness: () => Promise<Record<string, true | string>>;
  /** True once shutdown has begun: every answer then closes its connection, so a proxy's pool lets go of this server. */
  isDraining?: () => boolean;
  /** OpenTelemetry spans for every request; absent = tracing off, and no tracing work at all. */
  tracing?: Tracing;
}

export async function createApp(options: AppOptions) {
  const apollo = new ApolloServer<RequestContext>({
    schema: options.schema,
    formatError: formatError(options.config.development),
    includeStacktraceInErrorResponses: options.config.development,
    introspection: options.config.introspection,
    csrfPrevention: true,
    // Automatic persisted queries (GET /graphql?extensions={"persistedQuery":...}) in a cache of their own, bounded
    // in bytes: query texts sent by clients must not grow the process without limit.
    persistedQueries: options.config.persistedQueryCacheBytes > 0 ? { cache: new InMemoryLRUCache({ maxSize: options.config.persistedQueryCacheBytes }) } : false,
    // main.ts owns signals: it drains, closes the database and exits 0 (Apollo's handler would re-kill).
    stopOnTerminationSignals: false,
    plugins: [
      // Apollo's drain has its own 10 s cut-off; ours is POLYHEAD_SHUTDOWN_TIMEOUT_MS.
      ApolloServerPluginDrainHttpServer({ httpServer: options.httpServer, stopGracePeriodMillis: options.config.shutdownTimeoutMs }),
      ApolloServerPluginLandingPageDisabled(),
      // Apollo installs its cache-control plugin by default; it hooks every resolved field (hundreds in a
      // 64-text answer) to compute HTTP cache hints that inference answers never carry.
      ApolloServerPluginCacheControlDisabled(),
      observabilityPlugin(options.metrics),
      guardPlugin(options.schema, options.config.queryLimits, options.config.requireReadKey),
      subscriptionsOverHttpRefused('/graphql'),
      // `subscriptions` is made below, once the services it hands resolvers exist; the drain runs at stop().
      subscriptionDrainPlugin(() => subscriptions, options.config.shutdownTimeoutMs),
      ...(options.tracing ? [tracingPlugin()] : []),
    ],
  });
  await apollo.start();
  const evaluation = new EvaluationService({ engine: options.inference.engine, registry: options.registry });

  // One request's context, for HTTP and WebSocket alike: the principal, the signal that says the client went
  // away (its texts still waiting then leave the queue) and, when tracing is on, the request's trace.
  const contextFor = (principal: Principal, signal: AbortSignal, trace?: RequestContext['trace']): RequestContext => {
    const timing = { inferenceMs: 0 };
    return {
      registry: options.registry,
      loaders: createRegistryLoaders(options.registry.prisma),
      server: options.state,
      principal,
      apiKeys: options.apiKeys,
      authenticator: options.authenticator,
      inference: options.inference,
      inferenceLoader: options.inference.createLoader(signal, timing, trace),
      translationLoader: options.inference.createTranslationLoader(signal, timing),
      models: options.models,
      desiredState: options.desiredState,
      training: options.training,
      fineTuning: options.fineTuning,
      evaluation,
      timing,
      trace,
      jobUpdates: options.jobUpdates,
    };
  };

  const graphql = graphqlHttpHandler(apollo, {
    maxBodyBytes: options.config.maxBodyBytes,
    refusedBodyLinger: options.config.refusedBodyLinger,
    onRefusedBody: (status, outcome) => options.metrics.refusedBodies.inc({ status: String(status), outcome }),
    context: async (req, res): Promise<RequestContext> => {
      const disconnected = new AbortController();
      setMaxListeners(0, disconnected.signal); // one listener per queued text of this request
      res.on('close', () => {
        if (!res.writableFinished) disconnected.abort(new Error('client disconnected'));
      });
      return contextFor(await options.authenticator.authenticate(req.headers.authorization), disconnected.signal, options.tracing?.traceOf(req));
    },
  });
  // Subscriptions (WebSocket, same port and path) run with the connection's principal; no client-gone signal:
  // nothing they run queues inference.
  const subscriptionContext = (principal: Principal): RequestContext => contextFor(principal, new AbortController().signal);
  const subscriptions = serveSubscriptions({
    httpServer: options.httpServer,
    schema: options.schema,
    path: '/graphql',
    authenticate: (authorization) => options.authenticator.authenticate(authorization),
    requireReadKey: options.config.requireReadKey,
    limits: options.config.subscriptions,
    queryLimits: options.config.queryLimits,
    maxMessageBytes: options.config.maxBodyBytes,
    context: subscriptionContext,
    formatError: formatError(options.config.development),
  });
  const { corsOrigins } = options.config;
  const allowCors = corsOrigins.length ? cors({ origin: corsOrigins.includes('*') ? true : corsOrigins }) : undefined;
  // CORS preflights are answered by the cors middleware itself.
  const endpoint = (req: IncomingMessage, res: ServerResponse) => (allowCors ? allowCors(req, res, () => graphql(req, res)) : graphql(req, res));
  // OpenAI's embeddings API (/v1), on the same engine, limits and keys.
  const openai = openAiHandler({
    engine: options.inference.engine,
    limits: options.inference.limits,
    authenticator: options.authenticator,
    requireReadKey: options.config.requireReadKey,
    maxBodyBytes: options.config.maxBodyBytes,
    refusedBodyLinger: options.config.refusedBodyLinger,
    isClosing: () => !options.httpServer.listening,
    createdAt: Math.floor(options.state.startedAt / 1000),
    traceOf: options.tracing && ((req) => options.tracing!.traceOf(req)),
  });
  const openAiEndpoint = (req: IncomingMessage, res: ServerResponse) => (allowCors ? allowCors(req, res, () => openai(req, res)) : openai(req, res));

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await options.readiness();
    const ready = Object.values(checks).every((check) => check === true);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  app.get('/graphql', (req, res, next) => {
    // A browser asking for a page gets GraphiQL; GET requests carrying a query (or a persisted query's hash) go on to Apollo.
    if (req.query.query === undefined && req.query.extensions === undefined && req.accepts(['application/json', 'text/html']) === 'text/html') {
      if (options.config.graphiql) res.type('html').send(graphiqlPage(req.originalUrl.split('?')[0]!));
      else res.status(404).type('text').send('GraphiQL is switched off on this server (POLYHEAD_GRAPHIQL=false)');
    } else next();
  });
  app.all('/graphql', endpoint);
  app.use((error: Error, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(error);
    sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
  });

  // POST /graphql, the request every client sends, skips express's routing; express routes the rest (and
  // GET /graphql, OPTIONS, odd spellings of the path) to the same endpoint.
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (options.isDraining?.()) res.setHeader('connection', 'close');
    if (req.method === 'POST' && (req.url === '/graphql' || req.url?.startsWith('/graphql?'))) endpoint(req, res);
    else if (isOpenAiPath(req.url)) openAiEndpoint(req, res);
    else app(req, res);
  };
  return { handler: options.tracing ? options.tracing.traceHttp(handler) : handler, apollo };
}
