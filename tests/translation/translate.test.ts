// Translation end to end: a Marian folder in Optimum's layout (merged decoder, and the unmerged pair) imported with
// importHuggingFace, loaded, and answered by translate and analyze { translation } over GraphQL, with its languages
// in the registry; greedy output token-identical to transformers.js, one text at a time and in one request of many;
// typed errors for bad input that leave the rest of the batch alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeMarianFixture } from '../helpers/marian-fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { referenceTranslate } from '../helpers/transformers-reference.js';

let server: TestServer;
let merged: string;
let unmerged: string;
const importMutation = `mutation($path: String!, $name: String) { importHuggingFace(path: $path, name: $name) { created model { name } version { version } } }`;
const texts = ['The house is small.', 'We went to the market on Monday and bought bread.', 'Good morning!', 'She reads a book in the garden while it rains.', 'Thanks'];

before(async () => {
  server = await startTestServer();
  merged = join(tempDir(), 'opus-mt-en-de');
  unmerged = join(tempDir(), 'opus-mt-en-fr');
  await writeMarianFixture('marian-tiny', merged, { layout: 'merged' });
  await writeMarianFixture('marian-tiny', unmerged, { layout: 'unmerged' });
  for (const [path, name] of [[merged, undefined], [unmerged, 'unmerged-en-fr']] as const) {
    const imported = await server.admin(importMutation, { path, name });
    assert.equal(imported.errors, undefined, JSON.stringify(imported.errors));
    const loaded = await server.admin('mutation($m: String!) { loadModel(model: $m) { name heads } }', { m: imported.data.importHuggingFace.model.name });
    assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
  }
});
after(() => server.close());

test('translate answers with the same tokens as transformers.js, one at a time and all in one request; both layouts agree', async () => {
  const reference = await referenceTranslate(merged, texts);
  const expected = reference.results.map((r) => {
    const eos = r.ids.indexOf(0, 1);
    return { ids: r.ids.slice(1, eos < 0 ? undefined : eos), text: r.textToEos };
  });
  const engine = server.engine;
  for (const [i, text] of texts.entries()) {
    const [alone] = await engine.translate('opus-mt-en-de', [text], { beams: 1, maxNewTokens: 64 });
    if (alone instanceof Error) throw alone;
    assert.deepEqual(Array.from(alone.ids), expected[i]!.ids, `alone: ${text}`);
  }
  const together = await server.gql('query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de") { text sourceTokenCount truncated tokenCount } other: translate(texts: $t, model: "unmerged-en-fr") { text } }', { t: texts });
  assert.equal(together.errors, undefined, JSON.stringify(together.errors));
  together.data.translate.forEach((t: { text: string; tokenCount: number; sourceTokenCount: number; truncated: boolean }, i: number) => {
    assert.equal(t.text, expected[i]!.text, texts[i]);
    assert.equal(t.tokenCount, expected[i]!.ids.length);
    assert.ok(t.sourceTokenCount > 1 && !t.truncated);
  });
  assert.deepEqual(together.data.other.map((t: { text: string }) => t.text), together.data.translate.map((t: { text: string }) => t.text), 'the unmerged layout decodes the same weights the same way');
  // transformers.js in one padded batch: its rows match up to their first end-of-sequence (it keeps generating for
  // rows that have finished; Polyhead stops each row at its own).
  const batched = await referenceTranslate(merged, texts, { batch: true });
  batched.results.forEach((r, i) => {
    const eos = r.ids.indexOf(0, 1);
    assert.deepEqual(r.ids.slice(1, eos < 0 ? undefined : eos), expected[i]!.ids, `batched: ${texts[i]}`);
  });
});

test('analyze asks sentiment, entities and a translation of the same texts in one request', async () => {
  const response = await server.gql('query($t: [String!]!) { analyze(texts: $t) { sentiment { label } entities { text } translation(model: "opus-mt-en-de") { text tokenCount } } }', { t: texts.slice(0, 2) });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  for (const row of response.data.analyze) {
    assert.ok(['negative', 'positive'].includes(row.sentiment.label));
    assert.equal(typeof row.translation.text, 'string');
  }
});

test('minNewTokens holds off end-of-sequence: min = max gives exactly max - 1 tokens (the last place is eos)', async () => {
  const response = await server.gql('query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", maxNewTokens: 30, minNewTokens: 30) { tokenCount } }', { t: texts });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.deepEqual(response.data.translate.map((t: { tokenCount: number }) => t.tokenCount), texts.map(() => 29));
});

test('the registry records a translation model with its languages', async () => {
  const record = await server.gql('{ model(name: "opus-mt-en-de") { versions { heads { name task reads sourceLanguage targetLanguage } backbone { modelType architectures } } } }');
  assert.equal(record.errors, undefined, JSON.stringify(record.errors));
  const [version] = record.data.model.versions;
  assert.deepEqual(version.heads, [{ name: 'translation', task: 'GENERATION', reads: 'GRAPH', sourceLanguage: 'en', targetLanguage: 'de' }]);
  assert.equal(version.backbone.modelType, 'marian');
  const listed = await server.gql('{ models(task: GENERATION) { edges { node { name } } } }');
  assert.deepEqual(listed.data.models.edges.map((e: { node: { name: string } }) => e.node.name).sort(), ['opus-mt-en-de', 'unmerged-en-fr']);
});

test('bad input gets typed errors and leaves the rest of the batch alone', async () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", beams: 0) { text } }', { t: ['x'] }, 'BAD_USER_INPUT', /beams/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", beams: 99) { text } }', { t: ['x'] }, 'BAD_USER_INPUT', /beams/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", maxNewTokens: 100000) { text } }', { t: ['x'] }, 'BAD_USER_INPUT', /maxNewTokens/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", maxNewTokens: 0) { text } }', { t: ['x'] }, 'BAD_USER_INPUT', /maxNewTokens/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de") { text } }', { t: ['  '] }, 'BAD_USER_INPUT', /empty text/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de", maxNewTokens: 8, minNewTokens: 9) { text } }', { t: ['x'] }, 'BAD_USER_INPUT', /minNewTokens/],
    ['query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de") { text } }', { t: ['x'.repeat(200_000)] }, 'BAD_USER_INPUT', /characters/],
    ['query($t: [String!]!) { translate(texts: $t, model: "default") { text } }', { t: ['x'] }, 'HEAD_NOT_FOUND', /is an encoder/],
    ['query($t: [String!]!) { translate(texts: $t, model: "nope") { text } }', { t: ['x'] }, 'MODEL_NOT_FOUND', /import/],
    ['query($t: [String!]!) { analyze(texts: $t, model: "opus-mt-en-de") { classify(head: "translation") { label } } }', { t: ['x'] }, 'HEAD_NOT_FOUND', /translation model/],
    ['query($t: [String!]!) { embed(texts: $t, model: "opus-mt-en-de") }', { t: ['x'] }, 'HEAD_NOT_FOUND', /translation model/],
  ];
  const good = server.gql('query($t: [String!]!) { translate(texts: $t, model: "opus-mt-en-de") { text } }', { t: texts });
  for (const [query, variables, code, message] of cases) {
    const response = await server.gql(query, variables);
    assert.equal(response.errors?.[0]?.extensions?.code, code, `${query}: ${JSON.stringify(response.errors)}`);
    assert.match(response.errors![0]!.message, message);
  }
  const answered = await good;
  assert.equal(answered.errors, undefined);
  assert.equal(answered.data.translate.length, texts.length);
  const metrics = await (await fetch(new URL('/metrics', server.url))).text();
  assert.match(metrics, /polyhead_generated_tokens_total\{model="opus-mt-en-de"\} [1-9]/);
  assert.match(metrics, /polyhead_generation_step_rows_count\{model="opus-mt-en-de"\} [1-9]/);
});
