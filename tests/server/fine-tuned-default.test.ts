// The fine-tuned default (1.3.0, shipped as a weight delta on the npm weights) is what a fresh server serves; the
// frozen version (1.2.0) stays registered and loadable; the backbone's lineage is browsable; the embedding stays close
// to the pretrained one and the heads answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../../src/bundle/files.js';
import { fineTunedModelSource } from '../../src/bundle/default-bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const texts = ['What is your age?', 'How old are you?', 'The film was a delight from start to finish.', 'Maria Lopez flew from Madrid to Paris on Monday.'];
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));

test('a fresh server serves the fine-tuned 1.3.0, rebuilt from the weight delta to the committed sha256, with its lineage', async () => {
  const { data, errors } = await server.gql(`{
    server { loadedModels { name version backbone } }
    model(name: "default") { versions { version } version { version parent { version }
      backbone { name version fileSha256 parent { name version } datasets { role dataset { name } } validationCurves { task epoch metric value } hyperparameters } } } }`);
  assert.equal(errors, undefined, JSON.stringify(errors));
  assert.deepEqual(data.server.loadedModels[0], { name: 'default', version: '1.3.0', backbone: 'use-lite' });
  const version = data.model.version;
  assert.equal(version.version, '1.3.0');
  assert.equal(version.parent.version, '1.2.0');
  assert.deepEqual(version.backbone.parent, { name: 'use-lite', version: '1.0.0' });
  const expected = JSON.parse(await readFile(join(fineTunedModelSource, 'generated-files.json'), 'utf8'))['backbone.onnx'];
  assert.equal(version.backbone.fileSha256, expected);
  assert.equal(await sha256File(join(server.config.bundleDir, 'default-1.3.0', 'backbone.onnx')), expected);
  const roles = version.backbone.datasets.map((d: any) => `${d.dataset.name}:${d.role}`);
  for (const link of ['pang-lee-sentence-polarity:TRAINING', 'synthetic-ner:TRAINING', 'brown-unlabelled:TRAINING']) assert.ok(roles.includes(link), link);
  const tasks = new Set(version.backbone.validationCurves.map((p: any) => p.task));
  assert.deepEqual([...tasks].sort(), ['distillation', 'entities', 'sentiment']);
  assert.ok(version.backbone.hyperparameters.baseLr > 0);
  assert.deepEqual(data.model.versions.map((v: any) => v.version).sort(), ['1.2.0', '1.3.0']);
});

test('the embedding stays close to the pretrained one, paraphrases still rank first, the heads answer; 1.2.0 loads back', async () => {
  const tuned = await server.gql('query($t: [String!]!) { embed(texts: $t) similarity(query: "How old are you?", candidates: ["What is your age?", "Where do you live?"]) analyze(texts: $t) { sentiment { label } entities { text label } } }', { t: texts });
  assert.equal(tuned.errors, undefined, JSON.stringify(tuned.errors));
  assert.ok(tuned.data.similarity[0] > tuned.data.similarity[1] + 0.1, `paraphrase ${tuned.data.similarity[0]} vs ${tuned.data.similarity[1]}`);
  assert.equal(tuned.data.analyze[2].sentiment.label, 'positive');
  assert.ok(tuned.data.analyze[3].entities.some((e: any) => e.text === 'Maria Lopez' && e.label === 'PER'), JSON.stringify(tuned.data.analyze[3].entities));
  const loaded = await server.admin('mutation { loadModel(model: "default", version: "1.2.0") { version } }');
  assert.equal(loaded.errors, undefined, JSON.stringify(loaded.errors));
  const frozen = await server.gql('query($t: [String!]!) { embed(texts: $t) }', { t: texts });
  const cosines = texts.map((_, i) => cosine(tuned.data.embed[i], frozen.data.embed[i]));
  // The goal figure (mean cosine on 1,000 held-out Brown sentences: 0.960) is measured by scripts/fine-tune-default.ts;
  // sentences like the tasks' own move most (the review sentence here: 0.82).
  assert.ok(Math.min(...cosines) >= 0.8 && cosines.reduce((a, b) => a + b) / cosines.length >= 0.88, `cosines to the pretrained embedding: ${cosines.map((c) => c.toFixed(3))}`);
  assert.ok(cosines.some((c) => c < 0.99999), 'the fine-tuned backbone is not the frozen one');
  await server.admin('mutation { loadModel(model: "default", version: "1.3.0") { version } }');
});
