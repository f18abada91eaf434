// A TCP proxy in front of a real PostgreSQL that records every statement its clients run, whichever driver sends
// it (Prisma, the pg pool, a LISTEN connection, a job queue): the server side of "how many SQL statements did
// these requests cost". Bytes pass through unchanged; a copy of what clients send is read as the PostgreSQL
// frontend protocol (v3): a simple Query ('Q') runs its text, an Execute ('E') runs the statement its portal
// was bound to ('B') from a Parse ('P'). Written here because no library at hand exposes a driver-independent
// per-statement hook; the protocol's message framing is all that is needed.
import { createServer, connect, type Socket } from 'node:net';

export interface SqlStatement {
  /** Which client connection ran it (1, 2, ... in the order they connected). */
  connection: number;
  sql: string;
  at: number;
}

export interface SqlCountingProxy {
  /** The target URL with the proxy's host and port. */
  url: string;
  statements: SqlStatement[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

export async function startSqlCountingProxy(targetUrl: string): Promise<SqlCountingProxy> {
  const target = new URL(targetUrl);
  const statements: SqlStatement[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;

  const server = createServer((client) => {
    const connection = ++connections;
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {}); // a client or server going away: the other side is closed below
    }
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    upstream.on('data', (chunk) => client.write(chunk));

    const parsed = new Map<string, string>(); // prepared statement name -> SQL ('' = the unnamed one)
    const portals = new Map<string, string>(); // portal name -> prepared statement name
    let pending = Buffer.alloc(0);
    let started = false; // before the startup message, messages carry no type byte
    const cString = (buffer: Buffer, from: number) => {
      const end = buffer.indexOf(0, from);
      return { text: buffer.toString('utf8', from, end), next: end + 1 };
    };
    client.on('data', (chunk) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 8) return;
          const length = pending.readInt32BE(0);
          if (pending.length < length) return;
          const code = pending.readInt32BE(4);
          // An SSL or GSS request is answered with one byte and followed by the real startup message.
          if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) started = true;
          pending = pending.subarray(length);
          continue;
        }
        if (pending.length < 5) return;
        const type = String.fromCharCode(pending[0]!);
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) return;
        const body = pending.subarray(5, 1 + length);
        pending = pending.subarray(1 + length);
        if (type === 'Q') statements.push({ connection, sql: cString(body, 0).text, at: Date.now() });
        else if (type === 'P') {
          const name = cString(body, 0);
          parsed.set(name.text, cString(body, name.next).text);
        } else if (type === 'B') {
          const portal = cString(body, 0);
          portals.set(portal.text, cString(body, portal.next).text);
        } else if (type === 'E') {
          const portal = cString(body, 0).text;
          statements.push({ connection, sql: parsed.get(portals.get(portal) ?? '') ?? '(unknown statement)', at: Date.now() });
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    statements,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
