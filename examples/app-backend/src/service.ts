// The app backend's HTTP API: POST /review and GET /models, each answered from one typed Polyhead request.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isTaskKind, knownTaskKinds, listModels } from './models.js';
import { createPolyheadClient, PolyheadRequestError, type PolyheadClientOptions } from './polyhead-client.js';
import { summarizeReviews } from './reviews.js';

export interface AppBackendOptions {
  polyhead: PolyheadClientOptions;
  /** Default 3000; 0 picks a free port. */
  port?: number;
  host?: string;
}

export interface RunningAppBackend {
  url: string;
  close(): Promise<void>;
}

const maxBodyBytes = 1024 * 1024;

/** A refusal of this service's own caller: HTTP status, a code and a message. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startAppBackend(options: AppBackendOptions): Promise<RunningAppBackend> {
  const polyhead = createPolyheadClient(options.polyhead);

  async function route(req: IncomingMessage): Promise<unknown> {
    const url = new URL(req.url ?? '/', 'http://app-backend');
    if (url.pathname === '/review' && req.method === 'POST') {
      const texts = (await readJson(req) as { texts?: unknown } | null)?.texts;
      if (!Array.isArray(texts) || texts.length === 0 || !texts.every((text) => typeof text === 'string')) {
        throw new HttpError(400, 'BAD_REQUEST', 'send {"texts": ["a review", ...]}: a non-empty list of strings');
      }
      return { reviews: await summarizeReviews(polyhead, texts) };
    }
    if (url.pathname === '/models' && req.method === 'GET') {
      const task = url.searchParams.get('task') ?? undefined;
      if (task !== undefined && !isTaskKind(task)) throw new HttpError(400, 'BAD_REQUEST', `task must be one of ${knownTaskKinds.join(', ')}`);
      const first = url.searchParams.has('first') ? Number(url.searchParams.get('first')) : undefined;
      if (first !== undefined && !Number.isInteger(first)) throw new HttpError(400, 'BAD_REQUEST', 'first must be an integer');
      return listModels(polyhead, { first, task });
    }
    throw new HttpError(404, 'NOT_FOUND', 'POST /review or GET /models');
  }

  const server = createServer((req, res) => {
    route(req).then(
      (body) => send(res, 200, body),
      (error: unknown) => sendError(res, error),
    );
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 3000, options.host ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () => new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new HttpError(413, 'BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'the body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

// Polyhead's refusals of the caller's input are the caller's (400); a busy Polyhead is 503 with its Retry-After;
// anything else (a wrong key, Polyhead down) is this service's own failure towards its caller (502).
function sendError(res: ServerResponse, error: unknown) {
  if (error instanceof HttpError) return send(res, error.status, { error: { code: error.code, message: error.message } });
  if (error instanceof PolyheadRequestError) {
    const body = { error: { code: error.code, message: error.message } };
    if (error.code === 'BAD_USER_INPUT') return send(res, 400, body);
    if (error.code === 'OVERLOADED') return send(res, 503, body, error.retryAfter ? { 'retry-after': String(Math.ceil(error.retryAfter)) } : {});
    return send(res, 502, body);
  }
  console.error(error);
  send(res, 500, { error: { code: 'INTERNAL', message: 'unexpected error' } });
}
