// Sequence classification: softmax over the labels; the best label with its score, and every score.
import type { BackboneOutput } from '../backbone.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { gatherGraphOutput, softmax } from './features.js';
import type { Classification, HeadModelOutput, HeadRow, HeadSpec, LoadedHead } from './head.js';
import { OnnxHeadSession } from './onnx-head.js';

export async function loadClassificationHead(spec: HeadSpec, options: SessionOptions): Promise<LoadedHead> {
  // A head inside the backbone's graph (a Hugging Face task model) has no session: it decodes the graph's output.
  const session = spec.reads === 'graph' ? undefined : await OnnxHeadSession.load(spec, options);
  const labels = spec.labels;
  const activate = spec.activation === 'sigmoid' ? sigmoid : softmax;
  return {
    spec,
    model: session,
    decode(output: HeadModelOutput | undefined, features: BackboneOutput, rows: readonly HeadRow[]): Classification[] {
      const { data, dims } = output ?? gatherGraphOutput(features, spec.output!, rows);
      if (dims.at(-1) !== labels.length) throw new Error(`head ${spec.name} returned ${dims.at(-1)} scores for ${labels.length} labels`);
      const probabilities = new Float64Array(labels.length);
      return rows.map((_, i) => {
        activate(data, i * labels.length, labels.length, probabilities);
        let best = 0;
        for (let k = 1; k < labels.length; k++) if (probabilities[k]! > probabilities[best]!) best = k;
        return {
          label: labels[best]!,
          score: probabilities[best]!,
          scores: labels.map((label, k) => ({ label, score: probabilities[k]! })),
        };
      });
    },
    release: async () => session?.release(),
  };
}

/** Independent per-label probabilities (multi-label classification), into `out`. */
function sigmoid(logits: Float32Array, offset: number, count: number, out: Float64Array): void {
  for (let i = 0; i < count; i++) out[i] = 1 / (1 + Math.exp(-logits[offset + i]!));
}
