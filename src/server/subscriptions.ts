/*
 * GraphQL subscriptions over WebSocket (graphql-ws, the graphql-transport-ws protocol) on the HTTP server's
 * own port and path. The API key comes in the connection_init payload ({ authorization: "Bearer <key>" }, as
 * the HTTP header would) and is checked once per connection with HTTP's rules; every subscription is checked
 * against the same query limits as HTTP requests. The socket carries subscriptions only: queries and mutations
 * keep one path (HTTP, through Apollo's plugins: metrics, tracing, limits).
 *
 * No cross-site protection is needed here as it is for HTTP GET: a browser sends no credentials of ours with
 * a WebSocket (the key is in a message the page itself must write), and subscriptions change nothing.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, getOperationAST, Kind, parse, validate, type DocumentNode, type FragmentDefinitionNode, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { ApolloServerPlugin } from '@apollo/server';
import { anonymous, hasScope, type Principal } from '../auth/authenticator.js';
import { PolyheadError } from '../errors.js';
import type { RequestContext } from '../resolvers/context.js';
import { checkOperation, type QueryLimits } from './query-limits.js';

export interface SubscriptionLimits {
  /** Open connections per server process; more are refused at the upgrade with HTTP 503. */
  maxConnections: number;
  /** Subscriptions at once on one connection; one more is answered with an error, the others go on. */
  maxPerConnection: number;
}

export interface SubscriptionServerOptions {
  httpServer: Server;
  schema: GraphQLSchema;
  /** The path upgrades are accepted on (the GraphQL endpoint's). */
  path: string;
  authenticate: (authorization: string | undefined) => Promise<Principal>;
  requireReadKey: boolean;
  limits: SubscriptionLimits;
  queryLimits: QueryLimits;
  /** Largest message a client may send. */
  maxMessageBytes: number;
  /** The context resolvers get, for a connection's principal. */
  context: (principal: Principal) => RequestContext;
  /** Apollo's formatError: the same codes and masking as HTTP answers. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
}

export interface SubscriptionServer {
  /** Open WebSocket connections. */
  connections(): number;
  /** Closes every connection (1001, clients reconnect elsewhere); waits for them up to timeoutMs, then cuts the rest. */
  close(timeoutMs: number): Promise<void>;
}

/** Close codes of graphql-transport-ws (graphql-ws's CloseCode) used here. */
const closeCodes = { badRequest: 4400, unauthorized: 4401, forbidden: 4403, goingAway: 1001 };

export function serveSubscriptions(options: SubscriptionServerOptions): SubscriptionServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes });
  const principals = new WeakMap<object, Principal>();
  let closing = false;

  useServer<Record<string, unknown> | undefined>(
    {
      schema: options.schema,
      async onConnect(ctx) {
        const authorization = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        if (authorization !== undefined && typeof authorization !== 'string') {
          return refuse(ctx.extra.socket, closeCodes.badRequest, 'authorization must be a string: "Bearer <key>"');
        }
        const principal = await options.authenticate(authorization);
        if (options.requireReadKey && !hasScope(principal, 'read')) {
          if (principal.scopes.size > 0) return refuse(ctx.extra.socket, closeCodes.forbidden, 'this API key lacks the "read" scope');
          return refuse(
            ctx.extra.socket,
            closeCodes.unauthorized,
            authorization ? 'the API key was not accepted' : 'this server needs an API key: send { authorization: "Bearer <key>" } in connection_init',
          );
        }
        principals.set(ctx, principal);
        return true;
      },
      onSubscribe(ctx, _id, payload) {
        // The subscription being started already counts.
        const active = Object.keys(ctx.subscriptions).length;
        if (active > options.limits.maxPerConnection) {
          return [
            typedError(
              new PolyheadError('BAD_USER_INPUT', `${active} subscriptions at once on this connection: over the limit of ${options.limits.maxPerConnection} (POLYHEAD_WS_MAX_SUBSCRIPTIONS)`, {
                limit: options.limits.maxPerConnection,
                value: active,
              }),
            ),
          ];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [withCode(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')];
        }
        const invalid = validate(options.schema, document);
        if (invalid.length) return invalid.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return [withCode(new GraphQLError('name the operation to run (operationName)'), 'BAD_USER_INPUT')];
        if (operation.operation !== 'subscription') {
          return [typedError(new PolyheadError('BAD_USER_INPUT', `send ${operation.operation === 'query' ? 'queries' : 'mutations'} over HTTP (POST /graphql): this WebSocket carries subscriptions`))];
        }
        const fragments: Record<string, FragmentDefinitionNode> = {};
        for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
        try {
          checkOperation(options.schema, operation, fragments, payload.variables ?? {}, options.queryLimits);
        } catch (error) {
          if (error instanceof PolyheadError) return [typedError(error)];
          throw error;
        }
        return {
          schema: options.schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: options.context(principals.get(ctx) ?? anonymous),
        };
      },
      onNext(_ctx, _id, _payload, _args, result) {
        if (!result.errors?.length) return;
        return { ...result, errors: result.errors.map((error) => options.formatError(error.toJSON(), error)) };
      },
      onError(_ctx, _id, _payload, errors) {
        return errors.map((error) => options.formatError(error.toJSON(), error));
      },
    },
    wss,
  );

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== options.path) return refuseUpgrade(socket, 404, 'NOT_FOUND', `no WebSocket endpoint at ${path}; subscriptions are at ${options.path}`);
    if (closing) return refuseUpgrade(socket, 503, 'SHUTTING_DOWN', 'the server is shutting down');
    if (wss.clients.size >= options.limits.maxConnections) {
      return refuseUpgrade(socket, 503, 'OVERLOADED', `too many WebSocket connections (${options.limits.maxConnections}, POLYHEAD_WS_MAX_CONNECTIONS)`, { 'retry-after': '5' });
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  options.httpServer.on('upgrade', onUpgrade);

  return {
    connections: () => wss.clients.size,
    async close(timeoutMs) {
      closing = true;
      const open = [...wss.clients];
      for (const client of open) client.close(closeCodes.goingAway, 'the server is shutting down');
      // A client that never answers the close frame would keep the HTTP server's close waiting (ws waits 30 s).
      await Promise.race([
        Promise.all(open.map((client) => (client.readyState === client.CLOSED ? undefined : new Promise((resolve) => client.once('close', resolve))))),
        new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
      for (const client of wss.clients) client.terminate();
      options.httpServer.off('upgrade', onUpgrade);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Drains the subscriptions when Apollo stops (the HTTP server's own drain waits for upgraded sockets too). */
export function subscriptionDrainPlugin(subscriptions: () => SubscriptionServer, timeoutMs: number): ApolloServerPlugin<RequestContext> {
  return {
    async serverWillStart() {
      return {
        drainServer: () => subscriptions().close(timeoutMs),
      };
    },
  };
}

/** Apollo would run a subscription sent over HTTP as a query whose fields have no event: refuse it clearly. */
export function subscriptionsOverHttpRefused(path: string): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation !== 'subscription') return;
          const error = typedError(new PolyheadError('BAD_USER_INPUT', `subscriptions run over WebSocket (graphql-ws, protocol graphql-transport-ws) at ${path}, not over HTTP`));
          (error.extensions as Record<string, unknown>).http = { status: 400 };
          throw error;
        },
      };
    },
  };
}

/** Closes the connection with a code and reason the client sees; graphql-ws's own close after `false` is then a no-op. */
function refuse(socket: WebSocket, code: number, reason: string): false {
  socket.close(code, reason);
  return false;
}

/** An upgrade refused with a plain HTTP answer, GraphQL-shaped as the endpoint's other refusals. */
function refuseUpgrade(socket: Duplex, status: 404 | 503, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  const head = [`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close'];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

function typedError(error: PolyheadError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { code: error.code, ...error.details }, originalError: error });
}

/** GraphQL's own parse and validation errors, with the codes Apollo gives them over HTTP. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { ...error.extensions, code } });
}
