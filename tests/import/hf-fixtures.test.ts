// The Hugging Face fixture folders (tests/helpers/hf-fixtures.ts): layout and config fields, tokenizer.json read by
// the Hugging Face tokenizer libraries, ONNX graphs that onnxruntime-node runs with the inputs Optimum exports declare,
// and random weights that still tell texts apart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { tempDir } from '../helpers/bundle-fixture.js';
import {
  SMALL_HF_FIXTURE_KINDS,
  describeHfFixture,
  editFixtureJson,
  writeHfFixture,
  type HfFixtureInfo,
  type HfFixtureKind,
} from '../helpers/hf-fixtures.js';

const TEXTS = [
  'The jury said it did find that many of the registration laws are outmoded.',
  'Hello world!',
  'She sold her old car and bought a bicycle.',
  'Prices rose sharply in 1960, and the market fell.',
  'Is this the way to the station?',
  'I love this movie, it was wonderful.',
  'This was the worst meal I have ever eaten.',
  'John Smith moved from Boston to Paris last year.',
  'The committee will meet again on Monday morning.',
  'Water boils at one hundred degrees.',
  'Why did the children run away from home?',
  'A small dog barked at the mailman.',
  'Café crème and a naïve résumé.',
  'The president spoke to the nation about the economy.',
  'Scientists discovered a new species of frog.',
  'He scored two goals in the final game of the season.',
  'Please send me the report by Friday.',
  'Nothing happened.',
  'The river flows slowly through the quiet valley toward the sea.',
  'They argued for hours but never reached an agreement.',
];

const root = tempDir('polyhead-hf-fixtures-');
const folders = new Map<HfFixtureKind, { dir: string; info: HfFixtureInfo }>();
let generationMs = 0;

before(async () => {
  const start = performance.now();
  for (const kind of SMALL_HF_FIXTURE_KINDS) {
    const dir = join(root, kind);
    folders.set(kind, { dir, info: await writeHfFixture(kind, dir) });
  }
  generationMs = performance.now() - start;
});

after(() => rmSync(root, { recursive: true, force: true }));

const readJson = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

function loadTokenizer(dir: string): Tokenizer {
  return new Tokenizer(readJson(dir, 'tokenizer.json'), readJson(dir, 'tokenizer_config.json'));
}

/** Right-padded int64 inputs for the ONNX session, as a Hugging Face tokenizer with padding would give them. */
function feeds(session: ort.InferenceSession, encodings: number[][], padId: number): { feeds: Record<string, ort.Tensor>; lengths: number[] } {
  const length = Math.max(...encodings.map((e) => e.length));
  const ids = new BigInt64Array(encodings.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(encodings.length * length);
  encodings.forEach((e, row) =>
    e.forEach((id, i) => {
      ids[row * length + i] = BigInt(id);
      mask[row * length + i] = 1n;
    }),
  );
  const dims = [encodings.length, length];
  const out: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) };
  if (session.inputNames.includes('token_type_ids')) out.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), dims);
  return { feeds: out, lengths: encodings.map((e) => e.length) };
}

function argmax(values: ArrayLike<number>, from: number, count: number): number {
  let best = 0;
  for (let i = 1; i < count; i++) if (values[from + i]! > values[from + best]!) best = i;
  return best;
}

function cosine(a: Float64Array, b: Float64Array): number {
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

test('every small kind is generated in a few seconds', (t) => {
  t.diagnostic(`${SMALL_HF_FIXTURE_KINDS.length} folders in ${generationMs.toFixed(0)} ms`);
  assert.equal(folders.size, SMALL_HF_FIXTURE_KINDS.length);
  assert.ok(generationMs < 30_000, `${generationMs} ms`);
});

test('folders have the Hugging Face layout and the real config field names', () => {
  for (const [kind, { dir, info }] of folders) {
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'onnx/model.onnx']) {
      assert.ok(existsSync(join(dir, file)), `${kind}: ${file}`);
    }
    const config = readJson(dir, 'config.json');
    assert.equal(config.model_type, info.modelType, kind);
    assert.deepEqual(config.architectures, [info.architecture], kind);
    assert.equal(config.vocab_size, info.vocabSize, kind);
    assert.equal(config.max_position_embeddings, info.maxPositionEmbeddings, kind);
    if (info.modelType === 'distilbert') {
      assert.deepEqual([config.dim, config.n_layers, config.n_heads, config.hidden_dim, config.activation], [64, 2, 4, 128, 'gelu']);
    } else {
      assert.equal(config.hidden_size, info.hiddenSize, kind);
      assert.equal(config.num_hidden_layers, info.layers, kind);
      assert.equal(config.num_attention_heads, info.heads, kind);
      assert.equal(config.intermediate_size, info.intermediateSize, kind);
      assert.equal(config.hidden_act, 'gelu', kind);
      assert.equal(config.type_vocab_size, info.modelType === 'bert' ? 2 : 1, kind);
      assert.equal(typeof config.layer_norm_eps, 'number', kind);
    }
    assert.equal(config.pad_token_id, info.padId, kind);
    if (info.labels) {
      assert.deepEqual(Object.keys(config.id2label), info.labels.map((_, i) => String(i)), kind);
      assert.deepEqual(Object.values(config.id2label), info.labels, kind);
      assert.deepEqual(config.label2id, Object.fromEntries(info.labels.map((l, i) => [l, i])), kind);
    } else {
      assert.equal(config.id2label, undefined, kind);
    }
    const tokenizerConfig = readJson(dir, 'tokenizer_config.json');
    assert.equal(tokenizerConfig.model_max_length, info.modelMaxLength, kind);
    assert.equal(
      tokenizerConfig.tokenizer_class,
      { bert: 'BertTokenizer', roberta: 'RobertaTokenizer', 'xlm-roberta': 'XLMRobertaTokenizer', distilbert: 'DistilBertTokenizer' }[info.modelType],
    );
    const tokenizer = readJson(dir, 'tokenizer.json');
    assert.equal(tokenizer.truncation, null, kind);
    assert.equal(tokenizer.padding, null, kind);
    assert.equal(tokenizer.model.type, { wordpiece: 'WordPiece', bpe: 'BPE', unigram: 'Unigram' }[info.tokenizer], kind);
    const vocabSize = Array.isArray(tokenizer.model.vocab) ? tokenizer.model.vocab.length : Object.keys(tokenizer.model.vocab).length;
    assert.equal(vocabSize, info.vocabSize, kind);
    if (info.modelType === 'roberta' || info.modelType === 'xlm-roberta') assert.equal(info.maxPositionEmbeddings, info.modelMaxLength + 2);
  }
  assert.equal(readJson(folders.get('bert-multilabel')!.dir, 'config.json').problem_type, 'multi_label_classification');
  assert.equal(readJson(folders.get('bert-ner')!.dir, 'tokenizer_config.json').do_lower_case, false);
  assert.equal(readJson(folders.get('bert-ner')!.dir, 'tokenizer.json').normalizer.lowercase, false);
  assert.deepEqual(readJson(folders.get('distilbert-sst2')!.dir, 'config.json').id2label, { 0: 'NEGATIVE', 1: 'POSITIVE' });

  const st = folders.get('minilm-st')!.dir;
  assert.deepEqual(
    readJson(st, 'modules.json').map((m: { type: string }) => m.type),
    ['sentence_transformers.models.Transformer', 'sentence_transformers.models.Pooling', 'sentence_transformers.models.Normalize'],
  );
  const pooling = readJson(st, '1_Pooling/config.json');
  assert.equal(pooling.word_embedding_dimension, 64);
  assert.equal(pooling.pooling_mode_mean_tokens, true);
  assert.equal(pooling.pooling_mode_cls_token, false);
  assert.equal(pooling.pooling_mode_max_tokens, false);
  assert.equal(readJson(st, 'sentence_bert_config.json').max_seq_length, 128);
  assert.ok(readJson(st, 'config_sentence_transformers.json').__version__.sentence_transformers);
});

test('the same kind and seed give the same bytes; another seed other weights', async () => {
  const again = tempDir('polyhead-hf-again-');
  try {
    for (const kind of ['roberta', 'minilm-st'] as const) {
      const info = await writeHfFixture(kind, join(again, kind));
      for (const file of info.files) {
        assert.ok(readFileSync(join(again, kind, file)).equals(readFileSync(join(folders.get(kind)!.dir, file))), `${kind}: ${file}`);
      }
    }
    await writeHfFixture('bert', join(again, 'seeded'), { seed: 7 });
    assert.ok(readFileSync(join(again, 'seeded', 'tokenizer.json')).equals(readFileSync(join(folders.get('bert')!.dir, 'tokenizer.json'))));
    assert.ok(!readFileSync(join(again, 'seeded', 'onnx/model.onnx')).equals(readFileSync(join(folders.get('bert')!.dir, 'onnx/model.onnx'))));
  } finally {
    rmSync(again, { recursive: true, force: true });
  }
});

test('tokenizer.json loads in @huggingface/tokenizers and in tokenizers (the Rust binding), which give the same ids', async () => {
  for (const [kind, { dir, info }] of folders) {
    const tokenizer = loadTokenizer(dir);
    const vocab = tokenizer.get_vocab(true);
    const unk = info.tokenizer === 'wordpiece' ? '[UNK]' : '<unk>';
    const [cls, sep] = info.tokenizer === 'wordpiece' ? ['[CLS]', '[SEP]'] : ['<s>', '</s>'];
    const native = NativeTokenizer.fromFile(join(dir, 'tokenizer.json'));
    for (const text of TEXTS) {
      const ids: number[] = tokenizer.encode(text).ids;
      assert.equal(ids[0], vocab.get(cls), `${kind}: ${text}`);
      assert.equal(ids.at(-1), vocab.get(sep), `${kind}: ${text}`);
      assert.ok(ids.every((id) => id >= 0 && id < info.vocabSize), `${kind}: ${text}`);
      assert.ok(!ids.includes(vocab.get(unk)!), `${kind}: [UNK] in ${JSON.stringify(tokenizer.tokenize(text))}`);
      assert.deepEqual((await native.encode(text)).getIds(), ids, `${kind} (tokenizers): ${text}`);
    }
  }
  const cased = loadTokenizer(folders.get('bert-ner')!.dir);
  const uncased = loadTokenizer(folders.get('bert')!.dir);
  assert.deepEqual(uncased.tokenize('The Jury'), ['the', 'jury']);
  assert.deepEqual(cased.tokenize('The jury'), ['The', 'jury']);
  assert.deepEqual(loadTokenizer(folders.get('roberta')!.dir).tokenize('the people said'), ['the', 'Ġpeople', 'Ġsaid']);
  assert.deepEqual(loadTokenizer(folders.get('xlm-roberta')!.dir).tokenize('the jury  said'), ['▁the', '▁jury', '▁said']);
});

for (const kind of SMALL_HF_FIXTURE_KINDS) {
  test(`${kind}: onnxruntime-node runs onnx/model.onnx and different texts give different outputs`, async (t) => {
    const { dir, info } = folders.get(kind)!;
    const tokenizer = loadTokenizer(dir);
    const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
    try {
      assert.deepEqual(session.inputNames, info.inputs);
      assert.deepEqual(session.outputNames, [info.output]);
      const encodings: number[][] = TEXTS.map((text): number[] => tokenizer.encode(text).ids);
      const { feeds: batch, lengths } = feeds(session, encodings, info.padId);
      const result = (await session.run(batch))[info.output]!;
      const data = result.data as Float32Array;
      assert.ok(data.every(Number.isFinite), 'finite');
      const sequence = Math.max(...lengths);
      const labels = info.labels?.length ?? 0;

      // A text alone gives what it gets in the padded batch: the attention mask hides the padding.
      for (const row of [1, 2, 17]) {
        const single = (await session.run(feeds(session, [encodings[row]!], info.padId).feeds))[info.output]!.data as Float32Array;
        const width = info.task === 'sequence-classification' ? labels : lengths[row]! * (info.task === 'token-classification' ? labels : info.hiddenSize);
        const offset = row * (info.task === 'sequence-classification' ? labels : sequence * (info.task === 'token-classification' ? labels : info.hiddenSize));
        for (let i = 0; i < width; i++) assert.ok(Math.abs(single[i]! - data[offset + i]!) < 1e-4, `row ${row} value ${i}: ${single[i]} vs ${data[offset + i]}`);
      }

      if (info.task === 'feature-extraction') {
        assert.deepEqual(result.dims, [TEXTS.length, sequence, info.hiddenSize]);
        // Mean over real tokens; every pair of texts must be told apart.
        const pooled = lengths.map((n, row) => {
          const v = new Float64Array(info.hiddenSize);
          for (let tkn = 0; tkn < n; tkn++) for (let h = 0; h < info.hiddenSize; h++) v[h]! += data[(row * sequence + tkn) * info.hiddenSize + h]! / n;
          return v;
        });
        let maxCosine = -1;
        for (let a = 0; a < pooled.length; a++) for (let b = a + 1; b < pooled.length; b++) maxCosine = Math.max(maxCosine, cosine(pooled[a]!, pooled[b]!));
        t.diagnostic(`highest cosine between mean-pooled texts: ${maxCosine.toFixed(3)}`);
        assert.ok(maxCosine < 0.98, `texts too alike: cosine ${maxCosine}`);
      } else if (info.task === 'sequence-classification') {
        assert.deepEqual(result.dims, [TEXTS.length, labels]);
        if (info.problemType === 'multi_label_classification') {
          const sets = TEXTS.map((_, row) => info.labels!.filter((_, l) => data[row * labels + l]! > 0).join('+'));
          t.diagnostic(`label sets: ${sets.join(', ')}`);
          assert.ok(new Set(sets).size >= 3, 'at least three different label sets');
          for (let l = 0; l < labels; l++) assert.ok(sets.some((s) => s.split('+').includes(info.labels![l]!)), `label ${info.labels![l]} never on`);
        } else {
          const predicted = TEXTS.map((_, row) => info.labels![argmax(data, row * labels, labels)]!);
          const counts = info.labels!.map((l) => predicted.filter((p) => p === l).length);
          t.diagnostic(`predicted: ${info.labels!.map((l, i) => `${l} ${counts[i]}`).join(', ')}`);
          assert.ok(counts.every((c) => c >= 3), `each label at least 3 times in ${TEXTS.length}`);
        }
      } else {
        assert.deepEqual(result.dims, [TEXTS.length, sequence, labels]);
        const used = new Set<number>();
        const perText = lengths.map((n, row) => {
          const tags: number[] = [];
          for (let tkn = 1; tkn < n - 1; tkn++) tags.push(argmax(data, (row * sequence + tkn) * labels, labels));
          tags.forEach((tag) => used.add(tag));
          return tags.join(',');
        });
        t.diagnostic(`${used.size} of ${labels} labels predicted`);
        assert.ok(used.size >= 5, `only ${used.size} labels predicted`);
        assert.equal(new Set(perText).size, TEXTS.length);
      }
    } finally {
      await session.release();
    }
  });
}

test('sentence-transformers options: pooling mode and Normalize', async () => {
  const dir = tempDir('polyhead-hf-st-');
  try {
    const info = await writeHfFixture('minilm-st', dir, { pooling: 'cls', normalize: false });
    assert.deepEqual(info.sentenceTransformers, { pooling: 'cls', normalize: false, maxSeqLength: 128 });
    const pooling = readJson(dir, '1_Pooling/config.json');
    assert.deepEqual([pooling.pooling_mode_cls_token, pooling.pooling_mode_mean_tokens, pooling.pooling_mode_max_tokens], [true, false, false]);
    assert.equal(readJson(dir, 'modules.json').length, 2);
    await writeHfFixture('minilm-st', dir, { pooling: 'max' });
    assert.equal(readJson(dir, '1_Pooling/config.json').pooling_mode_max_tokens, true);
    assert.throws(() => describeHfFixture('bert', { pooling: 'cls' }), /sentence-transformers kinds only/);
    assert.equal(describeHfFixture('minilm-l6').vocabTarget, 30522);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('editFixtureJson breaks one field for bad-input tests', async () => {
  const dir = tempDir('polyhead-hf-edit-');
  try {
    const info = await writeHfFixture('bert', dir);
    editFixtureJson(dir, 'config.json', (config) => {
      config.vocab_size = info.vocabSize + 1;
    });
    assert.equal(readJson(dir, 'config.json').vocab_size, info.vocabSize + 1);
    editFixtureJson(dir, 'tokenizer.json', () => ({ version: '1.0' }));
    assert.deepEqual(readJson(dir, 'tokenizer.json'), { version: '1.0' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
