// Adding a head to a running server: trainHead validates before any work, trains in the background,
// registers a new version with its lineage, and serves it without a restart; a failed job changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { runCliAsync } from '../helpers/process.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';
import { topicExamples } from '../helpers/topic-examples.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const examples = topicExamples;

const trainMutation = `mutation($m: String!, $h: String!, $t: TaskKind!, $l: [String!]!, $e: [TrainingExampleInput!], $d: String) {
  trainHead(model: $m, head: $h, task: $t, labels: $l, examples: $e, dataset: $d) { id status } }`;

async function waitForJob(id: string, timeoutMs = 180_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { data } = await server.gql('query($id: ID!) { trainingJob(id: $id) { status phase progress error version metrics { metric value split samples } } }', { id });
    if (data.trainingJob.status === 'SUCCEEDED' || data.trainingJob.status === 'FAILED') return data.trainingJob;
    if (Date.now() > until) throw new Error(`job ${id} still ${data.trainingJob.status}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

test('bad requests are refused before any work with clear errors', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ e: [...examples, { text: 'x', label: 'politics' }] }, /unknown label "politics"/],
    [{ e: [...examples, { text: '  ', label: 'sports' }] }, /empty text/],
    [{ e: examples.filter((e) => e.label !== 'weather').concat(examples.filter((e) => e.label === 'weather').slice(0, 2)) }, /label "weather" has 2 examples, at least 4 needed/],
    [{ h: 'sentiment' }, /already has a head "sentiment"/],
    [{ e: null }, /either examples or a dataset/],
    [{ e: null, d: 'pang-lee-sentence-polarity' }, /holds no examples/],
    [{ t: 'TOKEN_CLASSIFICATION', l: ['PER'], e: [{ text: 'Ann went home', entities: [{ start: 0, end: 30, label: 'PER' }] }] }, /not inside the text/],
  ];
  const before = await server.db.prisma.modelVersion.count();
  for (const [overrides, message] of cases) {
    const response = await server.admin(trainMutation, { m: 'default', h: 'topic', t: 'CLASSIFICATION', l: ['sports', 'cooking', 'weather'], e: examples, ...overrides });
    assert.equal(response.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(response.errors));
    const error = response.errors![0]!;
    assert.match(`${error.message} ${(error.extensions?.problems ?? []).join(' ')}`, message);
  }
  const anonymous = await server.gql(trainMutation, { m: 'default', h: 'topic', t: 'CLASSIFICATION', l: ['sports', 'cooking', 'weather'], e: examples });
  assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  assert.equal(await server.db.prisma.modelVersion.count(), before);
});

test('a head trained through trainHead serves requests without a restart, with its lineage registered', async () => {
  const started = await server.admin(trainMutation, { m: 'default', h: 'topic', t: 'CLASSIFICATION', l: ['sports', 'cooking', 'weather'], e: examples });
  assert.equal(started.errors, undefined);
  const job = await waitForJob(started.data.trainHead.id);
  assert.equal(job.status, 'SUCCEEDED', job.error);
  assert.equal(job.metrics[0].metric, 'accuracy');
  assert.ok(job.metrics[0].value >= 0.8, `held-out accuracy ${job.metrics[0].value}`);
  assert.ok(job.metrics[0].samples >= 20);

  const served = await server.gql('{ analyze(texts: ["The goalkeeper saved a penalty in the last minute.", "Bake the cake for forty minutes."]) { classify(head: "topic") { label } sentiment { label } } server { loadedModels { version heads } } }');
  assert.equal(served.errors, undefined);
  assert.deepEqual(served.data.analyze.map((a: any) => a.classify.label), ['sports', 'cooking']);
  assert.equal(served.data.server.loadedModels[0].version, job.version);
  assert.ok(served.data.server.loadedModels[0].heads.includes('topic'));

  const lineage = await server.gql(`{ model(name: "default") { version(ref: "${job.version}") {
    parent { version } backbone { name }
    heads { name trainingData { name size } evaluations { metric value split sampleCount dataset { name } } } } } }`);
  const version = lineage.data.model.version;
  assert.equal(version.parent.version, '1.3.0', 'trained on the version served: the fine-tuned default');
  assert.equal(version.backbone.name, 'use-lite');
  const topic = version.heads.find((h: any) => h.name === 'topic');
  assert.equal(topic.trainingData[0].size, examples.length);
  assert.equal(topic.evaluations[0].value, job.metrics[0].value);
  const stored = await server.db.prisma.datasetExample.count({ where: { dataset: { name: topic.trainingData[0].name } } });
  assert.equal(stored, examples.length, 'the examples are kept so later jobs can name the dataset');
});

test('the CLI trains a token-classification head from a JSONL file against the running server', async () => {
  const people = ['Ann Lee', 'Omar Haddad', 'Li Wei', 'Maria Rossi', 'John Smith', 'Yuki Tanaka'];
  const places = ['Paris', 'Cairo', 'Lima', 'Oslo', 'Kyoto', 'Quito'];
  const lines = people.flatMap((person) =>
    places.map((place) => {
      const text = `${person} flew to ${place} last week.`;
      return { text, entities: [{ start: 0, end: person.length, label: 'PER' }, { start: text.indexOf(place), end: text.indexOf(place) + place.length, label: 'LOC' }] };
    }),
  );
  const file = join(tempDir(), 'people.jsonl');
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
  const result = await runCliAsync(['train', '--server', server.url, '--api-key', testApiKey, '--model', 'default', '--head', 'travel', '--task', 'token_classification', '--labels', 'PER,LOC', '--examples', file], {});
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /span_micro_f1 on \d+ held-out test examples/);
  assert.match(result.stdout, /and now serving it/);
  const { data } = await server.gql('{ server { loadedModels { heads } } }');
  assert.ok(data.server.loadedModels[0].heads.includes('travel'));
});

test('a job that fails after it started leaves the registry unchanged', async () => {
  // The bundle folder cannot be created (its parent is a file): the job fails while writing the new version.
  const blocked = join(tempDir(), 'not-a-folder');
  writeFileSync(blocked, 'file');
  const failing = await startTestServer({ models: [], bundleDir: join(blocked, 'bundles') });
  try {
    await failing.admin('mutation($p: String!) { importBundle(path: $p) { created } }', { p: await writeHeadsBundle() });
    await failing.admin('mutation { loadModel(model: "multi") { version } }');
    const counts = async () => [await failing.db.prisma.modelVersion.count(), await failing.db.prisma.dataset.count(), await failing.db.prisma.head.count(), await failing.db.prisma.datasetExample.count()];
    const before = await counts();
    const started = await failing.admin(trainMutation, { m: 'multi', h: 'mood', t: 'CLASSIFICATION', l: ['sports', 'cooking', 'weather'], e: examples });
    const id = started.data.trainHead.id;
    let job;
    for (let i = 0; i < 600; i++) {
      job = (await failing.gql('query($id: ID!) { trainingJob(id: $id) { status error } }', { id })).data.trainingJob;
      if (job.status === 'FAILED' || job.status === 'SUCCEEDED') break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.equal(job.status, 'FAILED');
    assert.match(job.error, /ENOTDIR|not a directory/);
    assert.deepEqual(await counts(), before);
    assert.equal((await failing.gql('{ sentiment(texts: ["still serving"], model: "multi") { label } }')).errors, undefined);
  } finally {
    await failing.close();
  }
});
