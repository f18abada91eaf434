import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseJsonl, readJsonl, toJsonl, writeJsonl } from '../../src/datasets/jsonl.js';

test('toJsonl and parseJsonl round-trip, one value per line', () => {
  const items = [{ text: 'a "quoted"\nline', label: 'positive' }, { text: 'ünïcödé ✓', label: 'negative' }];
  const text = toJsonl(items);
  assert.equal(text.split('\n').length, 3); // two lines and the trailing newline
  assert.deepEqual(parseJsonl(text), items);
  assert.equal(toJsonl([]), '');
});

test('parseJsonl skips blank lines, strips a BOM and names the failing line', () => {
  assert.deepEqual(parseJsonl('\uFEFF{"a":1}\n\n  \n{"a":2}\n'), [{ a: 1 }, { a: 2 }]);
  assert.throws(() => parseJsonl('{"a":1}\n{broken\n'), /JSONL line 2/);
});

test('writeJsonl creates folders and readJsonl reads the file back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jsonl-test-'));
  try {
    const path = join(dir, 'nested', 'items.jsonl');
    await writeJsonl(path, [{ n: 1 }, { n: 2 }]);
    assert.equal(await readFile(path, 'utf8'), '{"n":1}\n{"n":2}\n');
    assert.deepEqual(await readJsonl(path), [{ n: 1 }, { n: 2 }]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
