// The example app backend (examples/app-backend) against a live Polyhead on real PostgreSQL: started as users start
// it (its own process, configured by env), it answers POST /review from one multi-task analyze and GET /models from a
// registry query, with the API key from its env (Polyhead here requires a key for queries too).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { startAppBackend, type RunningAppBackend } from '../../examples/app-backend/src/service.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

let database: ScratchDatabase;
let polyhead: TestServer;
let backend: ChildProcess;
let backendUrl: string;

/** Runs examples/app-backend/src/main.ts as `npm run example:app-backend` does and waits for its ready line. */
async function spawnBackend(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', join(packageRoot, 'examples/app-backend/src/main.ts')], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const match = /ready at (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the app backend exited with ${code}:\n${output}`)));
  });
  return { child, url };
}

before(async () => {
  if (skipWithoutPostgres) return;
  database = await createScratchDatabase();
  polyhead = await startTestServer({ databaseUrl: database.url, requireReadKey: true });
  ({ child: backend, url: backendUrl } = await spawnBackend({ POLYHEAD_URL: polyhead.url, POLYHEAD_API_KEY: testApiKey, PORT: '0', HOST: '127.0.0.1' }));
});
after(async () => {
  if (backend && backend.exitCode === null) await new Promise((resolve) => backend.once('exit', resolve).kill('SIGTERM'));
  await polyhead?.close();
  await database?.drop();
});

const reviews = ['Maria Lopez loved the new Pixar film she saw in Madrid.', 'The delivery was late and the box was damaged.', 'My parcel arrived late and the box was broken.'];

async function post(url: string, body: unknown) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
}

test('POST /review answers from one multi-task analyze: the same labels and entities as Polyhead itself', { skip: skipWithoutPostgres }, async () => {
  const { status, body } = await post(`${backendUrl}/review`, { texts: reviews });
  assert.equal(status, 200, JSON.stringify(body));
  const direct = await polyhead.admin('query($t: [String!]!) { analyze(texts: $t) { sentiment { label score } entities { text label start end } } }', { t: reviews });
  assert.equal(direct.errors, undefined, JSON.stringify(direct.errors));
  assert.equal(body.reviews.length, 3);
  for (const [i, review] of body.reviews.entries()) {
    assert.equal(review.text, reviews[i]);
    assert.equal(review.sentiment, direct.data.analyze[i].sentiment.label);
    assert.ok(Math.abs(review.confidence - direct.data.analyze[i].sentiment.score) < 1e-6);
    assert.deepEqual(review.entities, direct.data.analyze[i].entities);
    assert.equal(review.truncated, false);
  }
  assert.equal(body.reviews[0].sentiment, 'positive');
  assert.equal(body.reviews[1].sentiment, 'negative');
  assert.ok(body.reviews[0].entities.some((e: any) => e.text === 'Maria Lopez' && e.label === 'PER'), JSON.stringify(body.reviews[0].entities));
  // The two late-delivery reviews read alike; the film review is nearest to one of them, less closely.
  assert.equal(body.reviews[1].mostSimilar.index, 2);
  assert.equal(body.reviews[2].mostSimilar.index, 1);
  assert.ok(body.reviews[1].mostSimilar.cosine > body.reviews[0].mostSimilar.cosine, JSON.stringify(body.reviews.map((r: any) => r.mostSimilar)));
});

test('GET /models lists the registry with heads and what is loaded, filtered by task', { skip: skipWithoutPostgres }, async () => {
  const all = (await (await fetch(`${backendUrl}/models`)).json()) as any;
  const model = all.models.find((m: any) => m.name === 'default');
  assert.ok(model, JSON.stringify(all));
  assert.equal(all.totalCount, all.models.length);
  assert.equal(model.version, '1.3.0');
  assert.equal(model.loaded, true);
  assert.equal(model.backbone, 'use-lite');
  assert.deepEqual(model.heads.map((h: any) => h.name).sort(), ['embedding', 'entities', 'sentiment']);
  assert.deepEqual(model.heads.find((h: any) => h.name === 'sentiment').labels, ['negative', 'positive']);

  const generation = (await (await fetch(`${backendUrl}/models?task=GENERATION`)).json()) as any;
  assert.deepEqual(generation, { totalCount: 0, models: [] });
  const unknown = await fetch(`${backendUrl}/models?task=SUMMARIZE`);
  assert.equal(unknown.status, 400);
  assert.match(((await unknown.json()) as any).error.message, /CLASSIFICATION, TOKEN_CLASSIFICATION, EMBEDDING, GENERATION/);
});

test('bad input is refused: by the service itself (400), and Polyhead\'s BAD_USER_INPUT passed on (400)', { skip: skipWithoutPostgres }, async () => {
  for (const body of ['not json', { texts: [] }, { texts: ['ok', 3] }, { reviews: ['a'] }]) {
    const { status, body: answer } = await post(`${backendUrl}/review`, body);
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(answer.error.code, 'BAD_REQUEST');
  }
  const empty = await post(`${backendUrl}/review`, { texts: ['fine', ''] });
  assert.equal(empty.status, 400);
  assert.equal(empty.body.error.code, 'BAD_USER_INPUT');
  assert.equal((await fetch(`${backendUrl}/nowhere`)).status, 404);
});

test('without the API key Polyhead refuses the service, which answers 502 with the code', { skip: skipWithoutPostgres }, async () => {
  let keyless: RunningAppBackend | undefined;
  try {
    keyless = await startAppBackend({ polyhead: { url: polyhead.url }, port: 0 });
    const { status, body } = await post(`${keyless.url}/review`, { texts: ['hello'] });
    assert.equal(status, 502);
    assert.equal(body.error.code, 'UNAUTHENTICATED');
  } finally {
    await keyless?.close();
  }
});
