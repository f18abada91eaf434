import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadBrownEntityFreeSentences } from '../../src/datasets/brown.js';
import { readJsonl } from '../../src/datasets/jsonl.js';
import { loadGazetteers } from '../../src/datasets/ner-gazetteers.js';
import { assertValidExample, generateNerExamples, parseTemplate, type NerExample } from '../../src/datasets/ner-synthetic.js';
import { TEMPLATES, TEMPLATE_GROUPS } from '../../src/datasets/ner-templates.js';

const examples = generateNerExamples({ seed: 2024, count: 3000 });
const labelsOf = (list: NerExample[]) => list.flatMap((e) => e.entities.map((entity) => entity.label));

test('at least 150 templates, all parse, in every group', () => {
  assert.ok(TEMPLATES.length >= 150, `${TEMPLATES.length} templates`);
  assert.equal(new Set(TEMPLATES.map((t) => t.template)).size, TEMPLATES.length, 'duplicate template');
  for (const { template } of TEMPLATES) parseTemplate(template);
  for (const [group, list] of Object.entries(TEMPLATE_GROUPS)) assert.ok(list.length >= 10, group);
  assert.throws(() => parseTemplate('Hello {NAME}.'), /unknown slot/);
  assert.throws(() => parseTemplate('Hello [Bob|PERSON].'), /malformed/);
});

test('generator is deterministic for a seed and differs across seeds', () => {
  assert.deepEqual(generateNerExamples({ seed: 2024, count: 3000 }), examples);
  assert.deepEqual(generateNerExamples({ seed: 2024, count: 50 }), examples.slice(0, 50));
  assert.notDeepEqual(generateNerExamples({ seed: 2025, count: 50 }), examples.slice(0, 50));
  assert.equal(generateNerExamples({ seed: 1, count: 0 }).length, 0);
});

test('every generated span is valid: in range, sorted, non-overlapping, trimmed, known label', () => {
  assert.equal(examples.length, 3000);
  for (const example of examples) {
    assertValidExample(example);
    for (const entity of example.entities) {
      const span = example.text.slice(entity.start, entity.end);
      assert.ok(span.length > 0 && !/^the /i.test(span), `${JSON.stringify(span)} in ${example.text}`);
    }
  }
});

test('the mix has all labels, multi-word entities, possessives, entity-free sentences and case noise', () => {
  const labels = labelsOf(examples);
  for (const label of ['PER', 'ORG', 'LOC']) assert.ok(labels.filter((l) => l === label).length > 500, label);
  const spans = examples.flatMap((e) => e.entities.map((entity) => e.text.slice(entity.start, entity.end)));
  assert.ok(spans.filter((s) => s.includes(' ')).length > 1000, 'multi-word entities');
  assert.ok(examples.some((e) => e.entities.some((entity) => e.text.startsWith("'s", entity.end))), 'possessive');
  assert.ok(examples.some((e) => e.entities.some((entity) => entity.start === 0)), 'entity at sentence start');
  assert.ok(examples.some((e) => e.entities.some((entity) => entity.end === e.text.length - 1)), 'entity before final punctuation');
  const entityFree = examples.filter((e) => e.entities.length === 0).length;
  assert.ok(entityFree > 0.08 * examples.length && entityFree < 0.3 * examples.length, `${entityFree} entity-free`);
  assert.ok(examples.some((e) => e.text === e.text.toLowerCase() && e.entities.length > 0), 'lower-cased example');
  // Context decides: the literal "Jordan" is a person in one template and a country in another.
  const jordan = examples.flatMap((e) => e.entities.filter((x) => e.text.slice(x.start, x.end) === 'Jordan').map((x) => x.label));
  assert.ok(jordan.includes('PER') && jordan.includes('LOC'), 'Jordan as PER and LOC');
});

test('Brown filler sentences contain no capitalised word after the first (no hidden names)', () => {
  const brown = loadBrownEntityFreeSentences();
  assert.ok(brown.length > 5000, `${brown.length} Brown sentences`);
  for (const sentence of brown) {
    const words = sentence.split(' ').map((word) => word.replace(/[^\p{L}]+$/u, ''));
    assert.ok(words.slice(1).every((w) => /^I('\p{L}+)?$/u.test(w) || !/^\p{Lu}/u.test(w)) && /^\p{Lu}/u.test(sentence), sentence);
  }
});

test('gazetteers are loaded from the packages and are non-trivial', () => {
  const g = loadGazetteers();
  assert.ok(g.nameLocales.length >= 15);
  assert.ok(g.majorCities.length > 1000 && g.usCities.length > 500 && g.countries.length > 200);
  assert.ok(g.countries.includes('France') && g.countries.includes('the United Kingdom'));
  assert.equal(g.usStates.length, 50);
  for (const list of [g.majorCities, g.companies, g.airlines]) assert.deepEqual([...list].sort(), list, 'sorted');
});

test('hand-labelled dev sentences never appear in the generated data', async () => {
  const dev = await readJsonl<{ text: string }>(fileURLToPath(new URL('../../data/ner-dev.jsonl', import.meta.url)));
  const generated = new Set(examples.map((e) => e.text));
  assert.deepEqual(dev.filter((d) => generated.has(d.text)).map((d) => d.text), []);
});
