// Embedding heads: the backbone's pooled output as it is, or projected by a small ONNX model.
import type { BackboneOutput } from '../backbone.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { gatherPooled } from './features.js';
import type { HeadModelOutput, HeadRow, HeadSpec, LoadedHead } from './head.js';
import { OnnxHeadSession } from './onnx-head.js';

export async function loadEmbeddingHead(spec: HeadSpec, options: SessionOptions): Promise<LoadedHead> {
  const session = spec.file ? await OnnxHeadSession.load(spec, options) : undefined;
  return {
    spec,
    model: session,
    decode(output: HeadModelOutput | undefined, features: BackboneOutput, rows: readonly HeadRow[]): Float32Array[] {
      const { data, dims } = output ?? { data: gatherPooled(features, rows), dims: [rows.length, features.hidden] };
      const width = dims.at(-1)!;
      return rows.map((_, i) => data.slice(i * width, (i + 1) * width));
    },
    release: async () => session?.release(),
  };
}
