/*
 * The GraphQL endpoint on plain node:http: reads and parses the JSON body, hands the request to Apollo's
 * executeHTTPGraphQLRequest and writes its answer. This is the work every inference request does, so it
 * does no more than that: an express stack in front of it (router, body-parser, content negotiation, ETag)
 * cost about a sixth of the node thread's time per request at 64 clients on 2 cores, time the backbone
 * needs (README, bench/serve.ts). The other routes (health, metrics, GraphiQL) stay on express.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import contentType from 'content-type';
import getRawBody from 'raw-body';
import { answerAndLinger, type LingerLimits, type LingerOutcome } from './lingering-close.js';

export type GraphQLHttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface GraphQLHttpOptions<TContext extends BaseContext> {
  context: (req: IncomingMessage, res: ServerResponse) => Promise<TContext>;
  /** Largest accepted body, counted after any content-encoding is undone. */
  maxBodyBytes: number;
  /** How much more of a refused body is read and dropped, and for how long, so that the client reads its answer. */
  refusedBodyLinger: LingerLimits;
  /** Told how each refused body's connection ended (for metrics). */
  onRefusedBody?: (status: number, outcome: LingerOutcome) => void;
}

/** A body the endpoint refuses before Apollo sees it, answered as a GraphQL-shaped error. */
class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function graphqlHttpHandler<TContext extends BaseContext>(apollo: ApolloServer<TContext>, options: GraphQLHttpOptions<TContext>): GraphQLHttpHandler {
  apollo.assertStarted('graphqlHttpHandler()');
  return (req, res) => {
    void handle(apollo, options, req, res).catch((error: unknown) => {
      // Apollo answers every GraphQL error itself; this is a failure of the transport (e.g. the socket).
      if (!res.headersSent) sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      else res.destroy(error instanceof Error ? error : undefined);
    });
  };
}

async function handle<TContext extends BaseContext>(apollo: ApolloServer<TContext>, options: GraphQLHttpOptions<TContext>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: unknown;
  try {
    body = await readJsonBody(req, options.maxBodyBytes);
  } catch (error) {
    if (!(error instanceof BodyError)) throw error;
    // The connection closes after the answer, once the client has stopped sending the rest (bounded).
    const outcome = await answerAndLinger(req, res, error.status, { 'content-type': 'application/json; charset=utf-8' }, errorBody(error.code, error.message), options.refusedBodyLinger);
    options.onRefusedBody?.(error.status, outcome);
    return;
  }
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const response = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method!.toUpperCase(), headers, search: query < 0 ? '' : url.slice(query), body },
    context: () => options.context(req, res),
  });
  for (const [key, value] of response.headers) res.setHeader(key, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    res.setHeader('content-length', Buffer.byteLength(response.body.string));
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/**
 * The parsed JSON body of a request whose content type is JSON (application/json or any +json type), else
 * undefined: Apollo then answers GET requests from the query string and refuses other bodies itself.
 */
async function readJsonBody(req: IncomingMessage, maxBodyBytes: number): Promise<unknown> {
  const type = req.headers['content-type'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (!type || !hasBody) return undefined;
  let parsed: contentType.ParsedMediaType;
  try {
    parsed = contentType.parse(type);
  } catch {
    return undefined;
  }
  if (parsed.type !== 'application/json' && !parsed.type.endsWith('+json')) return undefined;
  const charset = (parsed.parameters.charset ?? 'utf-8').toLowerCase();
  if (charset !== 'utf-8' && charset !== 'utf8') throw new BodyError(415, 'BAD_REQUEST', `bad request: unsupported charset "${charset.toUpperCase()}" (JSON bodies are UTF-8)`);
  const decoder = decoderFor(req); // throws BodyError for an encoding it cannot undo
  let bytes: Buffer;
  try {
    bytes = await getRawBody(decoder ? req.pipe(decoder) : req, {
      // The declared length is checked against the body only when nothing has to be decompressed.
      length: req.headers['content-encoding'] ? undefined : req.headers['content-length'],
      limit: maxBodyBytes,
    });
  } catch (error) {
    if ((error as { type?: string }).type === 'entity.too.large') throw new BodyError(413, 'PAYLOAD_TOO_LARGE', `request body over ${maxBodyBytes} bytes (POLYHEAD_MAX_BODY_BYTES)`);
    // A short body, an aborted request, or one that is not what its content-encoding says.
    throw new BodyError(400, 'BAD_REQUEST', `bad request: ${(error as Error).message}`);
  } finally {
    // Whatever the decoder did not take is the caller's to drop: detach it, and free its native state.
    if (decoder) {
      req.unpipe(decoder);
      decoder.destroy();
    }
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (error) {
    throw new BodyError(400, 'BAD_REQUEST', `bad request: ${(error as Error).message}`);
  }
}

/** The decoder that undoes the body's content-encoding (as express.json did: gzip, deflate, br); none for identity. */
function decoderFor(req: IncomingMessage): Transform | undefined {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'identity') return undefined;
  const decoder = ({ gzip: createGunzip, 'x-gzip': createGunzip, deflate: createInflate, br: createBrotliDecompress } as Record<string, () => Transform>)[encoding];
  if (!decoder) throw new BodyError(415, 'BAD_REQUEST', `bad request: unsupported content encoding "${encoding}"`);
  const stream = decoder();
  req.once('aborted', () => stream.destroy(new Error('request aborted')));
  return stream;
}

/** A GraphQL-shaped error answer, for failures outside Apollo (the body, the transport, other routes). */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const text = errorBody(code, message);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ message, extensions: { code } }] });
}
