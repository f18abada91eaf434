// The transformers.js reference (tests/helpers/transformers-reference.ts) answers all four ops on Hugging Face
// layout folders, and its answers are what the folder's weights say (checked by hand here, so a parity test that
// compares Polyhead with it compares with the right thing). Those folders are tiny and written here: a BERT-style
// WordPiece tokenizer and ONNX graphs whose outputs are easy to compute (embedding lookups, a linear head). The last
// test runs the reference on every small kind of the project's fixture generator (tests/helpers/hf-fixtures.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxGraphBuilder } from '../../src/onnx/graph-builder.js';
import { tempDir } from '../helpers/bundle-fixture.js';
import { SMALL_HF_FIXTURE_KINDS, writeHfFixture, type HfFixtureInfo } from '../helpers/hf-fixtures.js';
import {
  referenceClassify,
  referenceEmbed,
  referenceTokenClassification,
  referenceTokenize,
  runJob,
  runReference,
  type ClassifyResult,
  type EmbedResult,
  type ReferenceOp,
  type TokenizeResult,
  type TokensResult,
} from '../helpers/transformers-reference.js';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const WORDS = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'play', '##ing', '##s', 'john', 'lives', 'in', 'paris', 'new', 'york', 'hello', 'world', '.', ',', '!'];
const VOCAB = [...SPECIALS, ...WORDS];
const id = (token: string) => VOCAB.indexOf(token);
const HIDDEN = 6;

type TinyKind = 'embed' | 'classify' | 'multilabel' | 'ner';
interface TinyModel {
  dir: string;
  word: Float32Array; // [vocab, hidden]
  type: Float32Array; // [2, hidden]
  weight?: Float32Array; // [hidden, labels]
  bias?: Float32Array;
  labels?: string[];
}

function seeded(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

function tokenizerJson() {
  const special = (content: string) => ({ id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const token = (name: string) => ({ id: name, ids: [id(name)], tokens: [name] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': token('[CLS]'), '[SEP]': token('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])),
    },
  };
}

/** A BERT-layout folder whose onnx/model.onnx computes hidden = (word[ids] + type[token_type_ids]) * mask, then per kind a head. */
function writeTinyModel(dir: string, kind: TinyKind): TinyModel {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const labels = kind === 'ner' ? ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'] : kind === 'multilabel' ? ['sports', 'politics', 'food'] : kind === 'classify' ? ['NEGATIVE', 'POSITIVE'] : undefined;
  const model: TinyModel = { dir, word: seeded(VOCAB.length * HIDDEN, 11), type: seeded(2 * HIDDEN, 12, 0.1) };
  const g = new OnnxGraphBuilder({ name: `tiny-${kind}` });
  g.input('input_ids', 'int64', ['batch', 'sequence']);
  g.input('attention_mask', 'int64', ['batch', 'sequence']);
  g.input('token_type_ids', 'int64', ['batch', 'sequence']);
  const words = g.op('Gather', [g.initializer('word_embeddings', model.word, [VOCAB.length, HIDDEN]), 'input_ids']);
  const types = g.op('Gather', [g.initializer('type_embeddings', model.type, [2, HIDDEN]), 'token_type_ids']);
  const mask = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { attrs: { to: 1 } }), g.int64s('last_axis', [-1])]);
  const hidden = g.op('Mul', [g.op('Add', [words, types]), mask], kind === 'embed' ? { output: 'last_hidden_state' } : {});
  if (kind === 'embed') {
    g.output('last_hidden_state', 'float32', ['batch', 'sequence', HIDDEN]);
  } else {
    model.weight = seeded(HIDDEN * labels!.length, 13, 2);
    model.bias = seeded(labels!.length, 14, 0.5);
    const w = g.initializer('classifier_weight', model.weight, [HIDDEN, labels!.length]);
    const b = g.initializer('classifier_bias', model.bias, [labels!.length]);
    // Sequence heads read the [CLS] position, token heads every position.
    const features = kind === 'ner' ? hidden : g.op('Gather', [hidden, g.int64s('cls_index', [0], [])], { attrs: { axis: 1 } });
    g.op('Add', [g.op('MatMul', [features, w]), b], { output: 'logits' });
    g.output('logits', 'float32', kind === 'ner' ? ['batch', 'sequence', labels!.length] : ['batch', labels!.length]);
    model.labels = labels;
  }
  writeFileSync(join(dir, 'onnx', 'model.onnx'), g.toBytes());
  const architecture = { embed: 'BertModel', classify: 'BertForSequenceClassification', multilabel: 'BertForSequenceClassification', ner: 'BertForTokenClassification' }[kind];
  const config: Record<string, unknown> = { architectures: [architecture], model_type: 'bert', hidden_size: HIDDEN, vocab_size: VOCAB.length, type_vocab_size: 2, max_position_embeddings: 64 };
  if (labels) {
    config.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  }
  if (kind === 'multilabel') config.problem_type = 'multi_label_classification';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 512, cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]' }),
  );
  return model;
}

/** The fixture's hidden state per token (no padding: mask 1, type 0). */
function hiddenOf(model: TinyModel, ids: number[]): number[][] {
  return ids.map((t) => Array.from({ length: HIDDEN }, (_, h) => model.word[t * HIDDEN + h]! + model.type[h]!));
}
function logitsOf(model: TinyModel, vector: number[]): number[] {
  const n = model.labels!.length;
  return Array.from({ length: n }, (_, l) => vector.reduce((s, v, h) => s + v * model.weight![h * n + l]!, model.bias![l]!));
}
const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
};
const l2 = (v: number[]) => {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
};
function assertClose(actual: readonly number[], expected: readonly number[], message: string, tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length, message);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tolerance, `${message}[${i}]: ${a} vs ${expected[i]}`));
}

let root: string;
const models = {} as Record<TinyKind, TinyModel>;
const TEXTS = ['Hello world!', 'The cat sat on the mat.', 'John lives in Paris, playing.'];
const IDS = [
  ['[CLS]', 'hello', 'world', '!', '[SEP]'],
  ['[CLS]', 'the', 'cat', 'sat', 'on', 'the', 'mat', '.', '[SEP]'],
  ['[CLS]', 'john', 'lives', 'in', 'paris', ',', 'play', '##ing', '.', '[SEP]'],
].map((tokens) => tokens.map(id));

before(() => {
  root = tempDir('polyhead-hf-reference-');
  for (const kind of ['embed', 'classify', 'multilabel', 'ner'] as const) models[kind] = writeTinyModel(join(root, kind), kind);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('tokenize: ids with special tokens as tokenizer(text) gives them, and truncation at max_length', async () => {
  const full = await referenceTokenize(models.embed.dir, TEXTS);
  assert.deepEqual(full.ids, IDS);
  assert.deepEqual(full.tokens[0], ['[CLS]', 'hello', 'world', '!', '[SEP]']);
  assert.deepEqual(full.attentionMask, IDS.map((ids) => ids.map(() => 1)));
  assert.deepEqual(full.typeIds, IDS.map((ids) => ids.map(() => 0)), 'BertTokenizer returns token_type_ids');
  const cut = await referenceTokenize(models.embed.dir, TEXTS, { truncation: { maxLength: 4 } });
  // transformers.js truncates the encoded ids, special tokens included: the final [SEP] is cut off too
  // (Python's tokenizers keep it). A parity test on long inputs has to know this.
  assert.deepEqual(cut.ids, IDS.map((ids) => ids.slice(0, 4)));
  const bare = await referenceTokenize(models.embed.dir, TEXTS.slice(0, 1), { addSpecialTokens: false });
  assert.deepEqual(bare.ids, [IDS[0]!.slice(1, -1)]);
});

test('embed: mean, cls and none pooling, normalized or not, equal the weights', async () => {
  const m = models.embed;
  const [mean, meanNormalized, cls, none] = await runReference([
    { op: 'embed', model: m.dir, texts: TEXTS, pooling: 'mean' },
    { op: 'embed', model: m.dir, texts: TEXTS, pooling: 'mean', normalize: true },
    { op: 'embed', model: m.dir, texts: TEXTS, pooling: 'cls', normalize: true },
    { op: 'embed', model: m.dir, texts: TEXTS, pooling: 'none' },
  ]);
  IDS.forEach((ids, t) => {
    const hidden = hiddenOf(m, ids);
    const average = Array.from({ length: HIDDEN }, (_, h) => hidden.reduce((s, row) => s + row[h]!, 0) / hidden.length);
    // Texts of different lengths were batched (padded): mean pooling is masked, so padding does not count.
    assertClose((mean.embeddings as number[][])[t]!, average, `mean ${t}`);
    assertClose((meanNormalized.embeddings as number[][])[t]!, l2(average), `mean normalized ${t}`);
    assertClose((cls.embeddings as number[][])[t]!, l2(hidden[0]!), `cls ${t}`);
    const tokens = (none.embeddings as number[][][])[t]!;
    assert.equal(tokens.length, ids.length, `none ${t}: one vector per token, no padding`);
    tokens.forEach((row, i) => assertClose(row, hidden[i]!, `none ${t}.${i}`));
  });
  const single = await referenceEmbed(m.dir, ['the cat'], { pooling: 'cls' });
  assertClose((single.embeddings as number[][])[0]!, hiddenOf(m, [id('[CLS]')])[0]!, 'referenceEmbed');
});

test('classify: every label with its score, softmax for single-label and sigmoid for multi_label_classification', async () => {
  const [single, multi] = await Promise.all([referenceClassify(models.classify.dir, TEXTS), referenceClassify(models.multilabel.dir, TEXTS)]);
  assert.equal(single.function, 'softmax');
  assert.equal(single.problemType, null);
  assert.equal(multi.function, 'sigmoid');
  assert.equal(multi.problemType, 'multi_label_classification');
  for (const [result, model, squash] of [
    [single, models.classify, softmax],
    [multi, models.multilabel, (xs: number[]) => xs.map((x) => 1 / (1 + Math.exp(-x)))],
  ] as const) {
    IDS.forEach((ids, t) => {
      const expected = squash(logitsOf(model, hiddenOf(model, ids)[0]!));
      const got = result.results[t]!;
      assert.deepEqual(got.map((s) => s.label).sort(), [...model.labels!].sort(), 'all labels, top_k: null');
      assert.deepEqual(got.map((s) => s.score), [...got.map((s) => s.score)].sort((a, b) => b - a), 'best first');
      assertClose(model.labels!.map((label) => got.find((s) => s.label === label)!.score), expected, `${model.dir} ${t}`);
    });
  }
  const sum = multi.results[0]!.reduce((s, x) => s + x.score, 0);
  assert.ok(Math.abs(sum - 1) > 1e-3, `multi-label scores are independent sigmoids (sum ${sum})`);
});

test('tokens: token-classification per token (no special tokens, no offsets) and simple aggregation', async () => {
  const m = models.ner;
  const all = await referenceTokenClassification(m.dir, TEXTS, { ignoreLabels: [] });
  IDS.forEach((ids, t) => {
    const hidden = hiddenOf(m, ids);
    const expected = ids.flatMap((tokenId, index) => {
      if (SPECIALS.includes(VOCAB[tokenId]!)) return []; // decoded with skip_special_tokens: '' and dropped
      const probs = softmax(logitsOf(m, hidden[index]!));
      const best = probs.indexOf(Math.max(...probs));
      return [{ entity: m.labels![best]!, index, word: VOCAB[tokenId]!, score: probs[best]! }];
    });
    const got = all.none[t]!;
    assert.deepEqual(got.map(({ entity, index, word }) => ({ entity, index, word })), expected.map(({ entity, index, word }) => ({ entity, index, word })));
    assertClose(got.map((e) => e.score), expected.map((e) => e.score), `scores ${t}`);
    for (const e of got) assert.deepEqual(Object.keys(e).sort(), ['entity', 'index', 'score', 'word'], 'no start/end offsets');
  });
  assert.ok(all.simple, all.simpleError);
  assert.equal(all.simple.length, TEXTS.length);
  for (const groups of all.simple) for (const g of groups) assert.deepEqual(Object.keys(g).sort(), ['entity_group', 'score', 'word']);

  const withoutO = await referenceTokenClassification(m.dir, TEXTS);
  assert.deepEqual(withoutO.none, all.none.map((tokens) => tokens.filter((e) => e.entity !== 'O')), "default ignore_labels ['O']");
});

test('errors come back as { error } with exit 1; a batch names the failed op', async () => {
  const missing = join(root, 'missing');
  assert.match(JSON.stringify(await runJob({ op: 'embed', model: missing, texts: ['x'], pooling: 'mean' })), /does not exist/);
  assert.match(JSON.stringify(await runJob({ op: 'nope', model: models.embed.dir, texts: ['x'] })), /unknown op/);
  const noConfig = join(root, 'no-tokenizer-config');
  writeTinyModel(noConfig, 'embed');
  rmSync(join(noConfig, 'tokenizer_config.json'));
  await assert.rejects(
    runReference([
      { op: 'tokenize', model: models.embed.dir, texts: ['x'] },
      { op: 'embed', model: noConfig, texts: ['x'], pooling: 'mean' },
    ]),
    /op 1 \(embed\): .*tokenizer_config\.json is missing/,
  );
});

test("every small kind of the project's fixture generator: tokenize, then embed, classify or tokens by its task", async () => {
  const texts = ['Hello world, this is a test.', 'John Smith lives in New York.', 'short'];
  const fixtures: HfFixtureInfo[] = [];
  const ops: ReferenceOp[] = [];
  for (const kind of SMALL_HF_FIXTURE_KINDS) {
    const model = join(root, 'hf', kind);
    const info = await writeHfFixture(kind, model);
    fixtures.push(info);
    ops.push({ op: 'tokenize', model, texts }, { op: 'tokenize', model, texts, truncation: { maxLength: 5 } });
    if (info.task === 'feature-extraction') {
      // transformers.js does not read modules.json / 1_Pooling: the pooling is the caller's to pass.
      const st = info.sentenceTransformers;
      ops.push({ op: 'embed', model, texts, pooling: st?.pooling === 'cls' ? 'cls' : 'mean', normalize: st?.normalize ?? false });
    } else if (info.task === 'sequence-classification') {
      ops.push({ op: 'classify', model, texts });
    } else {
      ops.push({ op: 'tokens', model, texts, ignoreLabels: [] });
    }
  }
  const results = await runReference(ops); // one process: transformers.js starts once
  fixtures.forEach((info, f) => {
    const [full, cut, answer] = results.slice(3 * f, 3 * f + 3) as [TokenizeResult, TokenizeResult, unknown];
    const kind = info.kind;
    assert.equal(full.ids.length, texts.length, kind);
    for (const [t, ids] of full.ids.entries()) {
      assert.ok(ids.length >= 3 && ids.every((x) => Number.isInteger(x) && x >= 0 && x < info.vocabSize), `${kind} ids ${t}`);
      assert.deepEqual(cut.ids[t], ids.slice(0, 5), `${kind} truncation ${t}`);
    }
    if (info.task === 'feature-extraction') {
      const { embeddings } = answer as EmbedResult;
      for (const vector of embeddings as number[][]) {
        assert.equal(vector.length, info.hiddenSize, kind);
        if (info.sentenceTransformers?.normalize) assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5, `${kind} normalized`);
      }
    } else if (info.task === 'sequence-classification') {
      const result = answer as ClassifyResult;
      assert.equal(result.function, info.problemType === 'multi_label_classification' ? 'sigmoid' : 'softmax', kind);
      for (const scores of result.results) {
        assert.deepEqual(scores.map((s) => s.label).sort(), [...info.labels!].sort(), kind);
        if (result.function === 'softmax') assert.ok(Math.abs(scores.reduce((a, s) => a + s.score, 0) - 1) < 1e-5, kind);
      }
    } else {
      const result = answer as TokensResult;
      full.ids.forEach((ids, t) => {
        const entities = result.none[t]!;
        // Every token but the special ones, in order, each with one of the labels.
        assert.deepEqual(entities.map((e) => e.index), full.tokens[t]!.flatMap((token, i) => (/^\[[A-Z]+\]$/.test(token ?? '') ? [] : [i])), `${kind} ${t}`);
        for (const e of entities) assert.ok(info.labels!.includes(e.entity) && e.score > 0 && e.score <= 1, `${kind} ${t}`);
      });
      assert.ok(result.simple, result.simpleError);
    }
  });
});
