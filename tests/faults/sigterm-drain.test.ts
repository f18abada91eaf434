// SIGTERM on the built server: it stops taking new connections, lets the requests already in flight finish
// (every one answered 200, in full), and exits 0 within POLYHEAD_SHUTDOWN_TIMEOUT_MS; work that would take
// longer than the deadline is cut off and the process still exits 0 on time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { tempDir } from '../helpers/bundle-fixture.js';
import { sharedBundleDir } from '../helpers/server.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

const analyze = 'query($texts: [String!]!) { analyze(texts: $texts) { sentiment { label } entities { label } } }';

/** A POST on its own connection (no keep-alive pool), so each request's fate is its own. */
function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, json: JSON.parse(text) });
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

const texts = (request: number) =>
  Array.from({ length: 256 }, (_, i) => `Request ${request}, sentence ${i}: Maria Lopez from Acme Corp said the Berlin office was ${i % 2 ? 'wonderful' : 'a disappointment'} this spring.`);

async function queueDepth(url: string): Promise<number> {
  return (await post(url, { query: '{ server { queueDepth } }' })).json.data.server.queueDepth;
}

async function startServer(timeoutMs: number): Promise<ServerProcess> {
  return spawnServer({ POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_BUNDLE_DIR: sharedBundleDir, POLYHEAD_SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
}

test('SIGTERM drains in-flight requests, refuses new connections and exits 0 within the deadline', { timeout: 180_000 }, async (t) => {
  const deadlineMs = 30_000;
  const server = await startServer(deadlineMs);
  t.after(() => server.child.kill('SIGKILL'));
  const inFlight = Array.from({ length: 10 }, (_, i) => post(server.url, { query: analyze, variables: { texts: texts(i) } }));
  const waitUntil = Date.now() + 10_000;
  while ((await queueDepth(server.url)) === 0 && Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 20));

  const signalled = Date.now();
  const exited = server.stop('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const late = await post(server.url, { query: '{ server { version } }' }).then(
    (answer) => `answered ${answer.status}`,
    (error: NodeJS.ErrnoException) => error.code ?? error.message,
  );
  assert.match(late, /ECONNREFUSED|ECONNRESET|socket hang up/, 'a new connection after SIGTERM was served');

  const answers = await Promise.all(inFlight);
  const code = await exited;
  const tookMs = Date.now() - signalled;
  for (const answer of answers) {
    assert.equal(answer.status, 200);
    assert.equal(answer.json.errors, undefined, JSON.stringify(answer.json.errors));
    assert.equal(answer.json.data.analyze.length, 256);
  }
  assert.equal(code, 0, server.output());
  assert.ok(tookMs < deadlineMs, `drained in ${tookMs} ms, over the ${deadlineMs} ms deadline`);
  assert.match(server.output(), /stopped on SIGTERM/);
  console.log(`drain: ${answers.length} in-flight requests x 256 texts all answered 200; exit 0 ${tookMs} ms after SIGTERM`);
});

test('past POLYHEAD_SHUTDOWN_TIMEOUT_MS the remaining requests are cut off and the process still exits 0 on time', { timeout: 180_000 }, async (t) => {
  const deadlineMs = 1_000;
  const server = await startServer(deadlineMs);
  t.after(() => server.child.kill('SIGKILL'));
  // More work than a 2-core machine does in a second.
  const inFlight = Array.from({ length: 14 }, (_, i) =>
    post(server.url, { query: analyze, variables: { texts: texts(100 + i) } }).then(
      (answer) => (answer.status === 200 && !answer.json.errors ? 'answered' : `status ${answer.status}`),
      () => 'cut off',
    ),
  );
  const waitUntil = Date.now() + 10_000;
  while ((await queueDepth(server.url)) === 0 && Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 20));
  const signalled = Date.now();
  const code = await server.stop('SIGTERM');
  const tookMs = Date.now() - signalled;
  const outcomes = await Promise.all(inFlight);
  assert.equal(code, 0, server.output());
  assert.ok(tookMs < deadlineMs + 3_000, `exited ${tookMs} ms after SIGTERM with a ${deadlineMs} ms deadline`);
  assert.ok(outcomes.includes('cut off'), `nothing was cut off: ${outcomes.join(', ')}`);
  assert.deepEqual(outcomes.filter((o) => o !== 'answered' && o !== 'cut off'), [], 'a request got an error answer instead of finishing or being cut off');
  console.log(`deadline: exit 0 ${tookMs} ms after SIGTERM (deadline ${deadlineMs} ms); ${outcomes.filter((o) => o === 'answered').length} answered, ${outcomes.filter((o) => o === 'cut off').length} cut off`);
});

test('POLYHEAD_SHUTDOWN_DELAY_MS: after SIGTERM the server says "draining" on /readyz and keeps answering, each answer closing its connection, then stops', { timeout: 180_000 }, async (t) => {
  const delayMs = 2_000;
  const server = await spawnServer({ POLYHEAD_DATA_DIR: tempDir(), POLYHEAD_BUNDLE_DIR: sharedBundleDir, POLYHEAD_SHUTDOWN_DELAY_MS: String(delayMs) });
  t.after(() => server.child.kill('SIGKILL'));
  const origin = server.url.replace(/\/graphql$/, '');
  assert.equal((await fetch(`${origin}/readyz`)).status, 200);
  const signalled = Date.now();
  const exited = server.stop('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const readyz = await fetch(`${origin}/readyz`);
  assert.equal(readyz.status, 503);
  assert.equal(((await readyz.json()) as { checks: Record<string, unknown> }).checks.shutdown, 'draining');
  // Still served, on a new connection, and told to close it.
  const answer = await new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
    const body = JSON.stringify({ query: analyze, variables: { texts: ['Lame duck, still serving.'] } });
    const req = request(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).errors, undefined, answer.body);
  assert.equal(answer.connection, 'close');
  assert.equal(await exited, 0, server.output());
  const tookMs = Date.now() - signalled;
  assert.ok(tookMs >= delayMs, `stopped ${tookMs} ms after SIGTERM, before the ${delayMs} ms delay`);
  console.log(`lame duck: not ready and still answering during ${delayMs} ms; exit 0 ${tookMs} ms after SIGTERM`);
});
