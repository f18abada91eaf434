// The onnxruntime layer on real sessions: replicas in several worker threads, and runs chained in the
// worker of the run they read from.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { OnnxSession, defaultSessionOptions, float32Tensor } from '../../src/engine/onnx-runtime.js';
import { classifierOnnx } from '../helpers/heads-fixture.js';

const width = 512;
const rows = 5;
const input = new Float32Array(rows * width).map((_, i) => Math.sin(i));
const opened: OnnxSession[] = [];
after(() => Promise.all(opened.map((session) => session.release())));

async function load(bytes: Uint8Array, replicas: number): Promise<OnnxSession> {
  const session = await OnnxSession.fromBytes(bytes, { ...defaultSessionOptions, replicas });
  opened.push(session);
  return session;
}

test('replicas in separate worker threads compute the same outputs and share concurrent runs', async () => {
  const bytes = classifierOnnx('replicated', 16, 1);
  const [single, double] = await Promise.all([load(bytes, 1), load(bytes, 2)]);
  const expected = (await single.run({ pooled: float32Tensor(input, [rows, width]) }, ['logits'])).logits!;
  const concurrent = await Promise.all(
    Array.from({ length: 8 }, () => double.run({ pooled: float32Tensor(input, [rows, width]) }, ['logits'])),
  );
  for (const out of concurrent) {
    assert.deepEqual(out.logits!.dims, [rows, 16]);
    assert.deepEqual([...out.logits!.data], [...expected.data]);
  }
});

test('a chained run reads the rows it names of the first run, in the worker that has both sessions', async () => {
  const first = await load(classifierOnnx('first', 16, 1), 2);
  const chained = await load(classifierOnnx('second', 3, 2, 16), 1); // only in the first worker thread
  const alone = await load(classifierOnnx('second', 3, 2, 16), 1);
  const pick = [4, 1];
  const runs = await Promise.all(
    Array.from({ length: 4 }, () =>
      first.runChained({ pooled: float32Tensor(input, [rows, width]) }, ['logits'], [{ session: chained, input: 'pooled', from: 'logits', rows: pick, output: 'logits' }]),
    ),
  );
  // The same computation in two separate runs: the chained output must equal it.
  const firstOut = runs[0]!.results.logits!;
  const picked = new Float32Array(pick.length * 16);
  pick.forEach((row, i) => picked.set(firstOut.data.subarray(row * 16, (row + 1) * 16), i * 16));
  const expected = (await alone.run({ pooled: float32Tensor(picked, [pick.length, 16]) }, ['logits'])).logits!;
  for (const run of runs) {
    const [out] = run.chained;
    assert.ok(!(out instanceof Error), String(out));
    assert.deepEqual(out!.dims, [2, 3]);
    assert.deepEqual([...out!.data], [...expected.data]);
  }
});

test('a chained run that fails yields an Error in its place; the first run and other chained runs stand', async () => {
  const first = await load(classifierOnnx('first', 16, 1), 1);
  const good = await load(classifierOnnx('good', 3, 2, 16), 1);
  const bad = await load(classifierOnnx('bad', 3, 2, 7), 1); // 7 wide: fails on the 16-wide output
  const { results, chained } = await first.runChained({ pooled: float32Tensor(input, [rows, width]) }, ['logits'], [
    { session: bad, input: 'pooled', from: 'logits', rows: [0, 1, 2, 3, 4], output: 'logits' },
    { session: good, input: 'pooled', from: 'logits', rows: [0, 1, 2, 3, 4], output: 'logits' },
  ]);
  assert.deepEqual(results.logits!.dims, [rows, 16]);
  assert.ok(chained[0] instanceof Error);
  assert.ok(!(chained[1] instanceof Error));
  assert.deepEqual((chained[1] as { dims: readonly number[] }).dims, [rows, 3]);
});
