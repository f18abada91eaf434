import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PANG_LEE_METADATA,
  PangLeeFetchError,
  detokenizePangLee,
  loadPangLeeSentences,
  parsePangLeeCsv,
  readPangLeeCacheMeta,
  splitDataset,
} from '../../src/datasets/pang-lee.js';
import { parseCsv } from '../../src/datasets/csv.js';

// Same shape as the corpus file: BOM, quoted fields, doubled quotes, a newline inside the quotes.
const FIXTURE =
  '\uFEFF"1","the rock is destined to be the 21st century\'s new "" conan "" . \n"\r\n' +
  '"-1","simplistic , silly and tedious . \n"\n' +
  '"1","effective but too-tepid biopic\n"\n';

test('parseCsv handles BOM, quotes, doubled quotes, embedded newlines and CRLF', () => {
  assert.deepEqual(parseCsv(FIXTURE), [
    ['1', 'the rock is destined to be the 21st century\'s new " conan " . \n'],
    ['-1', 'simplistic , silly and tedious . \n'],
    ['1', 'effective but too-tepid biopic\n'],
  ]);
  assert.deepEqual(parseCsv('a,b\n,c'), [['a', 'b'], ['', 'c']]);
  assert.throws(() => parseCsv('"open'), /unterminated/);
});

test('parsePangLeeCsv maps 1/-1 to positive/negative, trims text and checks the counts', () => {
  assert.deepEqual(parsePangLeeCsv(FIXTURE, { expectedPerLabel: 0 }), [
    { text: 'the rock is destined to be the 21st century\'s new " conan " .', label: 'positive' },
    { text: 'simplistic , silly and tedious .', label: 'negative' },
    { text: 'effective but too-tepid biopic', label: 'positive' },
  ]);
  assert.throws(() => parsePangLeeCsv(FIXTURE), /expected 2000 each/);
  assert.throws(() => parsePangLeeCsv('"0","neutral"\n', { expectedPerLabel: 0 }), /unknown label/);
});

test('detokenizePangLee joins punctuation and capitalises the first letter', () => {
  assert.equal(
    detokenizePangLee('the rock is destined to be the 21st century\'s new " conan " , and ( mostly ) fun .'),
    'The rock is destined to be the 21st century\'s new "conan", and (mostly) fun.',
  );
});

test('metadata names the source and the licence', () => {
  assert.equal(PANG_LEE_METADATA.name, 'pang-lee-sentence-polarity');
  assert.match(PANG_LEE_METADATA.source, /^Debian python3-pattern .* test corpora; Pang & Lee 2005 \(sentence polarity v1\.0 subset\)$/);
  assert.match(PANG_LEE_METADATA.license, /personal use/);
  assert.equal(PANG_LEE_METADATA.redistributable, false);
});

// Fetches the Debian package (apt-get download + dpkg -x) unless .cache/datasets already holds it.
test('loadPangLeeSentences gives 4,000 sentences, 2,000 per label', { timeout: 300_000 }, async (t) => {
  let sentences;
  try {
    sentences = await loadPangLeeSentences();
  } catch (error) {
    if (error instanceof PangLeeFetchError) {
      t.skip(`python3-pattern could not be fetched (no apt mirror reachable?): ${error.message}`);
      return;
    }
    throw error;
  }
  assert.equal(sentences.length, 4000);
  assert.equal(sentences.filter((s) => s.label === 'positive').length, 2000);
  assert.equal(sentences.filter((s) => s.label === 'negative').length, 2000);
  assert.equal(new Set(sentences.map((s) => s.text)).size, 4000);
  assert.ok(sentences.every((s) => s.text.length > 0 && s.text === s.text.trim()));
  assert.match(sentences[0]!.text, /^the rock is destined/);
  const meta = await readPangLeeCacheMeta();
  assert.equal(meta?.count, 4000);
  assert.match(meta!.csvSha256, /^[0-9a-f]{64}$/);

  const split = splitDataset(sentences, { seed: 42, validation: 0.1, test: 0.2 });
  assert.deepEqual([split.train.length, split.validation.length, split.test.length], [2800, 400, 800]);
  assert.equal(split.test.filter((s) => s.label === 'positive').length, 400);
});
