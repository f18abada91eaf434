import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accuracy, spanMetrics } from '../../src/training/metrics.js';
import { validateClassificationExamples, validateTokenClassificationExamples, ExampleValidationError } from '../../src/training/heads.js';

test('span metrics: exact start, end and label; per label and micro', () => {
  const gold = [
    [{ start: 0, end: 11, label: 'PER' }, { start: 26, end: 31, label: 'ORG' }, { start: 48, end: 54, label: 'LOC' }],
    [{ start: 0, end: 5, label: 'LOC' }],
    [],
  ];
  const predicted = [
    // PER exact (tp), ORG with a wrong end (fp + fn), LOC with a wrong label (PER fp, LOC fn)
    [{ start: 0, end: 11, label: 'PER' }, { start: 26, end: 30, label: 'ORG' }, { start: 48, end: 54, label: 'PER' }],
    [{ start: 0, end: 5, label: 'LOC' }],
    [{ start: 3, end: 7, label: 'ORG' }],
  ];
  const m = spanMetrics(gold, predicted);
  assert.deepEqual([m.micro.tp, m.micro.fp, m.micro.fn], [2, 3, 2]);
  assert.equal(m.micro.precision, 2 / 5);
  assert.equal(m.micro.recall, 2 / 4);
  assert.ok(Math.abs(m.micro.f1 - (2 * 0.4 * 0.5) / 0.9) < 1e-12);
  assert.deepEqual({ ...m.perLabel.PER }, { precision: 0.5, recall: 1, f1: 2 / 3, tp: 1, fp: 1, fn: 0, support: 1 });
  assert.deepEqual({ ...m.perLabel.ORG }, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 2, fn: 1, support: 1 });
  assert.deepEqual({ ...m.perLabel.LOC }, { precision: 1, recall: 0.5, f1: 2 / 3, tp: 1, fp: 0, fn: 1, support: 2 });
  assert.equal(m.goldSpans, 4);
});

test('accuracy ignores negative targets', () => {
  assert.equal(accuracy([1, 0, 1, 1], [1, 1, -1, 1]), 2 / 3);
});

test('bad examples are refused before any work', () => {
  assert.throws(() => validateClassificationExamples([{ text: 'fine', label: 'positive' }, { text: ' ', label: 'meh' }], ['negative', 'positive']), (error: unknown) => {
    assert.ok(error instanceof ExampleValidationError);
    const messages = error.problems.map((p) => p.message).join(' | ');
    assert.match(messages, /empty text/);
    assert.match(messages, /unknown label "meh"/);
    assert.match(messages, /label "negative" has 0 examples/);
    return true;
  });
  assert.throws(() => validateTokenClassificationExamples([{ text: 'Maria', entities: [{ start: 0, end: 9, label: 'PER' }] }], ['PER']), /not inside the text/);
});
