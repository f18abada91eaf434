/*
 * OpenAI's embeddings API beside GraphQL, for the clients and frameworks that speak it: POST /v1/embeddings,
 * GET /v1/models and GET /v1/models/{id}. The same engine queue, input limits and API keys as GraphQL; errors in
 * OpenAI's shape. On plain node:http like the GraphQL endpoint (graphql-http.ts), for the same reason: an
 * embeddings request is inference traffic, and express's stack costs node-thread time the backbone needs.
 */
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasScope, type Authenticator } from '../../auth/authenticator.js';
import type { Engine } from '../../engine/engine.js';
import type { InputLimits } from '../../serving/inference.service.js';
import { answerAndLinger, type LingerLimits } from '../lingering-close.js';
import type { InferTrace } from '../../engine/engine.js';
import { setHttpRoute } from '../../observability/http-route.js';
import { embedInputs } from './embed-inputs.js';
import { parseEmbeddingsRequest } from './embeddings.request.js';
import { embeddingModelIds } from './model-ids.js';
import { OpenAiError, invalidRequest, openAiErrorOf, openAiErrorResponse, sendOpenAiError } from './openai-error.js';
import { readJsonBody } from './read-json-body.js';

export interface OpenAiRoutesOptions {
  engine: Engine;
  limits: Pick<InputLimits, 'maxTexts' | 'maxTextChars'>;
  authenticator: Authenticator;
  /** POLYHEAD_REQUIRE_READ_KEY: every route needs a key with the read scope. */
  requireReadKey: boolean;
  maxBodyBytes: number;
  refusedBodyLinger: LingerLimits;
  /** True once the server has begun to shut down: new requests get 503. */
  isClosing: () => boolean;
  /** Unix seconds given as every model's `created` (when this server started: a load time is not kept). */
  createdAt: number;
  /** The request's trace when tracing is on: the engine's spans (queue wait, batch, heads) go under its HTTP span. */
  traceOf?: (req: IncomingMessage) => InferTrace | undefined;
}

/** True for the paths these routes own (everything below /v1). */
export function isOpenAiPath(url: string | undefined): boolean {
  const path = (url ?? '').split('?')[0]!;
  return path === '/v1' || path.startsWith('/v1/');
}

export function openAiHandler(options: OpenAiRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void route(options, req, res).catch((error: unknown) => {
      const failure = openAiErrorOf(error);
      if (res.headersSent) res.destroy();
      else if (!hasUnreadBody(req)) sendOpenAiError(res, failure);
      else {
        // The body was not read (refused before it, or over the size limit): answer, then drain and close.
        const { headers, body } = openAiErrorResponse(failure);
        void answerAndLinger(req, res, failure.status, headers, body, options.refusedBodyLinger);
      }
    });
  };
}

async function route(options: OpenAiRoutesOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (options.isClosing()) throw new OpenAiError(503, 'server_error', 'shutting_down', 'the server is shutting down: retry on another replica', null, 1000);
  const path = pathOf(req.url);
  const method = req.method ?? 'GET';
  if (path === '/v1/embeddings') {
    setHttpRoute(req, '/v1/embeddings');
    allow(method, 'POST');
    await authorize(options, req);
    return embeddings(options, req, res);
  }
  if (path === '/v1/models') {
    setHttpRoute(req, '/v1/models');
    allow(method, 'GET');
    await authorize(options, req);
    return sendJson(res, 200, { object: 'list', data: embeddingModelIds(options.engine).map((id) => modelObject(id, options.createdAt)) });
  }
  if (path.startsWith('/v1/models/')) {
    setHttpRoute(req, '/v1/models/{model}');
    allow(method, 'GET');
    await authorize(options, req);
    const id = path.slice('/v1/models/'.length);
    if (!embeddingModelIds(options.engine).includes(id)) throw new OpenAiError(404, 'invalid_request_error', 'model_not_found', `the model "${id}" does not exist or gives no embeddings on this server`, 'model');
    return sendJson(res, 200, modelObject(id, options.createdAt));
  }
  throw new OpenAiError(404, 'invalid_request_error', 'unknown_url', `unknown route ${method} ${path}: this server answers POST /v1/embeddings, GET /v1/models and GET /v1/models/{model}`);
}

async function embeddings(options: OpenAiRoutesOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = parseEmbeddingsRequest(await readJsonBody(req, options.maxBodyBytes));
  // A client that goes away stops counting: its inputs still waiting leave the queue.
  const disconnected = new AbortController();
  setMaxListeners(0, disconnected.signal);
  res.on('close', () => {
    if (!res.writableFinished) disconnected.abort(new Error('client disconnected'));
  });
  const { vectors, promptTokens } = await embedInputs(options.engine, options.limits, request, disconnected.signal, options.traceOf?.(req));
  sendJson(res, 200, {
    object: 'list',
    data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: request.encodingFormat === 'base64' ? base64Of(vector) : vector })),
    model: request.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

/** 401 without a valid key and 403 for a key without the read scope, only where reads need a key (as GraphQL queries). */
async function authorize(options: OpenAiRoutesOptions, req: IncomingMessage): Promise<void> {
  if (!options.requireReadKey) return;
  const authorization = req.headers.authorization;
  const principal = await options.authenticator.authenticate(authorization);
  if (hasScope(principal, 'read')) return;
  if (principal.scopes.size > 0) throw new OpenAiError(403, 'permission_error', 'insufficient_permissions', 'this API key lacks the "read" scope that this server needs for embeddings');
  throw new OpenAiError(
    401,
    'authentication_error',
    'invalid_api_key',
    authorization ? 'invalid API key: it is unknown, revoked or malformed' : 'this server needs an API key with the "read" scope: send "Authorization: Bearer <key>"',
  );
}

/** The path without query string or trailing slash, percent-decoded ("default%3Aembedding" is "default:embedding"). */
function pathOf(url: string | undefined): string {
  const raw = (url ?? '').split('?')[0]!.replace(/\/+$/, '');
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalidRequest(`the path "${raw}" is not valid percent-encoding`);
  }
}

function hasUnreadBody(req: IncomingMessage): boolean {
  const declared = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  return declared && !req.readableEnded;
}

function allow(method: string, allowed: string): void {
  if (method !== allowed) throw new OpenAiError(405, 'invalid_request_error', 'method_not_allowed', `${method} is not allowed here: use ${allowed}`);
}

function modelObject(id: string, created: number) {
  return { id, object: 'model', created, owned_by: 'polyhead' };
}

/** OpenAI's base64 encoding: the float32 values' bytes, little-endian (a Float32Array is in the platform's order: little-endian on x64 and arm64). */
function base64Of(vector: number[]): string {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString('base64');
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
