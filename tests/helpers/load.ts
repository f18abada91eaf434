// Steady load for fault tests: N clients, each sending one request after another (a multi-task query by POST, as
// an app backend does) and recording every outcome with its time, so that a test can count what failed, when,
// and with what error.
import { Agent, request } from 'node:http';

export interface Outcome {
  /** When the answer (or the failure) came, ms since the load started. */
  at: number;
  /** When the request was sent, ms since the load started. */
  sentAt: number;
  ok: boolean;
  status: number;
  /** GraphQL extensions.code, or a transport error's name/code. */
  code?: string;
  message?: string;
}

export interface Load {
  readonly startedAt: number;
  readonly outcomes: Outcome[];
  /** ms since the load started. */
  now(): number;
  /** Stops sending and waits for the requests in flight. */
  stop(): Promise<Outcome[]>;
}

export interface LoadOptions {
  url: string;
  clients: number;
  query: string;
  variables?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** A request with no answer within this long counts as failed (code TIMEOUT). */
  timeoutMs?: number;
  /** Judges a 200 answer's data; a false makes the outcome a failure with code WRONG_ANSWER. */
  check?: (data: any) => boolean;
}

export function startLoad(options: LoadOptions): Load {
  // Its own connection pool, as each app backend has one; keep-alive like any HTTP client.
  const agent = new Agent({ keepAlive: true, maxSockets: options.clients });
  const startedAt = Date.now();
  const now = () => Date.now() - startedAt;
  const outcomes: Outcome[] = [];
  let stopping = false;
  const body = JSON.stringify({ query: options.query, variables: options.variables });

  const target = new URL(options.url);
  const post = () =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        target,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...options.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })));
      req.on('error', reject);
      req.end(body);
    });

  const one = async (): Promise<Outcome> => {
    const sentAt = now();
    try {
      const response = await post();
      let parsed: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> } | undefined;
      try {
        parsed = JSON.parse(response.text);
      } catch {
        return { at: now(), sentAt, ok: false, status: response.status, code: 'NOT_JSON', message: response.text.slice(0, 200) };
      }
      const error = parsed?.errors?.[0];
      if (response.status !== 200 || error) {
        return { at: now(), sentAt, ok: false, status: response.status, code: error?.extensions?.code ?? `HTTP_${response.status}`, message: error?.message };
      }
      if (options.check && !options.check(parsed?.data)) return { at: now(), sentAt, ok: false, status: 200, code: 'WRONG_ANSWER' };
      return { at: now(), sentAt, ok: true, status: 200 };
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      return { at: now(), sentAt, ok: false, status: 0, code: e.code ?? e.name, message: e.message };
    }
  };

  const clients = Array.from({ length: options.clients }, async () => {
    while (!stopping) outcomes.push(await one());
  });

  return {
    startedAt,
    outcomes,
    now,
    async stop() {
      stopping = true;
      await Promise.all(clients);
      agent.destroy();
      return outcomes;
    },
  };
}

/** Counts of a slice of outcomes: total, ok, failed, and failures by code. */
export function summarize(outcomes: Outcome[]) {
  const failed = outcomes.filter((o) => !o.ok);
  const byCode: Record<string, number> = {};
  for (const o of failed) byCode[o.code ?? 'unknown'] = (byCode[o.code ?? 'unknown'] ?? 0) + 1;
  return { requests: outcomes.length, ok: outcomes.length - failed.length, failed: failed.length, byCode };
}
