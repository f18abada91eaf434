// The reference the Marian backend is compared with: Optimum's own graphs of a marian-tiny fixture, run through
// onnxruntime-node directly on the test's thread, one sequence at a time, with the generator's rules (pad never
// generated, eos forced at the limit).
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { HuggingFaceTokenizer } from '../../../src/engine/tokenizers/huggingface.js';
import { applyProcessors, argmax, forceTokenAtLimit, logSoftmaxInPlace, minNewTokens, suppressTokens } from '../../../src/engine/generation/logits-processors.js';
import { BeamSearch } from '../../../src/engine/generation/search.js';
import { tempDir } from '../../helpers/bundle-fixture.js';
import { writeMarianFixture, type MarianFixtureInfo, type MarianLayout } from '../../helpers/marian-fixtures.js';

export const SENTENCES = [
  'The jury said it did not find any evidence.',
  'He was there.',
  'It is a long way from the city to the old house on the hill, and nobody knows why they went.',
  'She asked him what time it was.',
  'They will be back by Monday.',
  'The committee had to make a decision about the new school.',
  'Good morning!',
  'We have seen the results of the election, which were announced yesterday.',
  'Her father was a man of great strength.',
  'This is the first time that the state has been asked to pay for it.',
  'I do not know.',
];

export interface Fixture {
  dir: string;
  info: MarianFixtureInfo;
}

const fixtures = new Map<MarianLayout, Promise<Fixture>>();

/** A marian-tiny folder of the layout, written once per test process. */
export function marianTiny(layout: MarianLayout): Promise<Fixture> {
  let fixture = fixtures.get(layout);
  if (!fixture) {
    const dir = tempDir('polyhead-marian-');
    fixture = writeMarianFixture('marian-tiny', dir, { layout }).then((info) => ({ dir, info }));
    fixtures.set(layout, fixture);
  }
  return fixture;
}

export async function tokenize(dir: string, texts: readonly string[]): Promise<Int32Array[]> {
  const tokenizer = await HuggingFaceTokenizer.load(join(dir, 'tokenizer.json'), { maxTokens: 64 });
  return (await tokenizer.encodeBatch(texts)).map((encoding) => encoding.ids);
}

const int64 = (values: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);

/** Optimum's graphs of one folder, for one sequence at a time (batch 1). */
export class OptimumReference {
  private constructor(
    readonly info: MarianFixtureInfo,
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession | undefined,
    private readonly merged: ort.InferenceSession | undefined,
  ) {}

  static async load({ dir, info }: Fixture): Promise<OptimumReference> {
    const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
    const open = (file: string) => ort.InferenceSession.create(join(dir, 'onnx', file), options);
    return new OptimumReference(
      info,
      await open('encoder_model.onnx'),
      info.layout === 'merged' ? undefined : await open('decoder_model.onnx'),
      info.layout === 'unmerged' ? undefined : await open('decoder_model_merged.onnx'),
    );
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder, this.decoder, this.merged].map((s) => s?.release()));
  }

  async encode(source: Int32Array): Promise<ort.Tensor> {
    const out = await this.encoder.run({ input_ids: int64(source, [1, source.length]), attention_mask: int64(new Array(source.length).fill(1), [1, source.length]) });
    return out.last_hidden_state!;
  }

  /**
   * decoder_model.onnx (no cache) on `rows` prefixes of one length, all reading the same source: the logits of each
   * prefix's last position, [rows, V], and the present decoder keys/values.
   */
  async noCache(hidden: ort.Tensor, sourceLength: number, prefixes: readonly (readonly number[])[]): Promise<{ logits: Float32Array; outputs: ort.InferenceSession.OnnxValueMapType }> {
    const rows = prefixes.length;
    const T = prefixes[0]!.length;
    const S = sourceLength;
    const d = this.info.dModel;
    const states = new Float32Array(rows * S * d);
    for (let r = 0; r < rows; r++) states.set(hidden.data as Float32Array, r * S * d);
    const out = await this.decoder!.run({
      input_ids: int64(prefixes.flat(), [rows, T]),
      encoder_attention_mask: int64(new Array(rows * S).fill(1), [rows, S]),
      encoder_hidden_states: new ort.Tensor('float32', states, [rows, S, d]),
    });
    const V = this.info.vocabSize;
    const all = out.logits!.data as Float32Array;
    const logits = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) logits.set(all.subarray((r * T + T - 1) * V, (r * T + T) * V), r * V);
    return { logits, outputs: out };
  }

  /** The generator's processors, in its order. */
  private processors(limit: number, minNew = 0) {
    return [suppressTokens([this.info.padId]), ...(minNew > 0 ? [minNewTokens(this.info.eosId, minNew)] : []), forceTokenAtLimit(this.info.eosId, limit)];
  }

  /** Greedy decode with decoder_model.onnx, the whole prefix fed at every step. */
  async greedyNoCache(source: Int32Array, limit: number, minNew = 0): Promise<number[]> {
    const hidden = await this.encode(source);
    const tokens: number[] = [];
    const processors = this.processors(limit, minNew);
    while (tokens.length < limit) {
      const { logits } = await this.noCache(hidden, source.length, [[this.info.decoderStartId, ...tokens]]);
      applyProcessors(processors, logits, { generated: tokens });
      const token = argmax(logits);
      tokens.push(token);
      if (token === this.info.eosId) break;
    }
    return tokens;
  }

  /** Greedy decode with the merged decoder: the no-cache branch first, then the cache branch on its presents. */
  async greedyMerged(source: Int32Array, limit: number): Promise<number[]> {
    const { decoderLayers: L, heads: H, headDim: Dh, dModel: d } = this.info;
    const S = source.length;
    const hidden = await this.encode(source);
    const mask = int64(new Array(S).fill(1), [1, S]);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, H, 0, Dh]);
    const past: Record<string, ort.Tensor> = {};
    for (let i = 0; i < L; i++) for (const part of ['decoder', 'encoder']) for (const kv of ['key', 'value']) past[`past_key_values.${i}.${part}.${kv}`] = empty;
    const tokens: number[] = [];
    const processors = this.processors(limit);
    let feed = this.info.decoderStartId;
    while (tokens.length < limit) {
      const first = tokens.length === 0;
      const out = await this.merged!.run({
        input_ids: int64([feed], [1, 1]),
        encoder_attention_mask: mask,
        encoder_hidden_states: first ? hidden : new ort.Tensor('float32', new Float32Array(S * d), [1, S, d]),
        use_cache_branch: new ort.Tensor('bool', Uint8Array.from([first ? 0 : 1]), [1]),
        ...past,
      });
      for (let i = 0; i < L; i++) {
        for (const kv of ['key', 'value']) {
          past[`past_key_values.${i}.decoder.${kv}`] = out[`present.${i}.decoder.${kv}`]!;
          // The encoder's keys/values come from the first step (the cache branch may output empty ones).
          if (first) past[`past_key_values.${i}.encoder.${kv}`] = out[`present.${i}.encoder.${kv}`]!;
        }
      }
      const logits = new Float32Array(out.logits!.data as Float32Array);
      applyProcessors(processors, logits, { generated: tokens });
      const token = argmax(logits);
      tokens.push(token);
      if (token === this.info.eosId) break;
      feed = token;
    }
    return tokens;
  }

  /** Beam search over decoder_model.onnx (every hypothesis's whole prefix each step), as the generator runs it. */
  async beamNoCache(source: Int32Array, limit: number, beams: number, lengthPenalty = 1): Promise<{ tokens: number[]; score?: number }> {
    const hidden = await this.encode(source);
    const search = new BeamSearch({ eosTokenId: this.info.eosId, maxNewTokens: limit, beams, lengthPenalty, earlyStopping: false });
    const processors = this.processors(limit);
    const V = this.info.vocabSize;
    while (!search.done) {
      const hypotheses = search.hypotheses;
      const { logits } = await this.noCache(hidden, source.length, hypotheses.map((h) => [this.info.decoderStartId, ...h]));
      const scores = hypotheses.map((generated, i) => {
        const row = logits.subarray(i * V, (i + 1) * V);
        logSoftmaxInPlace(row);
        applyProcessors(processors, row, { generated });
        return row;
      });
      search.advance(scores);
    }
    return search.result();
  }
}

/** The generator's result for reference tokens. */
export function asResult(tokens: readonly number[], eos: number): number[] {
  return tokens.at(-1) === eos ? tokens.slice(0, -1) : [...tokens];
}
