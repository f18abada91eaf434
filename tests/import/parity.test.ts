// Parity with the reference: Polyhead's token ids, embeddings, labels, scores and entities on imported Hugging Face
// folders, against what transformers.js (@huggingface/transformers, run in its own process, remote models off)
// gives on the same folders and texts. Every fixture architecture is covered: BERT/WordPiece, RoBERTa/byte-level
// BPE, XLM-R/Unigram, sentence-transformers (mean and CLS pooling), DistilBERT sequence classification, BERT
// multi-label classification and BERT token classification.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import type { Classification, Entity } from '../../src/engine/heads/head.js';
import { decodeEntities } from '../../src/engine/heads/token-classification.js';
import type { TextResult } from '../../src/engine/serving-model.js';
import type { HuggingFaceTokenizer } from '../../src/engine/tokenizers/huggingface.js';
import { planHuggingFaceImport, writeBundle } from '../../src/import/huggingface/import-hf.js';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHfFixture, type HfFixtureKind, type HfFixtureOptions } from '../helpers/hf-fixtures.js';
import { runReference } from '../helpers/transformers-reference.js';

const long = Array.from({ length: 60 }, (_, i) => `word${i} and more text`).join(' ');
/** Texts that exercise the tokenizers: accents, emoji, CJK, lone surrogates, whitespace only, a text that truncates. */
const texts = [
  'Maria Lopez flew from Madrid to Paris on Monday.',
  'The café served naïve crème brûlée; ÅNGSTRÖM façade.',
  'Emoji 🙂 and a family 👩‍👩‍👧 in one sentence!',
  'A lone \uD800 surrogate and another \uDC00 one.',
  'CJK 東京 and 한국어 text.',
  '   \t  ',
  'short',
  long,
];

interface Fixture {
  kind: HfFixtureKind;
  options?: HfFixtureOptions;
  name: string;
  dir: string;
  maxTokens: number;
  pooling: string;
}

const engine = Engine.withDefaults();
const fixtures = new Map<string, Fixture>();

async function add(name: string, kind: HfFixtureKind, options?: HfFixtureOptions) {
  const dir = join(tempDir(), name);
  await writeHfFixture(kind, dir, options);
  const plan = await planHuggingFaceImport(dir, { name });
  const bundle = join(tempDir(), 'bundle');
  await writeBundle(plan.root, plan.manifest, plan.files, bundle);
  await engine.load(name, bundle);
  fixtures.set(name, { kind, options, name, dir, maxTokens: plan.manifest.backbone.maxTokens, pooling: plan.manifest.backbone.pooling });
}

before(async () => {
  await add('bert', 'bert');
  await add('roberta', 'roberta');
  await add('xlm-roberta', 'xlm-roberta');
  await add('minilm-mean', 'minilm-st', { pooling: 'mean' });
  await add('minilm-cls', 'minilm-st', { pooling: 'cls' });
  await add('minilm-max', 'minilm-st', { pooling: 'max' });
  await add('sst2', 'distilbert-sst2');
  await add('multilabel', 'bert-multilabel');
  await add('ner', 'bert-ner');
});
after(() => engine.close());

async function polyhead(name: string, heads: string[]): Promise<TextResult[]> {
  const results = await engine.infer(name, texts, { heads });
  return results.map((r) => {
    if (r instanceof Error) throw r;
    return r;
  });
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

const figures: Record<string, string> = {};
after(() => console.log(figures));

test('token ids equal transformers.js on every tokenizer kind, truncation included', async () => {
  for (const fixture of fixtures.values()) {
    const model = engine.get(fixture.name);
    const ours = await model.backbone.encodeBatch(texts);
    const [reference] = await runReference([{ op: 'tokenize', model: fixture.dir, texts, truncation: { maxLength: fixture.maxTokens } }] as const);
    texts.forEach((text, i) => {
      const mine = Array.from(ours[i]!.ids);
      const theirs = reference.ids[i]!;
      if (!ours[i]!.truncated) {
        assert.deepEqual(mine, theirs, `${fixture.name}: ${JSON.stringify(text)}`);
        if (reference.typeIds) assert.deepEqual(Array.from(ours[i]!.typeIds ?? mine.map(() => 0)), reference.typeIds[i], `${fixture.name}: type ids`);
      } else {
        // transformers.js cuts at max_length with the special tokens inside the cut (the final [SEP] / </s> goes);
        // Polyhead keeps them, as the tokenizers library and Python's transformers do. All else is the same.
        assert.equal(mine.length, fixture.maxTokens);
        assert.deepEqual(mine.slice(0, -1), theirs.slice(0, mine.length - 1), `${fixture.name}: the truncated text`);
        assert.equal(ours[i]!.special?.[mine.length - 1], 1, `${fixture.name}: ends with its special token`);
        assert.ok(ours[i]!.tokenCount > fixture.maxTokens);
      }
      // Offsets index the original text: in range, non-decreasing, special tokens empty.
      let last = 0;
      ours[i]!.offsets.forEach(([start, end], t) => {
        if (ours[i]!.special?.[t]) return assert.deepEqual([start, end], [0, 0]);
        assert.ok(start >= last && start <= end && end <= text.length, `${fixture.name}: offset ${t} [${start}, ${end}) of ${JSON.stringify(text)}`);
        last = start;
      });
    });
    figures[`${fixture.name} ids`] = `${texts.length} texts equal`;
  }
});

test('embeddings equal transformers.js feature-extraction with the same pooling (cosine >= 0.9999)', async () => {
  for (const fixture of fixtures.values()) {
    if (fixture.pooling === 'none') continue; // task models: no sentence embedding
    const ours = await polyhead(fixture.name, []);
    // transformers.js truncates differently (see above): compare the texts that fit.
    const fitting = texts.filter((_, i) => !ours[i]!.truncated);
    const pooling = fixture.pooling === 'max' ? 'none' : (fixture.pooling as 'mean' | 'cls');
    const [reference] = await runReference([{ op: 'embed', model: fixture.dir, texts: fitting, pooling, normalize: false }] as const);
    let worst = 1;
    fitting.forEach((text, i) => {
      const mine = ours[texts.indexOf(text)]!.embedding!;
      let theirs = reference.embeddings[i] as number[] | number[][];
      if (fixture.pooling === 'max') {
        // The reference has no max pooling: its token states, pooled here over every token (no padding in one text).
        const states = theirs as number[][];
        theirs = states[0]!.map((_, d) => Math.max(...states.map((row) => row[d]!)));
      }
      const c = cosine(mine, theirs as number[]);
      worst = Math.min(worst, c);
      assert.ok(c >= 0.9999, `${fixture.name}: cosine ${c} for ${JSON.stringify(text)}`);
      const scale = Math.hypot(...(theirs as number[]));
      assert.ok(Math.abs(Math.hypot(...mine) - scale) <= 1e-3 * scale, `${fixture.name}: same length, not only direction`);
    });
    figures[`${fixture.name} embedding`] = `min cosine ${worst.toFixed(7)} over ${fitting.length} texts`;
  }
});

test('sequence classification: labels and scores equal transformers.js text-classification (softmax, and sigmoid for multi-label) within 1e-4', async () => {
  for (const name of ['sst2', 'multilabel']) {
    const fixture = fixtures.get(name)!;
    const ours = await polyhead(name, ['classification']);
    const fitting = texts.filter((_, i) => !ours[i]!.truncated);
    const [reference] = await runReference([{ op: 'classify', model: fixture.dir, texts: fitting }] as const);
    assert.equal(reference.function, name === 'multilabel' ? 'sigmoid' : 'softmax');
    let worst = 0;
    fitting.forEach((text, i) => {
      const mine = ours[texts.indexOf(text)]!.heads.get('classification') as Classification;
      const theirs = reference.results[i]!;
      assert.equal(mine.label, theirs[0]!.label, `${name}: label of ${JSON.stringify(text)}`);
      for (const { label, score } of theirs) {
        const diff = Math.abs(mine.scores.find((s) => s.label === label)!.score - score);
        worst = Math.max(worst, diff);
        assert.ok(diff <= 1e-4, `${name}: ${label} differs by ${diff}`);
      }
    });
    figures[`${name} scores`] = `max |diff| ${worst.toExponential(2)} over ${fitting.length} texts`;
  }
});

test('token classification: per-token tags and scores equal transformers.js; entities carry exact offsets', async () => {
  const fixture = fixtures.get('ner')!;
  const many = [...texts.slice(0, 5), ...Array.from({ length: 15 }, (_, i) => `Anna Schmidt (${i}) met the Acme Corporation in Berlin and New York.`)];
  const results = await engine.infer('ner', many, { heads: ['entities'] });
  const encodings = await engine.get('ner').backbone.encodeBatch(many);
  const [reference] = await runReference([{ op: 'tokens', model: fixture.dir, texts: many, ignoreLabels: [] }] as const);
  const unknownId = (engine.get('ner').backbone.tokenizer as HuggingFaceTokenizer).tokenId('[UNK]');
  let entityCount = 0;
  let unknownTokens = 0;
  let worst = 0;
  many.forEach((text, i) => {
    const result = results[i]!;
    if (result instanceof Error) throw result;
    const encoding = encodings[i]!;
    // The reference's per-token tags and scores, placed at their token positions (special tokens are 'O').
    const tags = Array.from(encoding.ids, () => 'O');
    const scores = new Float64Array(encoding.ids.length);
    const reported = new Set<number>();
    for (const token of reference.none[i]!) {
      tags[token.index] = token.entity;
      scores[token.index] = token.score;
      reported.add(token.index);
    }
    // transformers.js leaves out [UNK] tokens along with the special ones (it skips all_special_ids); Python's
    // pipeline, and Polyhead, tag them. Entities touching an [UNK] token are compared on neither side.
    const unknownSpans = encoding.offsets.filter((_, t) => !encoding.special?.[t] && !reported.has(t));
    encoding.offsets.forEach((_, t) => {
      if (encoding.special?.[t] || reported.has(t)) return;
      assert.equal(encoding.ids[t], unknownId, `token ${t} of ${JSON.stringify(text)} is missing from the reference and is not [UNK]`);
      unknownTokens++;
    });
    const clear = (e: Entity) => !unknownSpans.some(([start, end]) => start < e.end && end > e.start);
    // What Polyhead's decoding (sub-words merged into whole words, spans from the offsets) makes of the reference's tags.
    const expected = decodeEntities(text, encoding.offsets, tags, scores).filter(clear);
    const all = result.heads.get('entities') as Entity[];
    for (const entity of all) assert.equal(text.slice(entity.start, entity.end), entity.text);
    const mine = all.filter(clear);
    assert.deepEqual(mine.map(({ text, label, start, end }) => ({ text, label, start, end })), expected.map(({ text, label, start, end }) => ({ text, label, start, end })), JSON.stringify(text));
    mine.forEach((entity, k) => {
      worst = Math.max(worst, Math.abs(entity.score - expected[k]!.score));
      assert.ok(Math.abs(entity.score - expected[k]!.score) <= 1e-4);
      assert.equal(text.slice(entity.start, entity.end), entity.text, 'text.slice(start, end) === entity.text');
      assert.doesNotMatch(entity.text, /^\s|\s$/);
    });
    entityCount += mine.length;
  });
  assert.ok(entityCount > 0, 'the fixture tags some tokens');
  figures['ner entities'] = `${entityCount} entities over ${many.length} texts equal, max score |diff| ${worst.toExponential(2)} (${unknownTokens} [UNK] tokens left out)`;
});
