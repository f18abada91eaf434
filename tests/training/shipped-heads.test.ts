// The heads shipped in models/default: declared in bundle.json, present, loadable by the engine, and sensible
// on a few obvious sentences (served through the engine exactly as GraphQL requests are).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { defaultModelSource, ensureDefaultBundle } from '../../src/bundle/default-bundle.js';
import { parseBundleManifest } from '../../src/bundle/manifest.js';
import { Engine } from '../../src/engine/engine.js';
import type { Classification, Entity } from '../../src/engine/heads/head.js';
import { packageRoot } from '../../src/paths.js';

const manifest = parseBundleManifest(readFileSync(join(defaultModelSource, 'bundle.json'), 'utf8'));
let engine: Engine;

before(async () => {
  const dir = await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'));
  engine = Engine.withDefaults();
  await engine.load('default', dir, manifest.version);
});
after(() => engine?.close());

test('bundle.json declares the sentiment and entities heads with their data and evaluations', () => {
  const sentiment = manifest.heads.find((h) => h.name === 'sentiment');
  const entities = manifest.heads.find((h) => h.name === 'entities');
  assert.deepEqual(sentiment && { task: sentiment.task, labels: sentiment.labels, reads: sentiment.reads }, { task: 'classification', labels: ['negative', 'positive'], reads: 'pooled' });
  assert.deepEqual(entities && { task: entities.task, labels: entities.labels, reads: entities.reads }, {
    task: 'token_classification',
    labels: ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'],
    reads: 'tokens',
  });
  for (const head of [sentiment!, entities!]) {
    const file = join(defaultModelSource, head.file!);
    assert.ok(existsSync(file), `${head.file} is committed`);
    assert.ok(statSync(file).size < 2_000_000, `${head.file} is small`);
    assert.ok(manifest.evaluations.some((e) => e.head === head.name), `${head.name} has evaluations`);
  }
  assert.ok(manifest.heads.some((h) => h.name === 'embedding'));
});

test('sentiment: obvious sentences get the obvious label', async () => {
  const texts = ['I loved this movie', 'A wonderful, moving film with brilliant performances.', 'This was a terrible, boring waste of time.', 'I hated it.'];
  const results = await engine.infer('default', texts, { heads: ['sentiment'] });
  const labels = results.map((r) => {
    assert.ok(!(r instanceof Error), String(r));
    return (r.heads.get('sentiment') as Classification).label;
  });
  assert.deepEqual(labels, ['positive', 'positive', 'negative', 'negative']);
});

test('entities: people and places with exact character offsets', async () => {
  const texts = ['Maria Lopez visited Madrid', 'Maria Lopez loved the new Pixar film she saw in Madrid.'];
  const results = await engine.infer('default', texts, { heads: ['entities'] });
  const spans = results.map((r) => {
    assert.ok(!(r instanceof Error), String(r));
    return (r.heads.get('entities') as Entity[]).map(({ text, label, start, end }) => ({ text, label, start, end }));
  });
  assert.deepEqual(spans[0], [
    { text: 'Maria Lopez', label: 'PER', start: 0, end: 11 },
    { text: 'Madrid', label: 'LOC', start: 20, end: 26 },
  ]);
  // The example sentence (also the first line of data/ner-dev.jsonl, so not tuned on): the two
  // entities that matter must be found exactly; other predictions are left to the dev-set figures.
  assert.ok(spans[1]!.some((s) => s.label === 'PER' && s.start === 0 && s.end === 11), JSON.stringify(spans[1]));
  assert.ok(spans[1]!.some((s) => s.label === 'LOC' && s.start === 48 && s.end === 54), JSON.stringify(spans[1]));
  for (const [i, list] of spans.entries()) for (const s of list) assert.equal(texts[i]!.slice(s.start, s.end), s.text);
});
