// Hugging Face folders served as Polyhead models, end to end on a real server: importHuggingFace, loadModel,
// then embed / similarity / classify / entities with model:, one request across models, the registry's record
// of what was imported, refusals that name the file and the field, the CLI, and a head trained on an import.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/bundle-fixture.js';
import { describeHfFixture, editFixtureJson, writeHfFixture, type HfFixtureKind } from '../helpers/hf-fixtures.js';
import { runCliAsync } from '../helpers/process.js';
import { startTestServer, testApiKey, type TestServer } from '../helpers/server.js';
import { topicExamples } from '../helpers/topic-examples.js';

let server: TestServer;
const folders = new Map<HfFixtureKind, string>();

const importMutation = `mutation($path: String!, $name: String, $version: String, $head: String) {
  importHuggingFace(path: $path, name: $name, version: $version, head: $head) { created model { name } version { version } } }`;

async function fixture(kind: HfFixtureKind): Promise<string> {
  if (!folders.has(kind)) {
    const dir = join(tempDir(), kind);
    await writeHfFixture(kind, dir);
    folders.set(kind, dir);
  }
  return folders.get(kind)!;
}

async function importAndLoad(kind: HfFixtureKind, variables: Record<string, unknown> = {}): Promise<string> {
  const imported = await server.admin(importMutation, { path: await fixture(kind), ...variables });
  assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
  const name = imported.data.importHuggingFace.model.name as string;
  const loaded = await server.admin('mutation($m: String!) { loadModel(model: $m) { name version } }', { m: name });
  assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
  return name;
}

const texts = ['Maria Lopez flew from Madrid to Paris on Monday.', 'The café served naïve crème brûlée 🙂 to everyone.', 'short'];

before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('encoders (WordPiece, byte-level BPE, Unigram, sentence-transformers) import in one call and serve embed and similarity', async () => {
  for (const kind of ['bert', 'roberta', 'xlm-roberta', 'minilm-st'] as const) {
    const name = await importAndLoad(kind);
    assert.equal(name, kind, 'the name defaults to the folder name');
    const embedded = await server.gql('query($t: [String!]!, $m: String) { embed(texts: $t, model: $m) raw: embed(texts: $t, model: $m, normalize: false) similarity(query: "Madrid", candidates: $t, model: $m) }', { t: texts, m: name });
    assert.equal(embedded.errors, undefined, `${kind}: ${JSON.stringify(embedded.errors)}`);
    const vectors = embedded.data.embed as number[][];
    assert.equal(vectors.length, texts.length);
    for (const vector of vectors) assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5, `${kind}: normalised`);
    assert.notDeepEqual(vectors[0], vectors[1], `${kind}: different texts, different embeddings`);
    assert.ok(Math.abs(Math.hypot(...(embedded.data.raw[0] as number[])) - 1) > 1e-3, `${kind}: normalize: false keeps the pooled vector as it is`);
    assert.equal(embedded.data.similarity.length, texts.length);
  }
});

test('a sequence classifier and a token classifier serve classify and entities, with exact character offsets', async () => {
  const sst2 = await importAndLoad('distilbert-sst2');
  const classified = await server.gql('query($t: [String!]!, $m: String) { analyze(texts: $t, model: $m) { tokenCount classify(head: "classification") { label score scores { label score } } } }', { t: texts, m: sst2 });
  assert.equal(classified.errors, undefined, JSON.stringify(classified.errors));
  for (const { classify } of classified.data.analyze) {
    assert.ok(['NEGATIVE', 'POSITIVE'].includes(classify.label));
    assert.ok(Math.abs(classify.scores.reduce((s: number, x: { score: number }) => s + x.score, 0) - 1) < 1e-6, 'softmax');
  }
  const noEmbedding = await server.gql('query($m: String) { embed(texts: ["x"], model: $m) }', { m: sst2 });
  assert.equal(noEmbedding.errors?.[0]?.extensions?.code, 'HEAD_NOT_FOUND');
  assert.match(noEmbedding.errors![0]!.message, /no sentence embedding/);

  const multi = await importAndLoad('bert-multilabel');
  const multiLabel = await server.gql('query($m: String) { analyze(texts: ["one text"], model: $m) { classify(head: "classification") { scores { score } } } }', { m: multi });
  const sum = multiLabel.data.analyze[0].classify.scores.reduce((s: number, x: { score: number }) => s + x.score, 0);
  assert.ok(Math.abs(sum - 1) > 1e-3, `multi_label_classification scores each label with a sigmoid (sum ${sum})`);

  const ner = await importAndLoad('bert-ner');
  const many = Array.from({ length: 20 }, (_, i) => `${texts[i % 2]} Number ${i}: Anna Schmidt met Acme Corp in Berlin.`);
  const found = await server.gql('query($t: [String!]!, $m: String) { entities(texts: $t, model: $m) { text label start end score } }', { t: many, m: ner });
  assert.equal(found.errors, undefined, JSON.stringify(found.errors));
  let count = 0;
  found.data.entities.forEach((entities: Array<{ text: string; start: number; end: number; label: string }>, i: number) => {
    for (const entity of entities) {
      count++;
      assert.equal(many[i]!.slice(entity.start, entity.end), entity.text, 'text.slice(start, end) === entity.text');
      assert.ok(['PER', 'ORG', 'LOC', 'MISC'].includes(entity.label));
      assert.ok(!/^\s|\s$/.test(entity.text));
    }
  });
  assert.ok(count > 0, 'random weights still tag some tokens');
});

test('one request asks several models: the default model and imported ones, each backbone once per text', async () => {
  await importAndLoad('bert-ner');
  await importAndLoad('minilm-st');
  const textsRun = async () => {
    const { batchesRun, meanBatchSize } = (await server.gql('{ server { batchesRun meanBatchSize } }')).data.server;
    return Math.round(batchesRun * meanBatchSize);
  };
  const before = await textsRun();
  const response = await server.gql(`query($t: [String!]!) {
    default: analyze(texts: $t) { sentiment { label } embedding }
    tagged: analyze(texts: $t, model: "bert-ner") { entities { text label } }
    again: entities(texts: $t, model: "bert-ner") { text }
    st: analyze(texts: $t, model: "minilm-st") { embedding }
  }`, { t: texts });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.equal(response.data.default.length, texts.length);
  assert.equal(response.data.st[0].embedding.length, describeHfFixture('minilm-st').hiddenSize);
  assert.notEqual(response.data.default[0].embedding.length, response.data.st[0].embedding.length);
  // Three models, three texts each: nine backbone rows, however many fields asked for them.
  assert.equal((await textsRun()) - before, 3 * texts.length);
});

test('--head sentiment makes an SST-2 model answer sentiment(model:)', async () => {
  const name = await importAndLoad('distilbert-sst2', { name: 'sst2-sentiment', head: 'sentiment' });
  const response = await server.gql('query($m: String) { sentiment(texts: ["A fine film."], model: $m) { label score } }', { m: name });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.ok(['NEGATIVE', 'POSITIVE'].includes(response.data.sentiment[0].label));
});

test('the registry records architecture, sizes, licence, source and every file; the same files again change nothing', async () => {
  const dir = await fixture('bert-ner');
  const again = await server.admin(importMutation, { path: dir });
  assert.equal(again.errors, undefined);
  assert.equal(again.data.importHuggingFace.created, false);
  const record = await server.gql(`{ model(name: "bert-ner") { versions { version license heads { name task reads labels }
    files { path sha256 sizeBytes }
    backbone { name architecture modelType architectures layers hiddenSize vocabSize maxTokens pooling license pretrainedSource { name } } } } }`);
  assert.equal(record.errors, undefined, JSON.stringify(record.errors));
  const [version] = record.data.model.versions;
  assert.equal(version.backbone.modelType, 'bert');
  assert.deepEqual(version.backbone.architectures, ['BertForTokenClassification']);
  assert.equal(version.backbone.layers, 2);
  assert.equal(version.backbone.hiddenSize, 64);
  assert.equal(version.backbone.maxTokens, 128);
  assert.equal(version.heads[0].name, 'entities');
  assert.equal(version.heads[0].reads, 'GRAPH');
  assert.equal(version.heads[0].task, 'TOKEN_CLASSIFICATION');
  const paths = version.files.map((f: { path: string }) => f.path).sort();
  for (const file of ['bundle.json', 'config.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']) {
    if (file !== 'bundle.json') assert.ok(paths.includes(file), `${file} recorded`);
  }
  for (const file of version.files) assert.match(file.sha256, /^[0-9a-f]{64}$/);
});

/** Imports a broken copy of a fixture and expects BUNDLE_INVALID naming `pattern`, with nothing registered. */
async function refused(kind: HfFixtureKind, breakIt: (dir: string) => void, pattern: RegExp) {
  const dir = join(tempDir(), kind);
  await writeHfFixture(kind, dir);
  breakIt(dir);
  const before = await server.db.prisma.modelVersion.count();
  const response = await server.admin(importMutation, { path: dir, name: `broken-${kind}` });
  assert.equal(response.errors?.[0]?.extensions?.code, 'BUNDLE_INVALID', JSON.stringify(response));
  const text = `${response.errors![0]!.message} ${(response.errors![0]!.extensions?.problems ?? []).join(' ')}`;
  assert.match(text, pattern);
  assert.equal(await server.db.prisma.modelVersion.count(), before, 'nothing registered');
  assert.equal(existsSync(join(server.config.bundleDir, 'imported', `broken-${kind}-1.0.0`)), false, 'no bundle folder left');
}

test('bad folders are refused with the file and the field; the server keeps serving', async () => {
  await refused('bert', (dir) => rmSync(join(dir, 'tokenizer.json')), /tokenizer\.json: missing/);
  await refused('bert', (dir) => writeFileSync(join(dir, 'config.json'), '{ not json'), /config\.json: not valid JSON/);
  await refused('bert', (dir) => rmSync(join(dir, 'onnx', 'model.onnx')), /onnx\/model\.onnx: missing/);
  await refused('bert', (dir) => writeFileSync(join(dir, 'onnx', 'model.onnx'), 'garbage'), /onnx\/model\.onnx: not a readable ONNX model/);
  await refused('bert', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, vocab_size: c.vocab_size + 7 })), /config\.json: vocab_size: \d+, but the embedding table/);
  await refused('bert', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, hidden_size: 96 })), /config\.json: hidden_size: 96, but .* width 64/);
  await refused('bert', (dir) => editFixtureJson(dir, 'tokenizer_config.json', (c) => ({ ...c, model_max_length: 4096 })), /tokenizer_config\.json: model_max_length: 4096/);
  await refused('bert', (dir) => editFixtureJson(dir, 'tokenizer.json', (t) => ({ ...t, model: { type: 'WordLevel', vocab: t.model.vocab, unk_token: '[UNK]' } })), /tokenizer\.json: model\.type: "WordLevel" is not supported/);
  await refused('distilbert-sst2', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, id2label: { 0: 'NEGATIVE', 1: 'NEUTRAL', 2: 'POSITIVE' } })), /config\.json: id2label: 3 labels, but .* logits of width 2/);
  await refused('distilbert-sst2', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, architectures: ['DistilBertModel'] })), /outputs: no "last_hidden_state"/);
  await refused('bert', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, architectures: ['BertForSequenceClassification'], id2label: { 0: 'a', 1: 'b' } })), /outputs: no "logits"/);
  await refused('bert', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, is_encoder_decoder: true, architectures: ['MarianMTModel'] })), /onnx\/encoder_model\.onnx: missing/);
  await refused('bert-ner', (dir) => editFixtureJson(dir, 'config.json', (c) => ({ ...c, id2label: Object.fromEntries(Object.keys(c.id2label).map((k) => [k, `TAG_${k}`])) })), /not IOB2 tags/);
  await refused('minilm-st', (dir) => editFixtureJson(dir, '1_Pooling/config.json', (c) => ({ ...c, pooling_mode_mean_tokens: false, pooling_mode_weightedmean_tokens: true })), /1_Pooling\/config\.json: pooling_mode_weightedmean_tokens/);
  const outside = await server.admin(importMutation, { path: '/' });
  assert.equal(outside.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  const anonymous = await server.gql(importMutation, { path: await fixture('bert') });
  assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  const still = await server.gql('{ sentiment(texts: ["Still serving."]) { label } }');
  assert.equal(still.errors, undefined);
});

test('polyhead import-hf registers a folder from the shell, once; a bad one prints its problems and exits 1', async () => {
  const env = { POLYHEAD_DATA_DIR: tempDir(), DATABASE_URL: '', POLYHEAD_LOG: 'silent' };
  const dir = await fixture('roberta');
  const first = await runCliAsync(['import-hf', dir, '--name', 'my-roberta', '--version', '2.0.0', '--license', 'mit', '--source', 'someone/roberta-tiny@abc123'], env);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /registered: my-roberta 2\.0\.0/);
  const second = await runCliAsync(['import-hf', dir, '--name', 'my-roberta', '--version', '2.0.0', '--license', 'mit', '--source', 'someone/roberta-tiny@abc123'], env);
  assert.match(second.stdout, /already registered: my-roberta 2\.0\.0/);
  const broken = join(tempDir(), 'broken');
  await writeHfFixture('bert', broken);
  editFixtureJson(broken, 'config.json', (c) => ({ ...c, vocab_size: 5 }));
  rmSync(join(broken, 'tokenizer_config.json'));
  const bad = await runCliAsync(['import-hf', broken], env);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /BUNDLE_INVALID/);
  assert.match(bad.stderr, /tokenizer_config\.json: missing/);
  const overServer = await runCliAsync(['import-hf', dir, '--name', 'served-roberta', '--server', server.url, '--api-key', testApiKey], {});
  assert.equal(overServer.status, 0, overServer.stderr);
  const record = await server.gql('{ model(name: "served-roberta") { versions { backbone { modelType } } } }');
  assert.equal(record.data.model.versions[0].backbone.modelType, 'roberta');
});

test('trainHead trains a head on an imported encoder, as on USE-lite', async () => {
  const name = await importAndLoad('minilm-st', { name: 'st-topics' });
  const started = await server.admin(
    `mutation($m: String!, $e: [TrainingExampleInput!]) { trainHead(model: $m, head: "topic", task: CLASSIFICATION, labels: ["sports", "cooking", "weather"], examples: $e) { id } }`,
    { m: name, e: topicExamples },
  );
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  const id = started.data.trainHead.id;
  let job: any;
  for (let i = 0; i < 600; i++) {
    job = (await server.gql('query($id: ID!) { trainingJob(id: $id) { status error version } }', { id })).data.trainingJob;
    if (job.status === 'SUCCEEDED' || job.status === 'FAILED') break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.equal(job.status, 'SUCCEEDED', job.error);
  const served = await server.gql('query($m: String) { analyze(texts: ["The striker scored twice."], model: $m) { classify(head: "topic") { label } embedding } }', { m: name });
  assert.equal(served.errors, undefined, JSON.stringify(served.errors));
  assert.ok(['sports', 'cooking', 'weather'].includes(served.data.analyze[0].classify.label));
  const lineage = await server.gql(`{ model(name: "${name}") { version(ref: "${job.version}") { parent { version } backbone { modelType } } } }`);
  assert.equal(lineage.data.model.version.parent.version, '1.0.0');
  assert.equal(lineage.data.model.version.backbone.modelType, 'bert');
});
