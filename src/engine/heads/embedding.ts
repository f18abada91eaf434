// Embedding heads: the backbone's pooled output as it is, or projected by a small ONNX model.
import type { BackboneOutput } from '../backbone.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { gatherPooled } from './features.js';
import type { HeadRow, HeadSpec, LoadedHead } from './head.js';
import { OnnxHeadSession } from './onnx-head.js';

export async function loadEmbeddingHead(spec: HeadSpec, options: SessionOptions): Promise<LoadedHead> {
  const session = spec.file ? await OnnxHeadSession.load(spec, options) : undefined;
  return {
    spec,
    async run(features: BackboneOutput, rows: readonly HeadRow[]): Promise<Float32Array[]> {
      const { data, dims } = session ? await session.run(features, rows) : { data: gatherPooled(features, rows), dims: [rows.length, features.hidden] };
      const width = dims.at(-1)!;
      return rows.map((_, i) => data.slice(i * width, (i + 1) * width));
    },
    release: async () => session?.release(),
  };
}
