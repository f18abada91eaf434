// The fp16 backbone (src/convert/fp16.ts, buildUseLiteOnnx precision 'fp16'): float16 conversion, the pinned
// bytes, inputs/outputs unchanged, and parity with fp32. onnxruntime 1.29's CPU provider runs every op of the
// fp16 graph, so parity is checked here on the CPU; bench/gpu.ts checks it again on CUDA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { ensureDefaultBundle } from '../../src/bundle/default-bundle.js';
import { sha256Hex } from '../../src/convert/convert-use-lite.js';
import { FP16_BACKBONE_FILE, FP16_BACKBONE_SHA256, MIN_FP16_COSINE, checkFp16Parity, ensureFp16Backbone, parityTexts } from '../../src/convert/fp16.js';
import { OnnxSession, defaultSessionOptions, int64Tensor } from '../../src/engine/onnx-runtime.js';
import { float16Bits, float16Values } from '../../src/onnx/graph-builder.js';

const { onnx } = onnxProto;
let dir: string;
let bundleDir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'polyhead-fp16-'));
  bundleDir = await ensureDefaultBundle(dir);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('float16Bits rounds to nearest even, saturates to Infinity, keeps subnormals; float16Values inverts it', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65519.99, 0x7bff],
    [65520, 0x7c00], [1e9, 0x7c00], [-1e9, 0xfc00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002],
    [2 ** -14, 0x0400], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [Infinity, 0x7c00],
  ];
  const bits = float16Bits(cases.map(([v]) => v));
  cases.forEach(([value, expected], i) => assert.equal(bits[i], expected, `${value} -> 0x${bits[i]!.toString(16)}, expected 0x${expected.toString(16)}`));
  assert.ok(Number.isNaN(float16Values(float16Bits([NaN]))[0]));
  // Every finite half round-trips exactly.
  const all = Uint16Array.from({ length: 0x7c00 }, (_, i) => i);
  assert.deepEqual(float16Bits(float16Values(all)), all);
});

test('the fp16 backbone has the pinned bytes, the same inputs/outputs (int64 in, float32 out) and float16 weights', async () => {
  const fp16 = await ensureFp16Backbone(bundleDir);
  assert.equal(fp16.sha256, FP16_BACKBONE_SHA256);
  const bytes = readFileSync(fp16.fp16File);
  assert.equal(sha256Hex(bytes), FP16_BACKBONE_SHA256);
  const graph = onnx.ModelProto.decode(bytes).graph!;
  const { FLOAT, FLOAT16, INT64 } = onnx.TensorProto.DataType;
  assert.deepEqual(graph.input!.map((i) => [i.name, i.type!.tensorType!.elemType]), [['input_ids', INT64], ['attention_mask', INT64]]);
  assert.deepEqual(graph.output!.map((o) => [o.name, o.type!.tensorType!.elemType]), [['token_states', FLOAT], ['pooled', FLOAT]]);
  const types = new Map(graph.initializer!.map((t) => [t.name!, t.dataType]));
  assert.equal(types.get('embeddings'), FLOAT16);
  assert.equal(types.get('layer_0_qkv.weight'), FLOAT16);
  assert.equal(types.get('layer_1_ffn_out.weight'), FLOAT16);
  // Kept in float32: LayerNorm parameters, the padding bias, the pooling dense.
  assert.equal(types.get('layer_0_attention_norm.scale'), FLOAT);
  assert.equal(types.get('padding_bias'), FLOAT);
  assert.equal(types.get('pooling_dense.weight'), FLOAT);
  // Every LayerNormalization and Softmax reads a float32 tensor produced by a Cast to FLOAT or float32 math.
  const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  for (const node of graph.node!.filter((n) => n.opType === 'LayerNormalization')) {
    const from = producers.get(node.input![0]!)!;
    assert.equal(from.opType, 'Cast', `${node.name} reads ${from.opType}`);
    assert.equal(Number(from.attribute!.find((a) => a.name === 'to')!.i), FLOAT);
  }
  assert.ok(statSync(fp16.fp16File).size < statSync(fp16.fp32File).size * 0.6, 'weights take half the bytes');
});

test('fp16 vs fp32 on the parity sentences (CPU): cosine >= 0.999 for every sentence', async () => {
  const texts = await parityTexts();
  const fp16 = await ensureFp16Backbone(bundleDir);
  const parity = await checkFp16Parity(bundleDir, fp16.fp16File, defaultSessionOptions, texts);
  console.log(`fp16 parity on cpu: min cosine ${parity.minCosine}, mean ${parity.meanCosine} over ${parity.texts} sentences (worst: ${JSON.stringify(parity.worst.text)})`);
  assert.equal(parity.texts, texts.length);
  assert.ok(parity.minCosine >= MIN_FP16_COSINE, `min cosine ${parity.minCosine}`);
  for (const [name, head] of Object.entries(parity.heads)) assert.equal(head.different, 0, `head ${name}: ${head.different} of ${head.compared} labels differ`);
});

test('ensureFp16Backbone with check: passes, reuses the verified file, and rebuilds a damaged one', async () => {
  const first = await ensureFp16Backbone(bundleDir, { check: defaultSessionOptions, texts: (await parityTexts()).slice(0, 40) });
  assert.ok(first.parity && first.parity.minCosine >= MIN_FP16_COSINE);
  const mtime = statSync(first.fp16File).mtimeMs;
  await ensureFp16Backbone(bundleDir);
  assert.equal(statSync(first.fp16File).mtimeMs, mtime, 'reused');
  writeFileSync(first.fp16File, 'damaged');
  const lines: string[] = [];
  const rebuilt = await ensureFp16Backbone(bundleDir, { log: (line) => lines.push(line) });
  assert.equal(sha256Hex(readFileSync(rebuilt.fp16File)), FP16_BACKBONE_SHA256);
  assert.match(lines.join('\n'), new RegExp(`built ${FP16_BACKBONE_FILE.replace('.', '\\.')}`));
});

test('an fp16 model with the -1e9 padding bias kept in fp32 gives finite embeddings, even for a row with no tokens', async () => {
  const fp16 = await ensureFp16Backbone(bundleDir);
  const session = await OnnxSession.load(fp16.fp16File);
  const ids = new BigInt64Array([5n, 6n, 7n, 0n, 0n, 0n]);
  const mask = new BigInt64Array([1n, 1n, 1n, 0n, 0n, 0n]);
  const out = await session.run({ input_ids: int64Tensor(ids, [2, 3]), attention_mask: int64Tensor(mask, [2, 3]) }, ['pooled', 'token_states']);
  assert.ok(out.pooled!.data.every(Number.isFinite));
  assert.ok(out.token_states!.data.every(Number.isFinite));
  await session.release();
});

test('SessionOptions.substitutes loads the fp16 file in place of backbone.onnx', async () => {
  const fp16 = await ensureFp16Backbone(bundleDir);
  const session = await OnnxSession.load(fp16.fp32File, { ...defaultSessionOptions, substitutes: new Map([[fp16.fp32File, fp16.fp16File]]) });
  assert.equal(session.file, fp16.fp16File);
  await session.release();
});

test('ensureFp16Backbone refuses a backbone it has no fp16 variant for', async () => {
  const other = mkdtempSync(join(dir, 'other-'));
  writeFileSync(join(other, 'backbone.onnx'), 'not the default backbone');
  await assert.rejects(ensureFp16Backbone(other), /no fp16 variant is known/);
});
