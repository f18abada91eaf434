import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { iobTagSet, iobToSpans, spansToIob, type CharSpan, type TokenOffset } from '../../src/engine/heads/iob.js';
import { readJsonl } from '../../src/datasets/jsonl.js';
import { generateNerExamples } from '../../src/datasets/ner-synthetic.js';

/** Word tokenizer that splits at every non-letter/digit character, keeping offsets. */
function wordOffsets(text: string): TokenOffset[] {
  return [...text.matchAll(/[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu)].map((m) => [m.index!, m.index! + m[0].length] as const);
}

const strip = (spans: ReadonlyArray<CharSpan>) => spans.map(({ start, end, label }) => ({ start, end, label }));

test('iobTagSet lists O then B-/I- per label', () => {
  assert.deepEqual(iobTagSet(['PER', 'ORG', 'LOC']), ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC']);
});

test('spans -> IOB2 -> spans on word tokens', () => {
  const text = "Maria Lopez flew to New York City with Bank of America's CEO.";
  const entities: CharSpan[] = [
    { start: 0, end: 11, label: 'PER' },
    { start: 20, end: 33, label: 'LOC' },
    { start: 39, end: 54, label: 'ORG' },
  ];
  const offsets = wordOffsets(text);
  const tags = spansToIob(entities, offsets);
  assert.deepEqual(tags, ['B-PER', 'I-PER', 'O', 'O', 'B-LOC', 'I-LOC', 'I-LOC', 'O', 'B-ORG', 'I-ORG', 'I-ORG', 'O', 'O', 'O', 'O']);
  assert.deepEqual(iobToSpans(tags, offsets, text), entities);
});

test('adjacent entities of the same type stay separate (B- restarts)', () => {
  const text = 'Paris Berlin';
  const entities: CharSpan[] = [
    { start: 0, end: 5, label: 'LOC' },
    { start: 6, end: 12, label: 'LOC' },
  ];
  const tags = spansToIob(entities, wordOffsets(text));
  assert.deepEqual(tags, ['B-LOC', 'B-LOC']);
  assert.deepEqual(iobToSpans(tags, wordOffsets(text)), entities);
});

test('sub-word tokens: partial overlap takes the label, leading spaces are trimmed, special tokens are O', () => {
  const text = "I met Maria's sister";
  // SentencePiece-like pieces: [CLS], "▁I", "▁met", "▁Mar", "ia's", "▁sister", [SEP]; pieces carry their leading space.
  const offsets: TokenOffset[] = [[0, 0], [0, 1], [1, 5], [5, 9], [9, 13], [13, 20], [0, 0]];
  const tags = spansToIob([{ start: 6, end: 11, label: 'PER' }], offsets);
  assert.deepEqual(tags, ['O', 'O', 'O', 'B-PER', 'I-PER', 'O', 'O']);
  // Back to spans: token edges, with the leading space trimmed; the token-internal "'s" stays (documented).
  assert.deepEqual(iobToSpans(tags, offsets, text), [{ start: 6, end: 13, label: 'PER' }]);
  assert.deepEqual(iobToSpans(tags, offsets), [{ start: 5, end: 13, label: 'PER' }]);
});

test('a token spanning two entities goes to the one that starts first', () => {
  const offsets: TokenOffset[] = [[0, 4], [4, 8], [8, 12]];
  const tags = spansToIob(
    [
      { start: 0, end: 6, label: 'PER' },
      { start: 6, end: 12, label: 'ORG' },
    ],
    offsets,
  );
  assert.deepEqual(tags, ['B-PER', 'I-PER', 'I-ORG']);
});

test('decoding is lenient: I- after O or another type starts an entity; bad tags throw', () => {
  const offsets: TokenOffset[] = [[0, 1], [2, 3], [4, 5], [6, 7]];
  assert.deepEqual(iobToSpans(['I-PER', 'I-PER', 'I-ORG', 'O'], offsets), [
    { start: 0, end: 3, label: 'PER' },
    { start: 4, end: 5, label: 'ORG' },
  ]);
  assert.throws(() => iobToSpans(['X-PER', 'O', 'O', 'O'], offsets), /not an IOB2 tag/);
  assert.throws(() => iobToSpans(['O'], offsets), /1 tags for 4 tokens/);
});

test('round trip is exact for the hand-labelled dev set and generated examples (word tokens)', async () => {
  const dev = await readJsonl<{ text: string; entities: CharSpan[] }>(fileURLToPath(new URL('../../data/ner-dev.jsonl', import.meta.url)));
  const generated = generateNerExamples({ seed: 'iob-round-trip', count: 500 });
  for (const example of [...dev, ...generated]) {
    const offsets = wordOffsets(example.text);
    const tags = spansToIob(example.entities, offsets);
    assert.deepEqual(iobToSpans(tags, offsets, example.text), strip(example.entities), example.text);
  }
});
