// Precision variants of an imported graph: onnx/model_fp16.onnx and onnx/model_quantized.onnx are recorded with the
// bundle and loaded in place of onnx/model.onnx when the runtime prefers them (fp16 on CUDA, POLYHEAD_PRECISION=q8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { defaultSessionOptions } from '../../src/engine/onnx-runtime.js';
import { readConfig } from '../../src/config.js';
import { planHuggingFaceImport, writeBundle } from '../../src/import/huggingface/import-hf.js';
import { tempDir } from '../helpers/bundle-fixture.js';
import { writeHfFixture } from '../helpers/hf-fixtures.js';

test('fp16 and quantized siblings are part of the bundle and chosen by the preferred variant', async () => {
  const dir = join(tempDir(), 'bert');
  await writeHfFixture('bert', dir);
  // Stand-ins with the same graph: what is tested is which file is loaded, not its precision.
  copyFileSync(join(dir, 'onnx', 'model.onnx'), join(dir, 'onnx', 'model_quantized.onnx'));
  copyFileSync(join(dir, 'onnx', 'model.onnx'), join(dir, 'onnx', 'model_fp16.onnx'));
  const plan = await planHuggingFaceImport(dir);
  assert.deepEqual(plan.manifest.backbone.variants, { fp16: 'onnx/model_fp16.onnx', quantized: 'onnx/model_quantized.onnx' });
  assert.ok(plan.files.includes('onnx/model_quantized.onnx') && plan.files.includes('onnx/model_fp16.onnx'));
  const bundle = tempDir();
  await writeBundle(plan.root, plan.manifest, plan.files, bundle);
  for (const [variant, file] of [[undefined, 'model.onnx'], ['quantized', 'model_quantized.onnx'], ['fp16', 'model_fp16.onnx']] as const) {
    const engine = Engine.withDefaults({ session: { ...defaultSessionOptions, preferredVariant: variant } });
    try {
      await engine.load('bert', bundle);
      assert.ok(engine.get('bert').backbone.spec.file.endsWith(join('onnx', file)), `${variant ?? 'fp32'} loads ${file}`);
    } finally {
      await engine.close();
    }
  }
  assert.equal(readConfig({ POLYHEAD_PRECISION: 'q8' }).precision, 'q8');
});
