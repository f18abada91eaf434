// The engine on the real backbone with generated ONNX heads: one backbone pass per distinct text, only the
// requested heads run, per-text failures, overload, deadlines, and safe version switches.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { EngineError } from '../../src/engine/errors.js';
import type { Classification, Entity } from '../../src/engine/heads/head.js';
import { loadClassificationHead } from '../../src/engine/heads/classification.js';
import { defaultSessionOptions } from '../../src/engine/onnx-runtime.js';
import type { HeadTiming } from '../../src/engine/serving-model.js';
import { ServingModel, type TextResult } from '../../src/engine/serving-model.js';
import type { BatchStats } from '../../src/engine/scheduler.js';
import { classifierOnnx, writeHeadsBundle } from '../helpers/heads-fixture.js';
import { tempDir } from '../helpers/bundle-fixture.js';

const batches: Array<{ stats: BatchStats; heads: HeadTiming[] }> = [];
const pendingHeads: HeadTiming[] = [];
let engine: Engine;
let bundle: string;

before(async () => {
  bundle = await writeHeadsBundle();
  // Batches run one at a time here (the scheduler's default), so each batch's head timings follow it.
  engine = Engine.withDefaults({
    observer: {
      onBatch: (_model, stats) => batches.push({ stats, heads: pendingHeads.splice(0) }),
      onHeads: (_model, heads) => pendingHeads.push(...heads),
    },
  });
  await engine.load('multi', bundle);
});
after(() => engine.close());

const texts = ['Maria Lopez loved the new Pixar film she saw in Madrid.', 'The service was slow.', 'Apple opened an office in Berlin.', 'Short.'];

function results(settled: Array<TextResult | Error>): TextResult[] {
  return settled.map((r) => {
    if (r instanceof Error) throw r;
    return r;
  });
}

test('concurrent requests share batches; each distinct text runs through the backbone once', async () => {
  batches.length = 0;
  const requests = await Promise.all([
    engine.infer('multi', [texts[0]!, texts[1]!], { heads: ['sentiment'] }),
    engine.infer('multi', [texts[1]!, texts[2]!, texts[1]!], { heads: ['entities'] }),
    engine.infer('multi', [texts[0]!, texts[3]!], { heads: ['sentiment', 'topic'] }),
  ]);
  requests.forEach(results);
  const rows = batches.reduce((sum, b) => sum + b.stats.size, 0);
  assert.equal(rows, 4, `4 distinct texts, ${rows} backbone rows in ${batches.length} batches`);
  assert.equal(batches.length, 1, 'submitted in one tick, they form one batch');
  // Heads ran once each, on just the texts that asked for them.
  const ran = Object.fromEntries(batches[0]!.heads.map((h) => [h.head, h.rows]));
  assert.deepEqual(ran, { sentiment: 3, entities: 2, topic: 2 }); // heads merged per text across requests
});

test('only the requested heads run, and the same text gives the same answer alone or in a batch', async () => {
  batches.length = 0;
  const [alone] = results(await engine.infer('multi', [texts[0]!], { heads: ['sentiment'] }));
  assert.deepEqual(batches[0]!.heads.map((h) => h.head), ['sentiment']);
  const mixed = results(await engine.infer('multi', texts, { heads: ['sentiment', 'entities'] }));
  const a = alone!.heads.get('sentiment') as Classification;
  const b = mixed[0]!.heads.get('sentiment') as Classification;
  assert.equal(a.label, b.label);
  assert.ok(Math.abs(a.score - b.score) < 1e-5);
  assert.deepEqual(a.scores.map((s) => s.label), ['negative', 'positive']);
  assert.ok(Math.abs(a.scores[0]!.score + a.scores[1]!.score - 1) < 1e-6);
  assert.equal(alone!.heads.has('entities'), false);
});

test('entity spans are exact character offsets into the input', async () => {
  const inputs = ['Dr. Émilie Dubois-Martin (ACME Corp.) flew 🛫 to São Paulo, Brazil!', 'Tokyo, Kyoto and Osaka.', ...texts];
  const out = results(await engine.infer('multi', inputs, { heads: ['entities'] }));
  let spans = 0;
  out.forEach((result, i) => {
    for (const entity of result.heads.get('entities') as Entity[]) {
      spans++;
      assert.equal(inputs[i]!.slice(entity.start, entity.end), entity.text);
      assert.ok(['PER', 'ORG', 'LOC'].includes(entity.label));
      assert.ok(entity.score > 0 && entity.score <= 1);
      assert.equal(entity.text, entity.text.trim(), 'no whitespace at span edges');
    }
  });
  assert.ok(spans > 0, 'the generated tagger marks some spans');
});

test('a head that fails fails only the texts that asked for it; the model keeps serving', async () => {
  const model = engine.get('multi');
  // A real head whose ONNX input is 7 wide: it loads, then fails inside the onnxruntime worker on the
  // backbone's 512-wide pooled output, after the backbone and the other heads of the batch ran.
  const file = join(tempDir(), 'fragile.onnx');
  writeFileSync(file, classifierOnnx('fragile', 2, 3, 7));
  const failing = await loadClassificationHead({ name: 'fragile', task: 'classification', reads: 'pooled', labels: ['a', 'b'], file }, defaultSessionOptions);
  const heads = new Map(model.heads);
  heads.set('fragile', failing);
  const serving = new ServingModel('fragile-model', '1', model.backbone, heads, {});
  const [first, second] = await model.backbone.encodeBatch([texts[0]!, texts[1]!]);
  const [bad, good] = await Promise.allSettled([
    serving.submit(texts[0]!, first!, new Set(['fragile']), {}),
    serving.submit(texts[1]!, second!, new Set(['sentiment']), {}),
  ]);
  assert.equal(bad.status, 'rejected');
  assert.equal((bad as PromiseRejectedResult).reason.code, 'INFERENCE_FAILED');
  assert.match((bad as PromiseRejectedResult).reason.message, /head fragile failed: .*dimension/i);
  assert.equal(good.status, 'fulfilled');
  assert.ok((good as PromiseFulfilledResult<TextResult>).value.heads.get('sentiment'));
  await serving.scheduler.close(); // shares the backbone with "multi": do not release it
  await failing.release();
});

test('unknown models and heads are refused before any work', async () => {
  await assert.rejects(engine.infer('nope', ['x'], { heads: [] }), (e: EngineError) => e.code === 'MODEL_NOT_FOUND');
  await assert.rejects(engine.infer('multi', ['x'], { heads: ['sarcasm'] }), (e: EngineError) => e.code === 'HEAD_NOT_FOUND' && /sarcasm/.test(e.message));
});

test('past the queue bound requests fail fast with OVERLOADED and a retry hint', async () => {
  const small = Engine.withDefaults({ scheduler: { maxQueueEntries: 8, maxBatchSize: 4 } });
  await small.load('multi', bundle);
  const many = Array.from({ length: 40 }, (_, i) => `Overload sentence number ${i}.`);
  const settled = await small.infer('multi', many, { heads: ['sentiment'] });
  const overloaded = settled.filter((r): r is EngineError => r instanceof EngineError && r.code === 'OVERLOADED');
  assert.ok(overloaded.length > 0, 'some texts were refused');
  assert.ok(settled.some((r) => !(r instanceof Error)), 'the ones admitted were served');
  assert.ok(overloaded.every((e) => e.retryAfterMs! >= 50 && e.retryAfterMs! <= 5000));
  await small.close();
});

test('a deadline cancels waiting work, and an aborted client stops counting', async () => {
  const many = Array.from({ length: 200 }, (_, i) => `Deadline sentence ${i} with a few more words to make it longer.`);
  const settled = await engine.infer('multi', many, { heads: ['entities'], timeoutMs: 5 });
  assert.ok(settled.some((r) => r instanceof EngineError && r.code === 'DEADLINE_EXCEEDED'));
  const controller = new AbortController();
  const pending = engine.infer('multi', many.map((t) => `${t} again`), { heads: ['entities'], signal: controller.signal });
  controller.abort();
  const aborted = await pending;
  assert.ok(aborted.some((r) => r instanceof EngineError && r.code === 'CANCELLED'));
  assert.equal(engine.depth()[0]!.entries, 0, 'cancelled texts left the queue');
});

test('switching versions: the new one is warmed before it serves; a broken one leaves the old serving', async () => {
  const v2 = await writeHeadsBundle({ version: '2.0.0', seed: 99 });
  await engine.load('multi', v2, '2.0.0');
  assert.equal(engine.get('multi').version, '2.0.0');
  const broken = await writeHeadsBundle({ version: '3.0.0' });
  writeFileSync(join(broken, 'heads', 'topic.onnx'), 'not an onnx model');
  await assert.rejects(engine.load('multi', broken, '3.0.0'), (e: EngineError) => e.code === 'MODEL_LOAD_FAILED' && /topic\.onnx/.test(e.message));
  assert.equal(engine.get('multi').version, '2.0.0');
  const after = results(await engine.infer('multi', [texts[0]!], { heads: ['topic'] }));
  assert.ok((after[0]!.heads.get('topic') as Classification).label);
  await engine.load('multi', bundle, '1.0.0');
});
