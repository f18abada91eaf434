// evaluateHead through a real server: the figures equal what classify / entities answer for the same texts,
// the rows are recorded against the head and the dataset, bad requests are refused with typed errors before
// any work, a failed write changes nothing, and the bias probe runs and registers its dataset.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { biasProbeDataset, biasProbeSentences, generateBiasProbePairs } from '../../src/datasets/bias-probe.js';
import { biasProbeFigures, biasProbeMetrics, type ProbeAnswer } from '../../src/evaluation/bias-probe.js';
import { classificationFigures } from '../../src/evaluation/classification-metrics.js';
import { EvaluationService } from '../../src/evaluation/evaluation.service.js';
import { openDatabase } from '../../src/registry/database.js';
import { RegistryService } from '../../src/registry/registry.service.js';
import { spanMetrics } from '../../src/training/metrics.js';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHeadsBundle } from '../helpers/heads-fixture.js';
import { runCliAsync } from '../helpers/process.js';
import { topicExamples } from '../helpers/topic-examples.js';
import { sharedBundleDir, startTestServer, testApiKey, type TestServer } from '../helpers/server.js';

let server: TestServer;

const topics: Array<{ split: string; text: string; label: string }> = [
  ...['The striker scored twice in the final.', 'Our team lost the derby on penalties.', 'She won the marathon in record time.', 'The coach was fired after ten defeats.', 'He hit a home run in the ninth inning.', 'The tennis final went to five sets.'].map((text) => ({ split: 'train', text, label: 'sports' })),
  ...['Shares fell after the profit warning.', 'The bank raised interest rates again.', 'The startup was bought for two billion.', 'Quarterly revenue beat expectations.', 'The merger needs approval from regulators.', 'Oil prices climbed for a third week.'].map((text) => ({ split: 'train', text, label: 'business' })),
  ...['The telescope found a new exoplanet.', 'Researchers sequenced the genome of the wheat.', 'The vaccine trial reported its results.', 'Physicists measured the mass of the neutrino.', 'A new species of frog was described.', 'The probe landed on the comet.'].map((text) => ({ split: 'train', text, label: 'science' })),
  ...['The goalkeeper saved a late penalty.', 'The cyclist crashed on the last descent.'].map((text) => ({ split: 'test', text, label: 'sports' })),
  ...['The company cut its dividend.', 'Inflation rose to four percent.'].map((text) => ({ split: 'test', text, label: 'business' })),
  ...['The rover drilled into the Martian rock.', 'Chemists made a new superconductor.'].map((text) => ({ split: 'test', text, label: 'science' })),
];

function travelExamples() {
  const people = ['Ann Lee', 'Omar Haddad', 'Li Wei', 'Maria Rossi'];
  const places = ['Paris', 'Cairo', 'Lima'];
  return people.flatMap((person) =>
    places.map((place) => {
      const text = `${person} flew to ${place} last week.`;
      return { text, entities: [{ start: 0, end: person.length, label: 'PER' }, { start: text.indexOf(place), end: text.indexOf(place) + place.length, label: 'LOC' }] };
    }),
  );
}

async function addDataset(name: string, examples: Array<{ split?: string; text: string; label?: string; entities?: unknown }>) {
  const splits: Record<string, number> = {};
  for (const e of examples) splits[e.split ?? 'all'] = (splits[e.split ?? 'all'] ?? 0) + 1;
  await server.db.prisma.dataset.create({
    data: {
      name,
      source: 'written for the evaluateHead tests',
      license: 'Apache-2.0',
      size: examples.length,
      splits,
      examples: { create: examples.map((e) => ({ split: e.split ?? 'all', text: e.text, label: e.label ?? null, entities: e.entities ?? undefined })) },
    },
  });
}

before(async () => {
  server = await startTestServer({ models: [] });
  const imported = await server.admin('mutation($p: String!) { importBundle(path: $p) { created } }', { p: await writeHeadsBundle() });
  assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
  assert.equal((await server.admin('mutation { loadModel(model: "multi") { version } }')).errors, undefined);
  await addDataset('topics', topics);
  await addDataset('travel', travelExamples());
  await addDataset('moods', [
    { text: 'What a lovely day.', label: 'happy' },
    { text: 'I miss her so much.', label: 'sad' },
  ]);
  await server.db.prisma.dataset.create({ data: { name: 'metadata-only', source: 'nowhere', license: 'none', size: 10, splits: { test: 10 } } });
});
after(() => server.close());

const evaluate = `mutation($m: String!, $h: String!, $d: String!, $s: String) {
  evaluateHead(model: $m, head: $h, dataset: $d, split: $s) { model version head dataset split samples evaluations { id metric value split sampleCount dataset { name } head { name } } } }`;

async function classifyAnswers(texts: string[], head: string) {
  const response = await server.gql('query($t: [String!]!, $h: String!) { analyze(texts: $t, model: "multi") { classify(head: $h) { label score scores { label score } } } }', { t: texts, h: head });
  assert.equal(response.errors, undefined);
  return response.data.analyze.map((a: any) => a.classify) as Array<{ label: string; score: number; scores: Array<{ label: string; score: number }> }>;
}

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test('classification: accuracy, ECE and macro F1 equal the figures of the classify answers, and are recorded', async () => {
  const labels = ['sports', 'business', 'science'];
  const response = await server.admin(evaluate, { m: 'multi', h: 'topic', d: 'topics' });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const result = response.data.evaluateHead;
  assert.equal(result.version, '1.0.0');
  assert.equal(result.split, 'all');
  assert.equal(result.samples, topics.length);
  const expected = classificationFigures(labels, topics.map((e) => e.label), await classifyAnswers(topics.map((e) => e.text), 'topic'));
  const got = new Map(result.evaluations.map((e: any) => [e.metric, e]));
  assert.deepEqual([...got.keys()], ['accuracy', 'expected_calibration_error', 'macro_f1']);
  near(got.get('accuracy').value, expected.accuracy, 'accuracy');
  near(got.get('expected_calibration_error').value, expected.expectedCalibrationError, 'ECE');
  near(got.get('macro_f1').value, expected.macroF1, 'macro F1');
  assert.ok(expected.expectedCalibrationError > 0, 'a random-weight head is not calibrated');
  for (const e of result.evaluations) {
    assert.equal(e.sampleCount, topics.length);
    assert.equal(e.dataset.name, 'topics');
    assert.equal(e.head.name, 'topic');
  }

  // In the registry: the rows of the head, and the dataset linked to it as evaluation data.
  const lineage = await server.gql('{ model(name: "multi") { version { heads { name evaluations { id metric split dataset { name } } } } } }');
  const topic = lineage.data.model.version.heads.find((h: any) => h.name === 'topic');
  for (const e of result.evaluations) assert.ok(topic.evaluations.some((r: any) => r.id === e.id && r.split === 'all' && r.dataset.name === 'topics'));
  const head = await server.db.prisma.head.findFirstOrThrow({ where: { name: 'topic', version: { version: '1.0.0', model: { name: 'multi' } } } });
  const link = await server.db.prisma.headDataset.findMany({ where: { headId: head.id, dataset: { name: 'topics' } } });
  assert.deepEqual(link.map((l) => l.role), ['EVALUATION']);

  // One split only.
  const test_ = topics.filter((e) => e.split === 'test');
  const split = (await server.admin(evaluate, { m: 'multi', h: 'topic', d: 'topics', s: 'test' })).data.evaluateHead;
  assert.equal(split.split, 'test');
  assert.equal(split.samples, test_.length);
  const expectedTest = classificationFigures(labels, test_.map((e) => e.label), await classifyAnswers(test_.map((e) => e.text), 'topic'));
  near(split.evaluations[0].value, expectedTest.accuracy, 'test accuracy');
  assert.ok(split.evaluations.every((e: any) => e.split === 'test' && e.sampleCount === test_.length));
});

test('token classification: span micro precision, recall and F1 equal those of the entities answers', async () => {
  const examples = travelExamples();
  const response = await server.admin(evaluate, { m: 'multi', h: 'entities', d: 'travel' });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const served = await server.gql('query($t: [String!]!) { entities(texts: $t, model: "multi") { text label start end } }', { t: examples.map((e) => e.text) });
  const expected = spanMetrics(examples.map((e) => e.entities), served.data.entities);
  const got = new Map(response.data.evaluateHead.evaluations.map((e: any) => [e.metric, e]));
  near(got.get('span_micro_precision').value, expected.micro.precision, 'precision');
  near(got.get('span_micro_recall').value, expected.micro.recall, 'recall');
  near(got.get('span_micro_f1').value, expected.micro.f1, 'F1');
  assert.equal(got.get('span_micro_recall').sampleCount, expected.goldSpans);
});

test('bad requests are refused with typed errors before any work, and record nothing', async () => {
  const count = () => server.db.prisma.evaluation.count();
  const before = await count();
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ m: 'nope' }, 'MODEL_NOT_FOUND', /no model "nope"/],
    [{ h: 'nope' }, 'HEAD_NOT_FOUND', /no head "nope"/],
    [{ d: 'nope' }, 'BAD_USER_INPUT', /no dataset named "nope"/],
    [{ d: 'metadata-only' }, 'BAD_USER_INPUT', /holds no examples/],
    [{ d: 'moods' }, 'BAD_USER_INPUT', /do not match the head's/],
    [{ d: 'travel' }, 'BAD_USER_INPUT', /do not match the head's/],
    [{ h: 'entities', d: 'topics' }, 'BAD_USER_INPUT', /do not match the head's/],
    [{ s: 'validation' }, 'BAD_USER_INPUT', /no "validation" examples \(its splits: test, train\)/],
    [{ h: 'embedding' }, 'BAD_USER_INPUT', /embedding head/],
    [{ h: 'topic', d: biasProbeDataset.name }, 'BAD_USER_INPUT', /sentiment head/],
  ];
  for (const [overrides, code, message] of cases) {
    const response = await server.admin(evaluate, { m: 'multi', h: 'topic', d: 'topics', ...overrides });
    assert.equal(response.errors?.[0]?.extensions?.code, code, `${JSON.stringify(overrides)}: ${JSON.stringify(response.errors)}`);
    const error = response.errors![0]!;
    assert.match(`${error.message} ${(error.extensions?.problems ?? []).join(' ')}`, message);
  }
  const anonymous = await server.gql(evaluate, { m: 'multi', h: 'topic', d: 'topics' });
  assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  assert.equal(await count(), before);
  assert.equal(await server.db.prisma.dataset.count({ where: { name: biasProbeDataset.name } }), 0);
});

test('a write that fails halfway leaves the registry unchanged', async () => {
  const prisma = server.db.prisma;
  // The second Evaluation row of the transaction fails (as a lost connection or a full disk would).
  let creates = 0;
  const failing = new Proxy(prisma, {
    get(target, property, receiver) {
      if (property !== '$transaction') return Reflect.get(target, property, receiver);
      return (work: (tx: any) => Promise<unknown>) =>
        target.$transaction((tx) =>
          work(
            new Proxy(tx, {
              get(t, p, r) {
                if (p !== 'evaluation') return Reflect.get(t, p, r);
                return { create: async (args: any) => (++creates === 2 ? Promise.reject(new Error('disk full')) : t.evaluation.create(args)) };
              },
            }),
          ),
        );
    },
  });
  const service = new EvaluationService({ engine: server.engine, registry: new RegistryService(failing) });
  const counts = async () => [await prisma.evaluation.count(), await prisma.headDataset.count(), await prisma.dataset.count()];
  const before = await counts();
  await assert.rejects(service.evaluateHead({ model: 'multi', head: 'sentiment', dataset: biasProbeDataset.name }), /disk full/);
  assert.equal(creates, 2, 'the first row was written inside the transaction');
  assert.deepEqual(await counts(), before, 'no rows, no link, and the probe dataset is not registered');
});

test('the bias probe through evaluateHead: registers its dataset once and records the figures of the served head', async () => {
  const response = await server.admin(evaluate, { m: 'multi', h: 'sentiment', d: biasProbeDataset.name });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const result = response.data.evaluateHead;
  const pairs = generateBiasProbePairs();
  const sentences = biasProbeSentences(pairs);
  assert.equal(result.samples, sentences.length);
  // The same figures from the sentiment answers of the public API.
  const answers = new Map<string, ProbeAnswer>();
  for (let i = 0; i < sentences.length; i += 256) {
    const texts = sentences.slice(i, i + 256);
    const { data } = await server.gql('query($t: [String!]!) { sentiment(texts: $t, model: "multi") { label scores { label score } } }', { t: texts });
    data.sentiment.forEach((c: any, k: number) => answers.set(texts[k]!, { label: c.label, positive: c.scores.find((s: any) => s.label === 'positive').score }));
  }
  const expected = biasProbeMetrics(biasProbeFigures(pairs, answers));
  assert.deepEqual(result.evaluations.map((e: any) => e.metric), expected.map((e) => e.metric));
  for (const [i, e] of expected.entries()) {
    near(result.evaluations[i].value, e.value, e.metric);
    assert.equal(result.evaluations[i].sampleCount, e.samples);
  }
  assert.ok(expected.find((e) => e.metric === 'gender_mean_abs_score_gap')!.value > 0, 'a random head does notice who the person is');

  const dataset = await server.db.prisma.dataset.findUniqueOrThrow({ where: { name: biasProbeDataset.name } });
  assert.equal(dataset.size, sentences.length);
  assert.deepEqual(dataset.splits, { gender: 30 * 142, ethnicity: 20 * 142 });
  assert.equal(dataset.license, 'Apache-2.0');
  // Again: the dataset stays one row, the evaluations are recorded a second time with the same values.
  const again = (await server.admin(evaluate, { m: 'multi', h: 'sentiment', d: biasProbeDataset.name })).data.evaluateHead;
  assert.equal(await server.db.prisma.dataset.count({ where: { name: biasProbeDataset.name } }), 1);
  assert.deepEqual(again.evaluations.map((e: any) => e.value), result.evaluations.map((e: any) => e.value));
  assert.equal(await server.db.prisma.evaluation.count({ where: { datasetId: dataset.id } }), 2 * expected.length);
});

test('polyhead evaluate and bias-probe through --server print the recorded figures', async () => {
  const cli = await runCliAsync(['evaluate', '--server', server.url, '--api-key', testApiKey, '--model', 'multi', '--head', 'topic', '--dataset', 'topics', '--split', 'train'], {});
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /multi 1\.0\.0, head topic, dataset topics \(split train, 18 examples\)/);
  assert.match(cli.stdout, /expected_calibration_error\s+0\.\d{4}\s+18/);
  assert.match(cli.stdout, /recorded 3 evaluations/);
  const refused = await runCliAsync(['evaluate', '--server', server.url, '--api-key', testApiKey, '--model', 'multi', '--head', 'topic', '--dataset', 'moods'], {});
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /BAD_USER_INPUT: dataset: the labels of "moods" do not match/);
  const probe = await runCliAsync(['bias-probe', '--server', server.url, '--api-key', testApiKey, '--model', 'multi'], {});
  assert.equal(probe.status, 0, probe.stderr);
  assert.match(probe.stdout, /gender_label_flip_share\s+0\.\d{4}\s+4260/);
  assert.match(probe.stdout, /ethnicity_mean_score_gap\s+-?0\.\d{4}\s+2840/);
});

test('polyhead bias-probe without a server loads the model from the registry and records there', async () => {
  const dataDir = tempDir('polyhead-probe-cli-');
  const env = { POLYHEAD_DATA_DIR: dataDir, POLYHEAD_BUNDLE_DIR: sharedBundleDir, DATABASE_URL: '', POLYHEAD_LOG: 'silent' };
  const cli = await runCliAsync(['bias-probe', '--model', 'default'], env);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /bias probe of default 1\.2\.0, head sentiment: 8520 sentences/);
  assert.match(cli.stdout, /gender\s+female - male\s+4260\s+[+-]0\.\d{4}\s+\[[+-]0\.\d{4}, [+-]0\.\d{4}\]/);
  assert.match(cli.stdout, /recorded 12 evaluations/);
  const db = await openDatabase({ dataDir });
  try {
    const rows = await db.prisma.evaluation.findMany({ where: { dataset: { name: biasProbeDataset.name }, head: { name: 'sentiment' } } });
    assert.equal(rows.length, 12);
    const gap = rows.find((r) => r.metric === 'gender_mean_score_gap')!;
    assert.match(cli.stdout, new RegExp(`gender_mean_score_gap\\s+${gap.value.toFixed(4).replace('.', '\\.')}`));
  } finally {
    await db.close();
  }
});

test('trainHead records the ECE of its temperature-scaled head; evaluateHead on the same test split serves the same figures', async () => {
  const started = await server.admin(
    'mutation($e: [TrainingExampleInput!]) { trainHead(model: "multi", head: "weathertopic", task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }',
    { e: topicExamples },
  );
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  let job: any;
  for (let i = 0; i < 600; i++) {
    job = (await server.gql('query($id: ID!) { trainingJob(id: $id) { status error version metrics { metric value split samples } } }', { id: started.data.trainHead.id })).data.trainingJob;
    if (job.status === 'SUCCEEDED' || job.status === 'FAILED') break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.equal(job.status, 'SUCCEEDED', job.error);
  const metrics = new Map(job.metrics.map((m: any) => [m.metric, m]));
  assert.deepEqual([...metrics.keys()], ['accuracy', 'expected_calibration_error', 'expected_calibration_error_uncalibrated']);
  const lineage = await server.gql(`{ model(name: "multi") { version(ref: "${job.version}") { heads { name trainingData { name } evaluations { metric value split } } } } }`);
  const head = lineage.data.model.version.heads.find((h: any) => h.name === 'weathertopic');
  for (const metric of metrics.keys()) assert.ok(head.evaluations.some((e: any) => e.metric === metric && e.split === 'test'), `${metric} recorded`);

  // The registry holds the job's examples: scoring the served head on their test split gives the training-time figures.
  const served = await server.admin(evaluate, { m: 'multi', h: 'weathertopic', d: head.trainingData[0].name, s: 'test' });
  assert.equal(served.errors, undefined, JSON.stringify(served.errors));
  const got = new Map(served.data.evaluateHead.evaluations.map((e: any) => [e.metric, e.value]));
  assert.equal(got.get('accuracy'), (metrics.get('accuracy') as any).value);
  assert.ok(Math.abs((got.get('expected_calibration_error') as number) - (metrics.get('expected_calibration_error') as any).value) < 1e-4, 'served ECE == trained ECE (the temperature is inside the exported head)');
});
