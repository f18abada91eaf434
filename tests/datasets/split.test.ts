import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng, hashSeed, shuffle, splitDataset, stratifiedSplit } from '../../src/datasets/split.js';

const items = [
  ...Array.from({ length: 700 }, (_, i) => ({ id: i, label: 'positive' })),
  ...Array.from({ length: 300 }, (_, i) => ({ id: 700 + i, label: 'negative' })),
];

test('createRng is deterministic per seed and uniform-ish in [0, 1)', () => {
  const a = createRng(42);
  const b = createRng(42);
  const valuesA = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(valuesA, Array.from({ length: 1000 }, () => b()));
  assert.ok(valuesA.every((v) => v >= 0 && v < 1));
  const mean = valuesA.reduce((s, v) => s + v, 0) / valuesA.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.notDeepEqual(valuesA.slice(0, 10), Array.from({ length: 10 }, createRng(43)));
  assert.equal(hashSeed('polyhead'), hashSeed('polyhead'));
  assert.notEqual(hashSeed('polyhead'), hashSeed('polyheads'));
});

test('shuffle is a deterministic permutation that leaves its input alone', () => {
  const input = Array.from({ length: 50 }, (_, i) => i);
  const once = shuffle(input, createRng('s'));
  assert.deepEqual(shuffle(input, createRng('s')), once);
  assert.deepEqual([...once].sort((x, y) => x - y), input);
  assert.notDeepEqual(once, input);
  assert.deepEqual(input, Array.from({ length: 50 }, (_, i) => i));
});

test('splitDataset is stratified by label, complete and disjoint', () => {
  const { train, validation, test: testSplit } = splitDataset(items, { seed: 7, validation: 0.1, test: 0.2 });
  const count = (split: typeof items, label: string) => split.filter((item) => item.label === label).length;
  assert.equal(count(testSplit, 'positive'), 140);
  assert.equal(count(testSplit, 'negative'), 60);
  assert.equal(count(validation, 'positive'), 70);
  assert.equal(count(validation, 'negative'), 30);
  assert.equal(count(train, 'positive'), 490);
  assert.equal(count(train, 'negative'), 210);
  const ids = [...train, ...validation, ...testSplit].map((item) => item.id).sort((a, b) => a - b);
  assert.deepEqual(ids, items.map((item) => item.id));
});

test('splitDataset is deterministic for a seed and differs across seeds', () => {
  const ids = (seed: number) => {
    const split = splitDataset(items, { seed });
    return [split.train, split.validation, split.test].map((part) => part.map((item) => item.id));
  };
  assert.deepEqual(ids(1), ids(1));
  assert.notDeepEqual(ids(1), ids(2));
  // Defaults are validation 0.1, test 0.2.
  assert.equal(splitDataset(items, { seed: 1 }).test.length, 200);
});

test('stratifiedSplit accepts any key and rejects impossible fractions', () => {
  const split = stratifiedSplit(items, (item) => String(item.id % 3), { seed: 's', validation: 0, test: 0.5 });
  assert.equal(split.validation.length, 0);
  assert.equal(split.test.length + split.train.length, items.length);
  assert.throws(() => splitDataset(items, { seed: 1, validation: 0.5, test: 0.5 }), /sum below 1/);
  assert.throws(() => splitDataset(items, { seed: 1, validation: -0.1 }), /must be >= 0/);
});
