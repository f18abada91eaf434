// A fine-tuned backbone's lineage: its parent backbone, datasets, hyperparameters and validation curves, recorded by
// bundle import and browsable through GraphQL (Backbone.parent, children, datasets, validationCurves).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PolyheadError } from '../../src/errors.js';
import { importBundle } from '../../src/registry/bundle-import.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ models: [] });
});
after(() => server.close());

const curves = [
  { task: 'sentiment', epoch: 0, metric: 'accuracy', value: 0.75 },
  { task: 'sentiment', epoch: 1, metric: 'accuracy', value: 0.78, loss: 0.5 },
  { task: 'distillation', epoch: 1, metric: 'mean_cosine_to_pretrained', value: 0.97, loss: 0.03 },
];

function fineTunedBundle(version: string, parentBackbone: { name: string; version: string }) {
  return writeFixtureBundle(tempDir(), {
    name: 'lineage',
    version,
    backboneVersion: `${version}-ft`,
    edit: (m) => {
      m.backbone.parent = parentBackbone;
      m.datasets.push({ name: 'unlabelled-brown', source: 'Brown corpus sentences', license: 'public domain', size: 4000, splits: { train: 4000 } });
      m.backbone.fineTuning = {
        datasets: [
          { name: 'reviews', role: 'training' },
          { name: 'unlabelled-brown', role: 'training' },
          { name: 'reviews', role: 'validation' },
        ],
        hyperparameters: { baseLr: 5e-5, layerDecay: 0.8, epochs: 2, seed: 'x' },
        validationCurves: curves,
      };
    },
  });
}

test('a fine-tuned backbone records its parent, datasets, hyperparameters and curves, and GraphQL shows them both ways', async () => {
  await importBundle(server.db.prisma, writeFixtureBundle(tempDir(), { name: 'lineage', version: '1.0.0' }));
  const child = fineTunedBundle('1.1.0', { name: 'tiny-encoder', version: '1.0.0' });
  const result = await importBundle(server.db.prisma, child);
  assert.equal(result.created, true);

  const answer = await server.gql(`{ model(name: "lineage") { version(ref: "1.1.0") { backbone {
    name version hyperparameters
    parent { name version children { version } parent { name } }
    datasets { role dataset { name } }
    validationCurves { task epoch metric value loss } } } } }`);
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  const backbone = answer.data.model.version.backbone;
  assert.equal(backbone.version, '1.1.0-ft');
  assert.deepEqual(backbone.parent, { name: 'tiny-encoder', version: '1.0.0', children: [{ version: '1.1.0-ft' }], parent: null });
  assert.deepEqual(backbone.datasets.map((d: any) => `${d.dataset.name}:${d.role}`).sort(), ['reviews:TRAINING', 'reviews:VALIDATION', 'unlabelled-brown:TRAINING']);
  assert.deepEqual(backbone.hyperparameters, { baseLr: 5e-5, layerDecay: 0.8, epochs: 2, seed: 'x' });
  assert.deepEqual(backbone.validationCurves, curves.map((c) => ({ loss: null, ...c })));
});

test('an unregistered parent backbone or an undeclared dataset is refused and registers nothing', async () => {
  const before = await server.db.prisma.backbone.count();
  const orphan = fineTunedBundle('2.0.0', { name: 'tiny-encoder', version: '9.9.9' });
  await assert.rejects(importBundle(server.db.prisma, orphan), (error: unknown) => error instanceof PolyheadError && error.code === 'BUNDLE_INVALID' && /backbone\.parent/.test(error.message));
  const undeclared = writeFixtureBundle(tempDir(), {
    version: '2.1.0',
    backboneVersion: '2.1.0-ft',
    edit: (m) => {
      m.backbone.fineTuning = { datasets: [{ name: 'nowhere', role: 'training' }] };
    },
  });
  await assert.rejects(importBundle(server.db.prisma, undeclared), (error: unknown) => error instanceof PolyheadError && /backbone\.fineTuning\.datasets\.0\.name/.test(error.message));
  assert.equal(await server.db.prisma.backbone.count(), before);
});
