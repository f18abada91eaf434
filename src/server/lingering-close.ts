/*
 * Answers a request whose body the endpoint stopped reading (over the size limit, or in an encoding or charset it
 * refuses) and then closes the connection as nginx's lingering close does.
 *
 * Closing a socket that still holds unread input makes the kernel answer with a reset, and a reset can erase the
 * answer from the client's buffers before its HTTP parser reads it (RFC 9112, section 9.6): the client then sees
 * EPIPE or ECONNRESET instead of the 413. So the answer is written whole (Content-Length, Connection: close) while
 * the response is kept open; the rest of the body is read and dropped chunk by chunk (nothing is kept, memory
 * stays flat) until the client has sent all of it or hangs up, or until the bound in bytes or in time is reached.
 * Only then does the response end and node close the socket: with a FIN when nothing is left unread.
 *
 * node:http has no lingering close of its own: after a `Connection: close` answer it ends the socket as soon as the
 * answer is written, whatever the client is still sending.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LingerLimits {
  /** How much more of the refused body is read and dropped before the connection is cut. */
  maxBytes: number;
  /** How long the client is given to take the answer and stop sending. */
  maxMs: number;
}

export type LingerOutcome = 'complete' | 'client-closed' | 'byte-limit' | 'time-limit';

/**
 * Writes `body` as the whole answer and closes the connection once the client has stopped sending (or a bound is
 * reached). `req` must not be piped anywhere; whatever it still delivers is dropped. Resolves with why it closed.
 */
export function answerAndLinger(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string | number>, body: string, limits: LingerLimits): Promise<LingerOutcome> {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('connection', 'close');
  if (req.complete || req.socket.destroyed) {
    res.end(body);
    return Promise.resolve(req.complete ? 'complete' : 'client-closed');
  }
  res.write(body);
  return new Promise((resolve) => {
    let dropped = 0;
    const finish = (outcome: LingerOutcome) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('close', onClose);
      // Past a bound, node closes a socket that still has input: the client had its answer and its time.
      res.end();
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > limits.maxBytes) finish('byte-limit');
    };
    const onEnd = () => finish('complete');
    const onClose = () => finish('client-closed');
    const timer = setTimeout(() => finish('time-limit'), limits.maxMs);
    req.on('data', onData).once('end', onEnd).once('close', onClose);
    req.resume();
  });
}
