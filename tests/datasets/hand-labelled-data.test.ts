// Checks the hand-written evaluation sets in data/ (never used for training).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readJsonl } from '../../src/datasets/jsonl.js';

interface DevEntity {
  start: number;
  end: number;
  label: string;
  text: string;
}

const dataPath = (name: string) => fileURLToPath(new URL(`../../data/${name}`, import.meta.url));

test('ner-dev.jsonl: every offset slices to the intended entity text', async () => {
  const dev = await readJsonl<{ text: string; entities: DevEntity[] }>(dataPath('ner-dev.jsonl'));
  assert.ok(dev.length >= 110, `${dev.length} sentences`);
  for (const [index, { text, entities }] of dev.entries()) {
    assert.equal(typeof text, 'string');
    let previousEnd = 0;
    for (const entity of entities) {
      const where = `line ${index + 1}: ${JSON.stringify(entity)} in ${JSON.stringify(text)}`;
      assert.ok(['PER', 'ORG', 'LOC'].includes(entity.label), where);
      assert.ok(Number.isInteger(entity.start) && Number.isInteger(entity.end), where);
      assert.ok(entity.start >= previousEnd && entity.end > entity.start && entity.end <= text.length, where);
      assert.equal(text.slice(entity.start, entity.end), entity.text, where);
      assert.equal(entity.text.trim(), entity.text, where);
      previousEnd = entity.end;
    }
  }
  assert.equal(new Set(dev.map((d) => d.text)).size, dev.length, 'duplicate sentence');
  const entityFree = dev.filter((d) => d.entities.length === 0).length;
  assert.ok(entityFree >= 0.05 * dev.length && entityFree <= 0.2 * dev.length, `${entityFree} entity-free`);
  const labels = dev.flatMap((d) => d.entities.map((e) => e.label));
  for (const label of ['PER', 'ORG', 'LOC']) assert.ok(labels.filter((l) => l === label).length >= 30, label);
});

test('sentiment-ood.jsonl: at least 120 unique sentences, balanced labels', async () => {
  const ood = await readJsonl<{ text: string; label: string }>(dataPath('sentiment-ood.jsonl'));
  assert.ok(ood.length >= 120, `${ood.length} sentences`);
  assert.ok(ood.every((o) => typeof o.text === 'string' && o.text.trim() === o.text && o.text.length > 0));
  assert.ok(ood.every((o) => o.label === 'negative' || o.label === 'positive'));
  const positives = ood.filter((o) => o.label === 'positive').length;
  assert.equal(positives, ood.length - positives);
  assert.equal(new Set(ood.map((o) => o.text.toLowerCase())).size, ood.length, 'duplicate sentence');
});
