// The backbone a bundle folder describes, as the engine loads it: its ONNX file and tokenizer resolved
// inside the folder (no path may lead out of it), its size and input/output names from bundle.json.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackboneSpec } from '../engine/backbone.js';
import { resolveInside } from './files.js';
import { parseBundleManifest, type BundleManifest } from './manifest.js';

/**
 * `manifest`: the folder's bundle.json when the caller has parsed it already; `variant`: the precision
 * variant of the graph to use when the bundle has it (fp16 on CUDA, quantized by POLYHEAD_PRECISION=q8).
 */
export async function backboneSpecOf(bundleDir: string, manifest?: BundleManifest, variant?: 'fp16' | 'quantized'): Promise<BackboneSpec> {
  const m = manifest ?? parseBundleManifest(await readFile(join(bundleDir, 'bundle.json'), 'utf8'));
  return {
    name: m.backbone.name,
    file: await resolveInside(bundleDir, (variant && m.backbone.variants[variant]) || m.backbone.file),
    tokenizerFile: await resolveInside(bundleDir, m.tokenizer),
    tokenizerKind: m.tokenizerKind,
    maxTokens: m.backbone.maxTokens,
    hiddenSize: m.backbone.hiddenSize,
    inputs: m.backbone.inputs,
    outputs: m.backbone.outputs,
    pooling: m.backbone.pooling,
  };
}
