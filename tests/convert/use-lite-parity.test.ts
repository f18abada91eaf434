import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../../src/engine/tokenizer.js';
import { convertedUseLite, cosine, loadReference, loadSentences } from './use-lite-fixture.js';

const HIDDEN = 512;
const MIN_COSINE = 0.9999;

let session: ort.InferenceSession;
let tokenizer: TextTokenizer;
let sentences: string[];
let referenceEmbeddings: number[][];

before(async () => {
  const files = await convertedUseLite();
  session = await ort.InferenceSession.create(files.backbonePath);
  // The model itself reads at most 128 tokens (TF: ClipToMaxLength); keep more to test that clip.
  tokenizer = await TextTokenizer.load(files.tokenizerPath, 512);
  sentences = await loadSentences();
  const reference = await loadReference();
  // One text per call: the reference's own single-text path.
  referenceEmbeddings = [];
  for (const s of sentences) referenceEmbeddings.push((await reference.embed([s]))[0]!);
});

after(async () => {
  await session?.release();
});

/** Pads with id 0 / mask 0 to the longest text of the batch. */
async function runBackbone(texts: string[]): Promise<{ pooled: Float32Array; states: ort.Tensor; tokens: number }> {
  const encodings = texts.map((t) => tokenizer.encode(t));
  const tokens = Math.max(...encodings.map((e) => e.ids.length));
  const ids = new BigInt64Array(texts.length * tokens);
  const mask = new BigInt64Array(texts.length * tokens);
  encodings.forEach((e, row) => e.ids.forEach((id, j) => {
    ids[row * tokens + j] = BigInt(id);
    mask[row * tokens + j] = 1n;
  }));
  const out = await session.run({
    input_ids: new ort.Tensor('int64', ids, [texts.length, tokens]),
    attention_mask: new ort.Tensor('int64', mask, [texts.length, tokens]),
  });
  return { pooled: out.pooled!.data as Float32Array, states: out.token_states!, tokens };
}

test('single: cosine(ONNX pooled, reference embedding) >= 0.9999 for every sentence', async () => {
  let min = 1;
  for (let i = 0; i < sentences.length; i++) {
    const { pooled } = await runBackbone([sentences[i]!]);
    const c = cosine(pooled, referenceEmbeddings[i]!);
    min = Math.min(min, c);
    assert.ok(c >= MIN_COSINE, `${JSON.stringify(sentences[i])}: cosine ${c}`);
  }
  console.log(`single: min cosine ${min}`);
});

test('batched with padding (mixed lengths): cosine >= 0.9999 for every sentence', async () => {
  // Interleave long and short sentences so that most rows are padded.
  const order = sentences.map((_, i) => i).sort((a, b) => ((a * 7919) % 211) - ((b * 7919) % 211));
  let min = 1;
  for (let start = 0; start < order.length; start += 16) {
    const batch = order.slice(start, start + 16);
    const { pooled } = await runBackbone(batch.map((i) => sentences[i]!));
    batch.forEach((i, row) => {
      const c = cosine(pooled.subarray(row * HIDDEN, (row + 1) * HIDDEN), referenceEmbeddings[i]!);
      min = Math.min(min, c);
      assert.ok(c >= MIN_COSINE, `${JSON.stringify(sentences[i])} in a batch: cosine ${c}`);
    });
  }
  console.log(`batched: min cosine ${min}`);
});

test('texts over 128 tokens: the backbone ignores positions >= 128 like the reference', async () => {
  const long = sentences.slice(0, 20).join(' ');
  assert.ok(tokenizer.encode(long).ids.length > 128);
  const reference = await loadReference();
  const [expected] = await reference.embed([long]);
  const { pooled } = await runBackbone([long]);
  assert.ok(cosine(pooled, expected!) >= MIN_COSINE);
});

test('token_states: [batch, tokens, 512], zero at padding, independent of the padding', async () => {
  const texts = ['Short one.', sentences[10]!, 'A somewhat longer sentence that needs quite a few more tokens than the others.'];
  const batched = await runBackbone(texts);
  assert.deepEqual(batched.states.dims, [3, batched.tokens, HIDDEN]);
  const states = batched.states.data as Float32Array;
  const shortLength = tokenizer.encode(texts[0]!).ids.length;
  const alone = await runBackbone([texts[0]!]);
  assert.deepEqual(alone.states.dims, [1, shortLength, HIDDEN]);
  const aloneStates = alone.states.data as Float32Array;
  for (let i = 0; i < shortLength * HIDDEN; i++) {
    assert.ok(Math.abs(states[i]! - aloneStates[i]!) < 1e-4, `state ${i} changed with padding`);
  }
  for (let i = shortLength * HIDDEN; i < batched.tokens * HIDDEN; i++) assert.equal(Math.abs(states[i]!), 0);
});
