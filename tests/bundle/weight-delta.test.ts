// The fine-tuned backbone's weight delta (src/bundle/weight-delta.ts): only changed rows are stored, int8 per row;
// applying it gives the tuned weights within half a quantisation step, the same bytes every time, and a model that
// onnxruntime runs; a damaged delta is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder } from '../../src/onnx/graph-builder.js';
import { applyWeightDelta, encodeWeightDelta, floatInitializers } from '../../src/bundle/weight-delta.js';

function model(table: Float32Array, weight: Float32Array): Uint8Array {
  const g = new OnnxGraphBuilder({ name: 'delta-test', opset: 17, producerName: 'test' });
  g.input('ids', 'int64', ['n']);
  const gathered = g.op('Gather', [g.initializer('table', table, [6, 4]), 'ids']);
  g.op('MatMul', [gathered, g.initializer('weight', weight, [4, 3])], { output: 'out' });
  g.output('out', 'float32', ['n', 3]);
  return g.toBytes();
}

const table = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i));
const weight = Float32Array.from({ length: 12 }, (_, i) => Math.cos(i));

describe('weight delta', () => {
  it('stores only changed rows, and applying it gives the tuned weights within half a step, deterministically', async () => {
    const tunedTable = Float32Array.from(table);
    tunedTable[1 * 4 + 2]! += 0.01; // row 1 of 6
    tunedTable[4 * 4 + 0]! -= 0.003; // row 4
    const tunedWeight = Float32Array.from(weight, (v, i) => v + 0.001 * Math.sin(7 * i));
    const base = model(table, weight);
    const tuned = model(tunedTable, tunedWeight);
    const { bytes, entries } = encodeWeightDelta(base, tuned);
    assert.deepEqual(entries.map((e) => [e.name, e.rows, e.width]).sort(), [['table', 2, 4], ['weight', 4, 3]]);
    const rebuilt = applyWeightDelta(base, bytes);
    assert.deepEqual(Buffer.from(applyWeightDelta(base, bytes)), Buffer.from(rebuilt), 'the same bytes every time');
    const got = floatInitializers(rebuilt);
    const want = floatInitializers(tuned);
    for (const name of ['table', 'weight']) {
      const g = got.get(name)!.data;
      const w = want.get(name)!.data;
      const rows = got.get(name)!.dims[0]!;
      const width = g.length / rows;
      for (let r = 0; r < rows; r++) {
        let max = 0;
        for (let j = 0; j < width; j++) max = Math.max(max, Math.abs(w[r * width + j]! - floatInitializers(base).get(name)!.data[r * width + j]!));
        for (let j = 0; j < width; j++) assert.ok(Math.abs(g[r * width + j]! - w[r * width + j]!) <= max / 127 / 2 + 1e-7, `${name}[${r},${j}]`);
      }
    }
    // Untouched rows are the pretrained values, bit for bit.
    assert.equal(got.get('table')!.data[0], floatInitializers(base).get('table')!.data[0]);
    const session = await ort.InferenceSession.create(rebuilt);
    const out = await session.run({ ids: new ort.Tensor('int64', BigInt64Array.from([1n, 4n]), [2]) });
    assert.deepEqual(out.out!.dims, [2, 3]);
    await session.release();
  });

  it('is empty for an unchanged model and refuses damaged or foreign bytes', () => {
    const base = model(table, weight);
    const { bytes, entries } = encodeWeightDelta(base, base);
    assert.deepEqual(entries, []);
    assert.deepEqual(Buffer.from(applyWeightDelta(base, bytes)), Buffer.from(applyWeightDelta(base, bytes)));
    const changed = encodeWeightDelta(base, model(Float32Array.from(table, (v) => v + 0.5), weight)).bytes;
    assert.throws(() => applyWeightDelta(base, changed.subarray(0, changed.length - 3)), /truncated/);
    assert.throws(() => applyWeightDelta(base, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9])), /not a Polyhead weight delta/);
  });
});
