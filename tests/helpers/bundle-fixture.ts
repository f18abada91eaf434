// Small registry-only bundles for tests: real files and a valid bundle.json, weights that are only bytes.
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FixtureOptions {
  name?: string;
  version?: string;
  parent?: string;
  backboneVersion?: string;
  /** Extra head definitions; the default has a sentiment classifier and an entity tagger. */
  heads?: unknown[];
  /** Applied to the manifest object before it is written. */
  edit?: (manifest: Record<string, any>) => void;
  /** Content of heads/sentiment.onnx (to simulate a changed file). */
  sentimentBytes?: string;
}

export function tempDir(prefix = 'polyhead-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeFixtureBundle(dir: string, options: FixtureOptions = {}): string {
  mkdirSync(join(dir, 'heads'), { recursive: true });
  writeFileSync(join(dir, 'backbone.onnx'), `backbone ${options.backboneVersion ?? '1.0.0'}`);
  writeFileSync(join(dir, 'tokenizer.json'), '{"model":"fixture"}');
  writeFileSync(join(dir, 'heads', 'sentiment.onnx'), options.sentimentBytes ?? 'sentiment head');
  writeFileSync(join(dir, 'heads', 'entities.onnx'), 'entities head');
  const manifest: Record<string, any> = {
    format: 'polyhead-bundle/1',
    name: options.name ?? 'fixture',
    version: options.version ?? '1.0.0',
    ...(options.parent ? { parent: options.parent } : {}),
    description: 'a test bundle',
    license: 'Apache-2.0',
    tokenizer: 'tokenizer.json',
    backbone: {
      name: 'tiny-encoder',
      version: options.backboneVersion ?? '1.0.0',
      architecture: 'transformer encoder, 2 layers',
      layers: 2,
      file: 'backbone.onnx',
      hiddenSize: 512,
      vocabSize: 8000,
      maxTokens: 256,
      pooling: 'mean',
      license: 'Apache-2.0',
      source: { name: 'test-weights', version: '0.0.1', citation: 'Nobody et al. 2026' },
    },
    heads: options.heads ?? [
      {
        name: 'sentiment',
        task: 'classification',
        file: 'heads/sentiment.onnx',
        labels: ['negative', 'positive'],
        reads: 'pooled',
        datasets: [
          { name: 'reviews', role: 'training' },
          { name: 'reviews', role: 'evaluation' },
        ],
      },
      {
        name: 'entities',
        task: 'token_classification',
        file: 'heads/entities.onnx',
        labels: ['O', 'B-PER', 'I-PER'],
        reads: 'tokens',
        datasets: [{ name: 'names', role: 'training' }],
      },
      { name: 'embedding', task: 'embedding', reads: 'pooled' },
    ],
    datasets: [
      { name: 'reviews', source: 'hand-written', license: 'CC0-1.0', size: 100, splits: { train: 80, test: 20 } },
      { name: 'names', source: 'generated', license: 'MIT', size: 50, splits: { train: 50 } },
    ],
    evaluations: [{ head: 'sentiment', dataset: 'reviews', split: 'test', metric: 'accuracy', value: 0.85, samples: 20 }],
  };
  options.edit?.(manifest);
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
