// Sequence classification: softmax over the labels; the best label with its score, and every score.
import type { BackboneOutput } from '../backbone.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { softmax } from './features.js';
import type { Classification, HeadModelOutput, HeadRow, HeadSpec, LoadedHead } from './head.js';
import { OnnxHeadSession } from './onnx-head.js';

export async function loadClassificationHead(spec: HeadSpec, options: SessionOptions): Promise<LoadedHead> {
  const session = await OnnxHeadSession.load(spec, options);
  const labels = spec.labels;
  return {
    spec,
    model: session,
    decode(output: HeadModelOutput | undefined, _features: BackboneOutput, rows: readonly HeadRow[]): Classification[] {
      const { data, dims } = output!;
      if (dims.at(-1) !== labels.length) throw new Error(`head ${spec.name} returned ${dims.at(-1)} scores for ${labels.length} labels`);
      const probabilities = new Float64Array(labels.length);
      return rows.map((_, i) => {
        softmax(data, i * labels.length, labels.length, probabilities);
        let best = 0;
        for (let k = 1; k < labels.length; k++) if (probabilities[k]! > probabilities[best]!) best = k;
        return {
          label: labels[best]!,
          score: probabilities[best]!,
          scores: labels.map((label, k) => ({ label, score: probabilities[k]! })),
        };
      });
    },
    release: () => session.release(),
  };
}
