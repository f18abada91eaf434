// The HTTP surface: POST/GET /graphql (Apollo), GraphiQL on GET /graphql from a browser, health probes.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Server } from 'node:http';
import express, { type Request } from 'express';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLSchema } from 'graphql';
import { formatError } from '../errors.js';
import type { RequestContext, ServerState } from '../resolvers/context.js';
import { createRegistryLoaders } from '../registry/registry.loaders.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { InferenceService } from '../serving/inference.service.js';
import type { ModelManager } from '../serving/model-manager.js';
import { graphiqlPage } from './graphiql.js';
import { observabilityPlugin } from './observability.plugin.js';
import type { PolyheadMetrics } from './metrics.js';

export interface AppOptions {
  schema: GraphQLSchema;
  httpServer: Server;
  registry: RegistryService;
  inference: InferenceService;
  models: ModelManager;
  metrics: PolyheadMetrics;
  state: ServerState;
  apiKey?: string;
  development: boolean;
  /** Answers /readyz: each check true when fine, else a short reason. */
  readiness: () => Promise<Record<string, true | string>>;
}

export async function createApp(options: AppOptions) {
  const apollo = new ApolloServer<RequestContext>({
    schema: options.schema,
    formatError: formatError(options.development),
    includeStacktraceInErrorResponses: options.development,
    // main.ts owns signals: it drains, closes the database and exits 0 (Apollo's handler would re-kill).
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: options.httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      observabilityPlugin(options.metrics),
    ],
  });
  await apollo.start();

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
    // A browser asking for a page gets GraphiQL; GET requests carrying a query go on to Apollo.
    if (req.query.query === undefined && req.accepts(['application/json', 'text/html']) === 'text/html') {
      res.type('html').send(graphiqlPage(req.originalUrl.split('?')[0]!));
    } else next();
  });
  const isAuthenticated = apiKeyMatcher(options.apiKey);
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req, res }): Promise<RequestContext> => {
        // A client that goes away stops counting: its texts still waiting leave the queue.
        const disconnected = new AbortController();
        res.on('close', () => {
          if (!res.writableFinished) disconnected.abort(new Error('client disconnected'));
        });
        const timing = { inferenceMs: 0 };
        return {
          registry: options.registry,
          loaders: createRegistryLoaders(options.registry.prisma),
          server: options.state,
          authenticated: isAuthenticated(req),
          inference: options.inference,
          inferenceLoader: options.inference.createLoader(disconnected.signal, timing),
          models: options.models,
          timing,
        };
      },
    }),
  );
  return { app, apollo };
}

/** Compares the bearer token in constant time (hashing first makes the lengths equal). */
function apiKeyMatcher(apiKey: string | undefined): (req: Request) => boolean {
  if (!apiKey) return () => false;
  const expected = createHash('sha256').update(apiKey).digest();
  return (req) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) return false;
    return timingSafeEqual(createHash('sha256').update(match[1]!.trim()).digest(), expected);
  };
}
