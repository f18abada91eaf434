// Multi-task GraphQL against a real server: concurrent requests, aliases, only selected heads, timing,
// metrics, model loading and switching over mutations, and overload.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const texts = ['Maria Lopez loved the new Pixar film she saw in Madrid.', 'The delivery was late and the box was damaged.', 'Apple opened an office in Berlin.'];
const analyzeAll = `query($texts: [String!]!) { analyze(texts: $texts, model: "multi") {
  text tokenCount sentiment { label score scores { label score } } entities { text label start end score }
  embedding classify(head: "topic") { label score } } }`;

async function headTexts(head: string): Promise<number> {
  const body = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
  const line = body.split('\n').find((l) => l.startsWith(`polyhead_head_texts_total{model="multi",head="${head}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

before(async () => {
  server = await startTestServer({ models: [] });
  const imported = await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: await writeHeadsBundle() });
  assert.equal(imported.errors, undefined);
  const loaded = await server.admin('mutation { loadModel(model: "multi") { name version heads provider } }');
  assert.deepEqual(loaded.data.loadModel, { name: 'multi', version: '1.0.0', heads: ['sentiment', 'topic', 'entities', 'embedding'], provider: 'cpu' });
});
after(() => server.close());

test('64 concurrent multi-task requests get the same answers as one request alone', async () => {
  const alone = await server.gql(analyzeAll, { texts });
  assert.equal(alone.errors, undefined);
  const concurrent = await Promise.all(Array.from({ length: 64 }, (_, i) => server.gql(analyzeAll, { texts: [texts[i % 3]!, `Extra text number ${i} from Paris.`] })));
  for (const [i, response] of concurrent.entries()) {
    assert.equal(response.errors, undefined);
    const expected = alone.data.analyze[i % 3];
    const got = response.data.analyze[0];
    assert.equal(got.sentiment.label, expected.sentiment.label);
    assert.ok(Math.abs(got.sentiment.score - expected.sentiment.score) < 1e-5);
    assert.deepEqual(got.entities.map((e: any) => [e.start, e.end, e.label]), expected.entities.map((e: any) => [e.start, e.end, e.label]));
    assert.equal(got.classify.label, expected.classify.label);
    for (const entity of response.data.analyze[1].entities) assert.equal(response.data.analyze[1].text.slice(entity.start, entity.end), entity.text);
  }
  const { data } = await server.gql('{ server { batchesRun meanBatchSize queueDepth } }');
  assert.ok(data.server.meanBatchSize > 1.5, `requests were batched together (mean batch ${data.server.meanBatchSize})`);
  assert.equal(data.server.queueDepth, 0);
});

test('a head runs once per text however many fields and aliases ask for it, and only selected heads run', async () => {
  const fresh = ['Unseen sentence one.', 'Unseen sentence two.'];
  const [sentimentBefore, entitiesBefore, topicBefore] = await Promise.all(['sentiment', 'entities', 'topic'].map(headTexts));
  const { errors } = await server.gql(
    `query($t: [String!]!) { a: analyze(texts: $t, model: "multi") { sentiment { label } } b: analyze(texts: $t, model: "multi") { s: sentiment { label } again: sentiment { score } }
       c: sentiment(texts: $t, model: "multi") { label } d: embed(texts: $t, model: "multi") }`,
    { t: fresh },
  );
  assert.equal(errors, undefined);
  assert.equal((await headTexts('sentiment')) - sentimentBefore, 2, 'sentiment ran once per distinct text');
  assert.equal(await headTexts('entities'), entitiesBefore, 'entities was not selected and did not run');
  assert.equal(await headTexts('topic'), topicBefore);
});

test('timing comes back in extensions when asked for', async () => {
  const asked = await server.gql('{ embed(texts: ["timing please"], model: "multi") }', {}, { 'x-polyhead-timing': '1' });
  assert.ok(asked.extensions?.timing.totalMs > 0);
  assert.ok(asked.extensions?.timing.inferenceMs > 0);
  const notAsked = await server.gql('{ embed(texts: ["no timing"], model: "multi") }');
  assert.equal(notAsked.extensions?.timing, undefined);
});

test('/metrics exposes queue, batch, padding, wait, inference and error metrics', async () => {
  await server.gql('{ analyze(texts: ["x"], model: "multi") { classify(head: "nope") { label } } }');
  const body = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
  for (const name of [
    'polyhead_queue_texts',
    'polyhead_queue_tokens',
    'polyhead_batches_total',
    'polyhead_batch_size_bucket',
    'polyhead_batch_padded_tokens_bucket',
    'polyhead_batch_padding_ratio_bucket',
    'polyhead_queue_wait_seconds_bucket',
    'polyhead_inference_seconds_bucket',
    'polyhead_head_seconds_bucket',
    'polyhead_graphql_requests_total',
    'polyhead_info',
  ]) {
    assert.ok(body.includes(name), `missing ${name}`);
  }
  assert.match(body, /polyhead_graphql_errors_total\{code="HEAD_NOT_FOUND"\} [1-9]/);
});

test('unknown heads and models get typed errors', async () => {
  const head = await server.gql('{ analyze(texts: ["x"], model: "multi") { classify(head: "sarcasm") { label } } }');
  assert.equal(head.errors?.[0]?.extensions?.code, 'HEAD_NOT_FOUND');
  const notClassifier = await server.gql('{ analyze(texts: ["x"], model: "multi") { classify(head: "entities") { label } } }');
  assert.equal(notClassifier.errors?.[0]?.extensions?.code, 'HEAD_NOT_FOUND');
  const model = await server.gql('{ sentiment(texts: ["x"], model: "ghost") { label } }');
  assert.equal(model.errors?.[0]?.extensions?.code, 'MODEL_NOT_FOUND');
});

test('switching versions over GraphQL; a version that fails to load leaves the old one serving', async () => {
  const loadAnon = await server.gql('mutation { loadModel(model: "multi") { version } }');
  assert.equal(loadAnon.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  const broken = await writeHeadsBundle({ version: '2.0.0' });
  writeFileSync(join(broken, 'heads', 'entities.onnx'), 'garbage');
  assert.equal((await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: broken })).errors, undefined);
  const failed = await server.admin('mutation { loadModel(model: "multi", version: "2.0.0") { version } }');
  assert.equal(failed.errors?.[0]?.extensions?.code, 'MODEL_LOAD_FAILED');
  const still = await server.gql('{ server { loadedModels { name version } } sentiment(texts: ["still here"], model: "multi") { label } }');
  assert.deepEqual(still.data.server.loadedModels, [{ name: 'multi', version: '1.0.0' }]);
  assert.ok(still.data.sentiment[0].label);

  await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: await writeHeadsBundle({ version: '3.0.0', seed: 3 }) });
  assert.equal((await server.admin('mutation { loadModel(model: "multi", version: "3.0.0") { version } }')).data.loadModel.version, '3.0.0');
  assert.equal((await server.admin('mutation { unloadModel(model: "multi") }')).data.unloadModel, true);
  assert.equal((await server.gql('{ embed(texts: ["gone"], model: "multi") }')).errors?.[0]?.extensions?.code, 'MODEL_NOT_FOUND');
  assert.equal((await server.admin('mutation { loadModel(model: "multi", version: "1.0.0") { version } }')).data.loadModel.version, '1.0.0');
});

test('past the queue bound a request fails fast with OVERLOADED and retryAfter', async () => {
  const small = await startTestServer({ models: [], maxQueueTexts: 16, maxBatchSize: 4 });
  try {
    await small.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: await writeHeadsBundle() });
    await small.admin('mutation { loadModel(model: "multi") { version } }');
    const many = Array.from({ length: 200 }, (_, i) => `Overloaded request text ${i}.`);
    const response = await small.gql('query($t: [String!]!) { sentiment(texts: $t, model: "multi") { label } }', { t: many });
    assert.equal(response.errors?.[0]?.extensions?.code, 'OVERLOADED');
    assert.ok(response.errors![0]!.extensions!.retryAfter >= 1);
    const after = await small.gql('{ sentiment(texts: ["the server keeps serving"], model: "multi") { label } }');
    assert.equal(after.errors, undefined);
  } finally {
    await small.close();
  }
});
