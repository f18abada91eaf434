// The "same architecture, random weights" control for the transfer-learning curve: USE-lite's architecture
// (layers, widths, heads, timing signal, pooling, tokenizer) with every learned tensor re-initialised.
//
// Initialisation (seeded): each weight matrix and the embedding table get N(0, sigma^2) where sigma is the
// standard deviation of the corresponding pretrained tensor (so activations have the pretrained scale);
// biases are 0; layer-norm scales 1 and offsets 0. Non-learned constants (timing-signal frequencies,
// attention scale, epsilons, padding bias) are kept.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { defaultUseLiteModelDir } from '../convert/convert-use-lite.js';
import { loadTfGraphModel } from '../convert/tfjs-graph-model.js';
import { readUseLiteArchitecture, type Dense, type LayerNormParams, type UseLiteArchitecture } from '../convert/use-lite-architecture.js';
import { buildUseLiteOnnx } from '../convert/use-lite-onnx.js';
import { createRng, gaussian } from './random.js';

function std(values: Float32Array): number {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2;
  return Math.sqrt(variance / values.length);
}

/** A copy of `arch` with re-initialised learned tensors (see the file comment). */
export function randomiseUseLite(arch: UseLiteArchitecture, seed: string | number): UseLiteArchitecture {
  const normal = gaussian(createRng(`random-backbone:${seed}`));
  const like = (values: Float32Array) => {
    const sigma = std(values);
    return Float32Array.from(values, () => normal() * sigma);
  };
  const dense = (d: Dense): Dense => ({ ...d, weight: like(d.weight), bias: new Float32Array(d.bias.length) });
  const norm = (n: LayerNormParams): LayerNormParams => ({ scale: new Float32Array(n.scale.length).fill(1), bias: new Float32Array(n.bias.length) });
  return {
    ...arch,
    embeddings: like(arch.embeddings),
    layers: arch.layers.map((layer) => ({
      ...layer,
      attentionNorm: norm(layer.attentionNorm),
      qkv: dense(layer.qkv),
      attentionOutput: dense(layer.attentionOutput),
      residualProjection: layer.residualProjection ? dense(layer.residualProjection) : null,
      ffnNorm: norm(layer.ffnNorm),
      ffnIn: dense(layer.ffnIn),
      ffnOut: dense(layer.ffnOut),
    })),
    poolingDense: dense(arch.poolingDense),
  };
}

/** Writes a random-weight USE-lite ONNX file (same inputs/outputs as the pretrained backbone). */
export async function writeRandomUseLiteOnnx(outFile: string, seed: string | number, modelDir: string = defaultUseLiteModelDir()): Promise<void> {
  const arch = readUseLiteArchitecture(await loadTfGraphModel(modelDir));
  const bytes = buildUseLiteOnnx(randomiseUseLite(arch, seed));
  await mkdir(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, outFile);
}
