// fineTuneBackbone over GraphQL on a running server: an imported BERT-family encoder with a head trained by trainHead
// is fine-tuned on that head's stored dataset plus the built-in unlabelled text; the job reports through trainingJob,
// registers a new backbone with its lineage and a new model version that serves; bad input is refused before any work.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { writeHfFixture } from '../../helpers/hf-fixtures.js';
import { runCliAsync } from '../../helpers/process.js';
import { startTestServer, testApiKey, type TestServer } from '../../helpers/server.js';
import { topicExamples } from '../../helpers/topic-examples.js';

let server: TestServer;
let model: string;
let dataset: string;

async function waitForJob(id: string) {
  let job: any;
  for (let i = 0; i < 1200; i++) {
    job = (await server.gql('query($id: ID!) { trainingJob(id: $id) { status phase error version task head metrics { metric value split samples } } }', { id })).data.trainingJob;
    if (job.status === 'SUCCEEDED' || job.status === 'FAILED') return job;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`job ${id} did not finish: ${JSON.stringify(job)}`);
}

before(async () => {
  server = await startTestServer({ models: [] });
  const dir = join(tempDir(), 'minilm-st');
  await writeHfFixture('minilm-st', dir);
  const imported = await server.admin('mutation($p: String!) { importHuggingFace(path: $p, name: "ft-topics") { model { name } } }', { p: dir });
  assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
  model = imported.data.importHuggingFace.model.name;
  assert.equal((await server.admin('mutation($m: String!) { loadModel(model: $m) { version } }', { m: model })).errors, undefined);
  const started = await server.admin(
    'mutation($m: String!, $e: [TrainingExampleInput!]) { trainHead(model: $m, head: "topic", task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }',
    { m: model, e: topicExamples },
  );
  const job = await waitForJob(started.data.trainHead.id);
  assert.equal(job.status, 'SUCCEEDED', job.error);
  dataset = `${model}.topic.${started.data.trainHead.id.slice(0, 8)}`;
});
after(() => server.close());

const fineTune = `mutation($m: String!, $t: [FineTuneTaskInput!]!, $u: String, $e: Int) {
  fineTuneBackbone(model: $m, tasks: $t, unlabeledDataset: $u, epochs: $e, seed: 7) { id status task } }`;

test('bad input is refused before any work, with typed errors, and registers nothing', async () => {
  const before = await server.db.prisma.backbone.count();
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ m: 'no-such-model', t: [{ head: 'topic', dataset }] }, 'MODEL_NOT_FOUND', /no-such-model/],
    [{ m: model, t: [{ head: 'topic', dataset: 'no-such-dataset' }] }, 'BAD_USER_INPUT', /no dataset named "no-such-dataset"/],
    [{ m: model, t: [{ head: 'nothing', dataset }] }, 'HEAD_NOT_FOUND', /no head "nothing"/],
    [{ m: model, t: [] }, 'BAD_USER_INPUT', /at least one task/],
    [{ m: model, t: [{ head: 'topic', dataset }], e: 0 }, 'BAD_USER_INPUT', /epochs/],
    [{ m: model, t: [{ head: 'topic', dataset: 'pang-lee-sentence-polarity' }] }, 'BAD_USER_INPUT', /labels .* are not the head's|not available/],
    [{ m: model, t: [{ head: 'topic', dataset }], u: 'no-such-text' }, 'BAD_USER_INPUT', /unlabeledDataset: no dataset named/],
  ];
  for (const [variables, code, message] of cases) {
    const answer = await server.admin(fineTune, variables);
    assert.equal(answer.errors?.[0]?.extensions?.code, code, JSON.stringify(answer.errors));
    assert.match(answer.errors![0]!.message, message);
  }
  const unauthenticated = await server.gql(fineTune, { m: model, t: [{ head: 'topic', dataset }] });
  assert.equal(unauthenticated.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  assert.equal(await server.db.prisma.backbone.count(), before);
});

test('a fine-tuning job registers a new backbone with its lineage and a new version that serves', async () => {
  const started = await server.admin(fineTune, { m: model, t: [{ head: 'topic', dataset }], e: 1 });
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  assert.equal(started.data.fineTuneBackbone.task, 'fine_tune_backbone');
  const job = await waitForJob(started.data.fineTuneBackbone.id);
  assert.equal(job.status, 'SUCCEEDED', job.error);
  assert.equal(job.head, 'topic');
  assert.ok(job.metrics.some((m: any) => m.split === 'topic validation'));

  const lineage = await server.gql(`{ model(name: "${model}") { version(ref: "${job.version}") { parent { version } heads { name }
    backbone { version parent { version } hyperparameters datasets { role dataset { name } } validationCurves { task epoch metric value } } } } }`);
  assert.equal(lineage.errors, undefined, JSON.stringify(lineage.errors));
  const version = lineage.data.model.version;
  assert.match(version.parent.version, /^1\.0\.0\+topic\./);
  assert.equal(version.backbone.parent.version, '1.0.0');
  assert.match(version.backbone.version, /^1\.0\.0\+ft\./);
  assert.equal(version.backbone.hyperparameters.epochs, 1);
  assert.deepEqual(version.backbone.datasets.map((d: any) => `${d.dataset.name}:${d.role}`).sort(), [`brown-unlabelled:TRAINING`, `${dataset}:TRAINING`, `${dataset}:VALIDATION`].sort());
  const tasks = new Set(version.backbone.validationCurves.map((p: any) => `${p.task}:${p.epoch}`));
  for (const point of ['sentiment:0', 'sentiment:1', 'distillation:0', 'distillation:1']) assert.ok(tasks.has(point), `${point} in ${[...tasks]}`);

  // The new version is loaded and answers with the retrained head; the frozen one stays registered.
  const served = await server.gql('query($m: String) { analyze(texts: ["The striker scored twice."], model: $m) { classify(head: "topic") { label } } }', { m: model });
  assert.equal(served.errors, undefined, JSON.stringify(served.errors));
  assert.ok(['sports', 'cooking', 'weather'].includes(served.data.analyze[0].classify.label));
  const loaded = await server.gql('{ server { loadedModels { name version } } }');
  assert.ok(loaded.data.server.loadedModels.some((m: any) => m.name === model && m.version === job.version));
  const versions = await server.gql(`{ model(name: "${model}") { versions { version } } }`);
  assert.ok(versions.data.model.versions.some((v: any) => v.version === version.parent.version));
});

test('npx polyhead fine-tune does the same from the shell: tasks from the heads\' training datasets, progress, the new backbone', async () => {
  const run = await runCliAsync(['fine-tune', '--model', model, '--epochs', '1', '--unlabeled', '', '--no-load', '--server', server.url, '--api-key', testApiKey], {});
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`tasks: topic on ${dataset.replace(/\./g, '\\.')}`));
  assert.match(run.stderr, /fine-tuning/);
  assert.match(run.stdout, /registered ft-topics \S+\+ft\.\S+ on backbone \S+ \S+\+ft\.\S+ \(fine-tuned from /);
  const bad = await runCliAsync(['fine-tune', '--model', model, '--task', 'topic=missing-dataset', '--server', server.url, '--api-key', testApiKey], {});
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /BAD_USER_INPUT: tasks\[0\]\.dataset: no dataset named "missing-dataset"/);
});
