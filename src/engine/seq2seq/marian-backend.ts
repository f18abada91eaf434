// The Marian (opus-mt) backend of the generation core (src/engine/generation/backend.ts): Optimum's encoder graph
// as it is, and Polyhead's own cross and step graphs (marian-step-graph.ts) built from the weights of the folder's
// decoder file, so that every row of a step sits at its own length.
//
// Caches live here, in JavaScript:
// - Self-attention cache, one per slot: a Float32Array laid out [layer][k|v][head][capacity][head_dim] (layer-major,
//   then key before value, then head; within a head the positions 0 .. capacity-1, each head_dim floats). A head's
//   past is thus one contiguous run of length x head_dim floats, which is what a step copies into the batch tensors.
//   Capacity starts at `initialCapacity` positions and doubles (up to maxPositions) when a token does not fit, the
//   positions copied over. Released buffers are kept for reuse up to `spareCacheBytes`.
// - Cross-attention keys/values, one per encoded source: per layer a key and a value array [head][length][head_dim],
//   trimmed to the source's own length. Its mask is implicit (the first `length` positions).
//
// What each call copies (B rows, P = the longest row's past, S = the longest source; L layers, H heads, Dh):
// - step: (1) gathers each row's past into past_key_{i}/past_value_{i} [B, H, P, Dh], one copy per row, layer, k/v
//   and head of position x Dh floats: 2 L B H P Dh floats; (2) gathers each row's source keys/values into
//   cross_key_{i}/cross_value_{i} [B, H, S, Dh], one copy per row, layer and k/v (per head when the row's source is
//   shorter than S): 2 L B H S Dh floats; (3) the feeds are moved to the worker thread, not copied; (4) the worker
//   copies the outputs out of onnxruntime (logits B V, new keys/values 2 L B H Dh floats) and moves them back;
//   (5) scatters the new keys/values into the slots: 2 L B H Dh floats. The logits are returned as they came.
// - encode: pads the ids (B S int64), moves them to the encoder; the encoder output [B, S, d] comes back and is moved
//   to the cross graph; its outputs come back and are trimmed per source (a copy of 2 L H S_n Dh floats per source;
//   none for a lone source, whose outputs are kept as they are).
// - fork: the source slot's used positions, 2 L H length Dh floats. Growth: the same, once per doubling.
// For opus-mt's shape (L 6, H 8, Dh 64, V 58101) at 64 rows, P 30, S 25, a step copies (1) 47.2 MB, (2) 39.3 MB,
// (4) 14.9 + 1.6 MB, (5) 1.6 MB: about 105 MB (copying the feeds to the worker instead of moving them would add 86.5).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EncodedSource, Seq2SeqBackend, StepRow } from '../generation/backend.js';
import { defaultSessionOptions, float32Tensor, int64Tensor, OnnxSession, type Feeds, type SessionOptions } from '../onnx-runtime.js';
import { buildMarianCrossGraph, buildMarianStepGraph, stepInputNames, stepOutputNames } from './marian-step-graph.js';
import { marianConfig, readMarianDecoderWeights, type MarianConfig } from './marian-weights.js';

export interface MarianBackendOptions {
  /** onnxruntime options of the three sessions. Default: defaultSessionOptions. */
  session: SessionOptions;
  /** The encoder graph, relative to the folder. Default: onnx/encoder_model.onnx (or encoder_model.onnx). */
  encoderFile?: string;
  /**
   * The decoder file the weights are read from, relative to the folder. Default: the first present of
   * decoder_model_merged.onnx, decoder_model.onnx (under onnx/, or at the top). decoder_with_past_model.onnx alone
   * lacks the cross-attention projections and is refused.
   */
  decoderFile?: string;
  /** Positions a slot's cache holds before it first grows. Default 16. */
  initialCapacity: number;
  /** Released cache buffers kept for reuse, in bytes. Default 64 MiB. */
  spareCacheBytes: number;
}

const ENCODER_FILES = ['onnx/encoder_model.onnx', 'encoder_model.onnx'];
const DECODER_FILES = ['onnx/decoder_model_merged.onnx', 'onnx/decoder_model.onnx', 'decoder_model_merged.onnx', 'decoder_model.onnx'];

/** One encoded source: per layer its cross-attention key and value, each [H, length, Dh]. */
class MarianEncoded {
  released = false;
  constructor(
    readonly length: number,
    /** keys[i], values[i]: layer i. */
    public keys: Float32Array[],
    public values: Float32Array[],
  ) {}
}

/** One slot's self-attention cache: [layer][k|v][head][capacity][Dh], positions 0 .. length-1 valid. */
interface SlotCache {
  data: Float32Array;
  capacity: number;
  length: number;
}

export class MarianBackend implements Seq2SeqBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;
  private readonly layers: number;
  private readonly heads: number;
  private readonly headDim: number;
  private readonly caches = new Map<number, SlotCache>();
  private readonly spares = new Map<number, Float32Array[]>();
  private spareBytes = 0;
  private readonly names: { in: ReturnType<typeof stepInputNames>; out: ReturnType<typeof stepOutputNames> };
  private readonly encoderOutput: string;

  private constructor(
    readonly config: MarianConfig,
    /** The file the decoder weights were read from. */
    readonly decoderFile: string,
    private readonly encoder: OnnxSession,
    private readonly cross: OnnxSession,
    private readonly stepSession: OnnxSession,
    sizes: { heads: number; headDim: number; vocabSize: number; maxPositions: number },
    private readonly options: MarianBackendOptions,
  ) {
    this.layers = config.decoderLayers;
    this.heads = sizes.heads;
    this.headDim = sizes.headDim;
    this.vocabSize = sizes.vocabSize;
    this.maxPositions = sizes.maxPositions;
    this.names = { in: stepInputNames(this.layers), out: stepOutputNames(this.layers) };
    this.encoderOutput = encoder.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : encoder.outputNames[0]!;
  }

  /** Loads a Marian folder in Optimum's layout (config.json, onnx/encoder_model.onnx, a decoder file). */
  static async load(folder: string, options: Partial<MarianBackendOptions> = {}): Promise<MarianBackend> {
    const opts: MarianBackendOptions = { session: defaultSessionOptions, initialCapacity: 16, spareCacheBytes: 64 * 2 ** 20, ...options };
    if (!Number.isInteger(opts.initialCapacity) || opts.initialCapacity < 1) throw new TypeError(`MarianBackend: initialCapacity must be a positive integer, got ${opts.initialCapacity}`);
    const configFile = join(folder, 'config.json');
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${configFile}: ${(error as Error).message}`);
    }
    const config = marianConfig(json, configFile);
    const pick = (given: string | undefined, candidates: string[], what: string) => {
      if (given) return join(folder, given);
      const found = candidates.map((file) => join(folder, file)).find((file) => existsSync(file));
      if (!found) throw new Error(`${folder}: no ${what} (looked for ${candidates.join(', ')})`);
      return found;
    };
    const encoderFile = pick(opts.encoderFile, ENCODER_FILES, 'encoder graph');
    const decoderFile = pick(opts.decoderFile, DECODER_FILES, 'decoder graph to read the weights from');

    const loads: Array<Promise<OnnxSession>> = [OnnxSession.load(encoderFile, opts.session)];
    // Awaited below; this only keeps a failure that comes early from being reported as unhandled.
    loads[0]!.catch(() => {});
    let sizes: { heads: number; headDim: number; vocabSize: number; maxPositions: number };
    const settled = await (async () => {
      try {
        // The weights are only held while the two graphs are built; the sessions keep their own copies.
        const weights = await readMarianDecoderWeights(decoderFile, config);
        sizes = { heads: weights.heads, headDim: weights.headDim, vocabSize: weights.vocabSize, maxPositions: weights.maxPositions };
        loads.push(OnnxSession.fromBytes(buildMarianCrossGraph(weights), opts.session));
        loads.push(OnnxSession.fromBytes(buildMarianStepGraph(weights), opts.session));
      } catch (error) {
        loads.push(Promise.reject(error));
      }
      return Promise.allSettled(loads);
    })();
    const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      // All or nothing: the sessions that did load are released.
      await Promise.allSettled(settled.map((result) => (result.status === 'fulfilled' ? result.value.release() : undefined)));
      throw failed.reason;
    }
    const sessions = settled.map((result) => (result as PromiseFulfilledResult<OnnxSession>).value);
    const [encoder, cross, step] = sessions as [OnnxSession, OnnxSession, OnnxSession];
    return new MarianBackend(config, decoderFile, encoder, cross, step, sizes!, opts);
  }

  /** Releases the three sessions; the backend cannot run afterwards. */
  async close(): Promise<void> {
    this.caches.clear();
    this.spares.clear();
    await Promise.all([this.encoder.release(), this.cross.release(), this.stepSession.release()]);
  }

  async encode(sources: Int32Array[]): Promise<EncodedSource[]> {
    const count = sources.length;
    if (count === 0) return [];
    let width = 0;
    for (const source of sources) {
      if (!(source instanceof Int32Array) || source.length === 0) throw new TypeError('MarianBackend.encode: every source must be a non-empty Int32Array');
      width = Math.max(width, source.length);
    }
    if (width > this.config.maxPositions) throw new RangeError(`MarianBackend.encode: a source of ${width} tokens exceeds max_position_embeddings (${this.config.maxPositions})`);
    const ids = new BigInt64Array(count * width).fill(BigInt(this.config.padTokenId));
    const mask = new BigInt64Array(count * width);
    sources.forEach((source, n) => {
      for (let j = 0; j < source.length; j++) {
        ids[n * width + j] = BigInt(source[j]!);
        mask[n * width + j] = 1n;
      }
    });
    const feeds: Feeds = { input_ids: int64Tensor(ids, [count, width]) };
    if (this.encoder.inputNames.includes('attention_mask')) feeds.attention_mask = int64Tensor(mask, [count, width]);
    const hidden = (await this.encoder.run(feeds, [this.encoderOutput], { moveFeeds: true }))[this.encoderOutput]!;
    const { crossKey, crossValue } = this.names.in;
    const out = await this.cross.run({ encoder_hidden_states: float32Tensor(hidden.data, hidden.dims) }, [...crossKey, ...crossValue], { moveFeeds: true });
    const { heads: H, headDim: Dh } = this;
    return sources.map((source, n) => {
      const length = source.length;
      // [count, H, width, Dh] -> this source's [H, length, Dh].
      const trim = (name: string): Float32Array => {
        const all = out[name]!.data;
        if (count === 1) return all;
        const own = new Float32Array(H * length * Dh);
        for (let h = 0; h < H; h++) {
          const from = (n * H + h) * width * Dh;
          own.set(all.subarray(from, from + length * Dh), h * length * Dh);
        }
        return own;
      };
      return new MarianEncoded(length, crossKey.map(trim), crossValue.map(trim));
    });
  }

  releaseEncoded(encoded: EncodedSource): void {
    if (!(encoded instanceof MarianEncoded)) return;
    encoded.released = true;
    encoded.keys = [];
    encoded.values = [];
  }

  async step(rows: StepRow[]): Promise<Float32Array> {
    const B = rows.length;
    if (B === 0) return new Float32Array(0);
    const { layers: L, heads: H, headDim: Dh } = this;
    const seen = new Set<number>();
    let P = 1; // at least one (masked) past position: the graph never sees an empty past tensor
    let S = 0;
    const caches: SlotCache[] = new Array(B);
    rows.forEach((row, r) => {
      const { slot, position, encoded } = row;
      if (seen.has(slot)) throw new Error(`MarianBackend.step: slot ${slot} appears twice in one step`);
      seen.add(slot);
      if (!(encoded instanceof MarianEncoded) || encoded.released) throw new Error(`MarianBackend.step: row ${r} has no live encoded source`);
      if (!Number.isInteger(position) || position < 0 || position >= this.maxPositions) throw new RangeError(`MarianBackend.step: position ${position} is outside [0, ${this.maxPositions})`);
      if (!Number.isInteger(row.token) || row.token < 0 || row.token >= this.vocabSize) throw new RangeError(`MarianBackend.step: token ${row.token} is not below ${this.vocabSize}`);
      let cache = this.caches.get(slot);
      if (position === 0) {
        if (!cache) this.caches.set(slot, (cache = this.newCache(this.options.initialCapacity)));
        cache.length = 0;
      } else if (!cache || cache.length !== position) {
        throw new Error(`MarianBackend.step: slot ${slot} holds ${cache?.length ?? 0} positions, but its row feeds position ${position}`);
      }
      caches[r] = cache;
      P = Math.max(P, position);
      S = Math.max(S, encoded.length);
    });

    const inputIds = new BigInt64Array(B);
    const positions = new BigInt64Array(B);
    const selfMask = new Float32Array(B * P);
    const crossMask = new Float32Array(B * S);
    const feeds: Feeds = {
      [this.names.in.inputIds]: int64Tensor(inputIds, [B]),
      [this.names.in.positions]: int64Tensor(positions, [B]),
      [this.names.in.selfMask]: float32Tensor(selfMask, [B, P]),
      [this.names.in.crossMask]: float32Tensor(crossMask, [B, S]),
    };
    rows.forEach((row, r) => {
      inputIds[r] = BigInt(row.token);
      positions[r] = BigInt(row.position);
      selfMask.fill(1, r * P, r * P + row.position);
      crossMask.fill(1, r * S, r * S + (row.encoded as MarianEncoded).length);
    });
    // Copy (1): the rows' past, head by head, into [B, H, P, Dh]; unused positions stay 0 (masked).
    for (let l = 0; l < L; l++) {
      for (let kv = 0; kv < 2; kv++) {
        const past = new Float32Array(B * H * P * Dh);
        rows.forEach((row, r) => {
          const length = row.position;
          if (length === 0) return;
          const { data, capacity } = caches[r]!;
          for (let h = 0; h < H; h++) {
            const from = ((l * 2 + kv) * H + h) * capacity * Dh;
            past.set(data.subarray(from, from + length * Dh), (r * H + h) * P * Dh);
          }
        });
        feeds[(kv === 0 ? this.names.in.pastKey : this.names.in.pastValue)[l]!] = float32Tensor(past, [B, H, P, Dh]);
      }
    }
    // Copy (2): each row's source keys/values into [B, H, S, Dh] (a row of one request's beams each gets a copy).
    for (let l = 0; l < L; l++) {
      for (let kv = 0; kv < 2; kv++) {
        const cross = new Float32Array(B * H * S * Dh);
        rows.forEach((row, r) => {
          const encoded = row.encoded as MarianEncoded;
          const source = (kv === 0 ? encoded.keys : encoded.values)[l]!;
          if (encoded.length === S) {
            cross.set(source, r * H * S * Dh);
            return;
          }
          const run = encoded.length * Dh;
          for (let h = 0; h < H; h++) cross.set(source.subarray(h * run, (h + 1) * run), (r * H + h) * S * Dh);
        });
        feeds[(kv === 0 ? this.names.in.crossKey : this.names.in.crossValue)[l]!] = float32Tensor(cross, [B, H, S, Dh]);
      }
    }

    const { logits, newKey, newValue } = this.names.out;
    // (3) moved, not copied; (4) the outputs come back moved.
    const out = await this.stepSession.run(feeds, [logits, ...newKey, ...newValue], { moveFeeds: true });

    // Copy (5): each row's new key/value into its slot at its position. A slot released while the step ran is skipped.
    rows.forEach((row, r) => {
      const cache = caches[r]!;
      if (this.caches.get(row.slot) !== cache) return;
      const position = row.position;
      if (position >= cache.capacity) this.grow(cache, position + 1);
      const { data, capacity } = cache;
      for (let l = 0; l < L; l++) {
        for (let kv = 0; kv < 2; kv++) {
          const produced = out[(kv === 0 ? newKey : newValue)[l]!]!.data;
          for (let h = 0; h < H; h++) {
            const from = (r * H + h) * Dh;
            data.set(produced.subarray(from, from + Dh), (((l * 2 + kv) * H + h) * capacity + position) * Dh);
          }
        }
      }
      cache.length = position + 1;
    });
    return out[logits]!.data;
  }

  release(slot: number): void {
    const cache = this.caches.get(slot);
    if (!cache) return;
    this.caches.delete(slot);
    this.recycle(cache.data, cache.capacity);
  }

  fork(from: number, to: number): void {
    if (from === to) return;
    const source = this.caches.get(from);
    this.release(to);
    if (!source) return;
    const copy = this.newCache(source.capacity);
    this.copyPositions(source, copy);
    this.caches.set(to, copy);
  }

  /** Positions 0 .. source.length-1 of every layer, k/v and head into `target` (whose capacity may differ). */
  private copyPositions(source: SlotCache, target: SlotCache): void {
    const { layers: L, heads: H, headDim: Dh } = this;
    const run = source.length * Dh;
    if (source.capacity === target.capacity && source.length === source.capacity) {
      target.data.set(source.data);
    } else if (run > 0) {
      for (let block = 0; block < L * 2 * H; block++) {
        const from = block * source.capacity * Dh;
        target.data.set(source.data.subarray(from, from + run), block * target.capacity * Dh);
      }
    }
    target.length = source.length;
  }

  private grow(cache: SlotCache, needed: number): void {
    const capacity = Math.min(this.maxPositions, Math.max(needed, cache.capacity * 2));
    const grown = this.newCache(capacity);
    this.copyPositions(cache, grown);
    this.recycle(cache.data, cache.capacity);
    cache.data = grown.data;
    cache.capacity = capacity;
  }

  private newCache(capacity: number): SlotCache {
    const spare = this.spares.get(capacity)?.pop();
    if (spare) this.spareBytes -= spare.byteLength;
    return { data: spare ?? new Float32Array(this.layers * 2 * this.heads * capacity * this.headDim), capacity, length: 0 };
  }

  private recycle(data: Float32Array, capacity: number): void {
    if (this.spareBytes + data.byteLength > this.options.spareCacheBytes) return;
    let list = this.spares.get(capacity);
    if (!list) this.spares.set(capacity, (list = []));
    list.push(data);
    this.spareBytes += data.byteLength;
  }
}
