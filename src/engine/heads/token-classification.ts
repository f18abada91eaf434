// Token classification: per-token IOB2 tags decoded into entity spans with character offsets.
// Sub-word pieces are merged: a piece glued to the previous one inside a word (no space, letters or digits
// on both sides) takes the tag of the word's first piece, so a word is never split between entities.
import type { BackboneOutput } from '../backbone.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { gatherGraphOutput, softmax } from './features.js';
import type { Entity, HeadModelOutput, HeadRow, HeadSpec, LoadedHead } from './head.js';
import { iobToSpans, type TokenOffset } from './iob.js';
import { OnnxHeadSession } from './onnx-head.js';

const wordChar = /[\p{L}\p{N}]/u;

/** True when token i continues the word of token i-1 (a sub-word piece). */
function continuesWord(text: string, offsets: readonly TokenOffset[], i: number): boolean {
  if (i === 0) return false;
  const [start] = offsets[i]!;
  const [, previousEnd] = offsets[i - 1]!;
  return start === previousEnd && start > 0 && wordChar.test(text[start - 1]!) && wordChar.test(text[start]!);
}

/** Tags per token with sub-word pieces given their word's tag (B- of the first piece becomes I- after it). */
export function mergeSubwordTags(text: string, offsets: readonly TokenOffset[], tags: readonly string[]): string[] {
  const merged = [...tags];
  for (let i = 1; i < merged.length; i++) {
    if (!continuesWord(text, offsets, i)) continue;
    const head = merged[i - 1]!;
    merged[i] = head === 'O' ? 'O' : `I-${head.slice(2)}`;
  }
  return merged;
}

/** `tags` of special tokens ([CLS], [SEP]: empty spans) must be 'O'. */
export function decodeEntities(text: string, offsets: readonly TokenOffset[], tags: readonly string[], tokenScores: ArrayLike<number>): Entity[] {
  const merged = mergeSubwordTags(text, offsets, tags);
  return iobToSpans(merged, offsets, text).map((span) => {
    let sum = 0;
    let count = 0;
    offsets.forEach(([start, end], t) => {
      if (start < span.end && end > span.start && merged[t] !== 'O') {
        sum += tokenScores[t]!;
        count++;
      }
    });
    return { text: text.slice(span.start, span.end), label: span.label, start: span.start, end: span.end, score: count ? sum / count : 0 };
  });
}

export async function loadTokenClassificationHead(spec: HeadSpec, options: SessionOptions): Promise<LoadedHead> {
  // A head inside the backbone's graph (a Hugging Face token-classification model) decodes the graph's logits.
  const session = spec.reads === 'graph' ? undefined : await OnnxHeadSession.load(spec, options);
  const labels = spec.labels;
  for (const label of labels) {
    if (label !== 'O' && !/^[BI]-.+/.test(label)) throw new Error(`head ${spec.name}: label "${label}" is not an IOB2 tag (O, B-X, I-X)`);
  }
  return {
    spec,
    model: session,
    decode(output: HeadModelOutput | undefined, features: BackboneOutput, rows: readonly HeadRow[]): Entity[][] {
      const { data, dims } = output ?? gatherGraphOutput(features, spec.output!, rows);
      if (dims.at(-1) !== labels.length) throw new Error(`head ${spec.name} returned ${dims.at(-1)} scores for ${labels.length} labels`);
      const tokens = features.tokens;
      const probabilities = new Float64Array(labels.length);
      return rows.map((row, i) => {
        const count = row.encoding.ids.length;
        const tags: string[] = new Array(count);
        const scores = new Float64Array(count);
        const special = row.encoding.special;
        for (let t = 0; t < count; t++) {
          if (special?.[t]) {
            tags[t] = 'O'; // [CLS], [SEP], <s>: no text to tag
            continue;
          }
          softmax(data, (i * tokens + t) * labels.length, labels.length, probabilities);
          let best = 0;
          for (let k = 1; k < labels.length; k++) if (probabilities[k]! > probabilities[best]!) best = k;
          tags[t] = labels[best]!;
          scores[t] = probabilities[best]!;
        }
        return decodeEntities(row.text, row.encoding.offsets, tags, scores);
      });
    },
    release: async () => session?.release(),
  };
}
