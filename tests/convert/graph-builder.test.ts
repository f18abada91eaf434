import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, floatAttr } from '../../src/onnx/graph-builder.js';

// A linear classifier head: softmax(x @ W + b), built with the builder and run by onnxruntime.
test('MatMul + Add + Softmax graph runs in onnxruntime-node with the expected numbers', async () => {
  const g = new OnnxGraphBuilder({ name: 'tiny-head' });
  g.input('pooled', 'float32', ['batch', 3]);
  const weight = g.floats('weight', [1, 0, 0, 1, 1, -1], [3, 2]);
  const bias = g.floats('bias', [0.5, -0.5]);
  const logits = g.op('Add', [g.op('MatMul', ['pooled', weight]), bias], { output: 'logits' });
  g.op('Softmax', [logits], { output: 'probs', attrs: { axis: -1 } });
  g.output('logits', 'float32', ['batch', 2]);
  g.output('probs', 'float32', ['batch', 2]);

  const session = await ort.InferenceSession.create(g.toBytes());
  assert.deepEqual(session.inputNames, ['pooled']);
  const x = new Float32Array([1, 2, 3, 0, 0, 0]);
  const out = await session.run({ pooled: new ort.Tensor('float32', x, [2, 3]) });
  assert.deepEqual(out.logits!.dims, [2, 2]);
  // Row 0: [1, 2, 3] @ W = [1 + 3, 2 - 3] = [4, -1]; + b = [4.5, -1.5]. Row 1: b.
  const expectedLogits = [4.5, -1.5, 0.5, -0.5];
  const logitsData = out.logits!.data as Float32Array;
  expectedLogits.forEach((v, i) => assert.ok(Math.abs(logitsData[i]! - v) < 1e-6, `logit ${i}`));
  const probs = out.probs!.data as Float32Array;
  const softmax = (a: number, b: number) => [Math.exp(a) / (Math.exp(a) + Math.exp(b)), Math.exp(b) / (Math.exp(a) + Math.exp(b))];
  [...softmax(4.5, -1.5), ...softmax(0.5, -0.5)].forEach((v, i) => assert.ok(Math.abs(probs[i]! - v) < 1e-6, `prob ${i}`));
  await session.release();
});

test('int64 initializers, float attributes and symbolic dims work (LayerNormalization, Reshape)', async () => {
  const g = new OnnxGraphBuilder({ name: 'ln' });
  g.input('x', 'float32', ['batch', 'tokens', 4]);
  const scale = g.floats('scale', [1, 1, 1, 1]);
  const biasName = g.floats('ln_bias', [0, 0, 0, 0]);
  const normed = g.op('LayerNormalization', ['x', scale, biasName], { attrs: { axis: -1, epsilon: floatAttr(1e-5) } });
  const flat = g.op('Reshape', [normed, g.int64s('flat_shape', [-1, 4])], { output: 'flat' });
  g.output(flat, 'float32', ['rows', 4]);

  const session = await ort.InferenceSession.create(g.toBytes());
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4, 2, 2, 2, 2]), [1, 2, 4]) });
  assert.deepEqual(out.flat!.dims, [2, 4]);
  const data = out.flat!.data as Float32Array;
  const sd = Math.sqrt(1.25 + 1e-5);
  [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, 0, 0, 0, 0].forEach((v, i) => assert.ok(Math.abs(data[i]! - v) < 1e-5, `value ${i}`));
  await session.release();
});

test('the builder rejects undefined inputs, duplicate names and unproduced outputs', () => {
  const g = new OnnxGraphBuilder({ name: 'bad' });
  g.input('x', 'float32', [1]);
  assert.throws(() => g.op('Relu', ['nope']), /not defined/);
  assert.throws(() => g.input('x', 'float32', [1]), /defined twice/);
  assert.throws(() => g.floats('w', [1, 2], [3]), /2 values/);
  g.output('missing', 'float32', [1]);
  assert.throws(() => g.toBytes(), /never produced/);
});
