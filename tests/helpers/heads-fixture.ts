// A real bundle for engine tests: the default USE-lite backbone with small ONNX heads generated here
// (seeded random weights): a sentiment classifier, a topic classifier, an entity tagger, and optionally a
// head that fails at run time (its weights do not fit the backbone's width).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDefaultBundle } from '../../src/bundle/default-bundle.js';
import { OnnxGraphBuilder } from '../../src/onnx/graph-builder.js';
import { tempDir } from './bundle-fixture.js';
import { sharedBundleDir } from './server.js';

const hidden = 512;
export const entityTags = ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'];

function seededWeights(count: number, seed: number, scale: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

export function classifierOnnx(name: string, labels: number, seed: number, inputWidth = hidden): Uint8Array {
  const g = new OnnxGraphBuilder({ name });
  // A mismatched width is declared symbolic so it loads and only fails when run.
  g.input('pooled', 'float32', ['batch', inputWidth === hidden ? hidden : 'features']);
  const w = g.initializer('weight', seededWeights(inputWidth * labels, seed, 0.5), [inputWidth, labels]);
  const b = g.initializer('bias', new Float32Array(labels), [labels]);
  g.node('Add', [g.op('MatMul', ['pooled', w]), b], { outputs: ['logits'] });
  g.output('logits', 'float32', ['batch', labels]);
  return g.toBytes();
}

/** Per-token linear tagger over token_states; the bias favours "O" so most tokens stay outside entities. */
export function taggerOnnx(seed: number): Uint8Array {
  const labels = entityTags.length;
  const g = new OnnxGraphBuilder({ name: 'entities' });
  g.input('token_states', 'float32', ['batch', 'tokens', hidden]);
  g.input('attention_mask', 'int64', ['batch', 'tokens']);
  const w = g.initializer('weight', seededWeights(hidden * labels, seed, 0.3), [hidden, labels]);
  const b = g.floats('bias', [1.5, 0, 0, 0, 0, 0, 0]);
  g.node('Add', [g.op('MatMul', ['token_states', w]), b], { outputs: ['logits'] });
  g.output('logits', 'float32', ['batch', 'tokens', labels]);
  return g.toBytes();
}

export interface HeadsBundleOptions {
  name?: string;
  version?: string;
  withBrokenHead?: boolean;
  seed?: number;
}

/** Writes a complete bundle (backbone copied from the built default bundle) and returns its folder. */
export async function writeHeadsBundle(options: HeadsBundleOptions = {}): Promise<string> {
  const source = await ensureDefaultBundle(sharedBundleDir);
  const dir = tempDir('polyhead-heads-');
  mkdirSync(join(dir, 'heads'));
  copyFileSync(join(source, 'backbone.onnx'), join(dir, 'backbone.onnx'));
  copyFileSync(join(source, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const seed = options.seed ?? 7;
  writeFileSync(join(dir, 'heads', 'sentiment.onnx'), classifierOnnx('sentiment', 2, seed));
  writeFileSync(join(dir, 'heads', 'topic.onnx'), classifierOnnx('topic', 3, seed + 1));
  writeFileSync(join(dir, 'heads', 'entities.onnx'), taggerOnnx(seed + 2));
  const heads: unknown[] = [
    { name: 'sentiment', task: 'classification', file: 'heads/sentiment.onnx', labels: ['negative', 'positive'], reads: 'pooled' },
    { name: 'topic', task: 'classification', file: 'heads/topic.onnx', labels: ['sports', 'business', 'science'], reads: 'pooled' },
    { name: 'entities', task: 'token_classification', file: 'heads/entities.onnx', labels: entityTags, reads: 'tokens' },
    { name: 'embedding', task: 'embedding', reads: 'pooled' },
  ];
  if (options.withBrokenHead) {
    writeFileSync(join(dir, 'heads', 'broken.onnx'), classifierOnnx('broken', 2, seed + 3, 300));
    heads.push({ name: 'broken', task: 'classification', file: 'heads/broken.onnx', labels: ['a', 'b'], reads: 'pooled' });
  }
  const manifest = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(source, 'bundle.json'), 'utf8')));
  manifest.name = options.name ?? 'multi';
  manifest.version = options.version ?? '1.0.0';
  manifest.heads = heads;
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
