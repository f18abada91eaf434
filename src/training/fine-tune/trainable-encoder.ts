// A bundle's backbone made trainable: its tokenizer, and its ONNX graph behind the autodiff engine
// (src/training/autodiff), giving token states and the pooled embedding of a batch and, from their upstream
// gradients, the gradients of every trainable weight. Pooling the engine does itself (a Hugging Face encoder without
// a pooled output) is done here in TypeScript, with its backward, so both kinds of backbone train the same way.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { backboneSpecOf } from '../../bundle/backbone-spec.js';
import type { PoolingMode } from '../../bundle/manifest.js';
import type { BackboneSpec } from '../../engine/backbone.js';
import { loadTokenizer } from '../../engine/tokenizers/registry.js';
import type { TextEncoding, Tokenizer } from '../../engine/tokenizers/tokenizer.js';
import { DifferentiableGraph, type Gradient, type Param } from '../autodiff/index.js';

export interface EncodedBatch {
  rows: number;
  /** Padded length of the batch. */
  tokens: number;
  hidden: number;
  /** [rows * tokens] 1 for a real token. */
  mask: Uint8Array;
  /** [rows, tokens, hidden]. */
  tokenStates: Float32Array;
  /** [rows, hidden]. */
  pooled: Float32Array;
}

/** Float initializers that are not weights: the timing signal, epsilons and other constants of the graph. */
const CONSTANT_NAMES = /timescale|epsilon|padding_bias|^one_f$|^const|^l2_/i;

export interface TrainableEncoderOptions {
  threads?: number;
  device?: 'cpu' | 'cuda';
  /** Also train the token embedding table (default true). */
  trainEmbeddings?: boolean;
}

export class TrainableEncoder {
  private last: EncodedBatch | undefined;

  private constructor(
    readonly spec: BackboneSpec,
    readonly tokenizer: Tokenizer,
    readonly graph: DifferentiableGraph,
    /** Set when the graph has no pooled output and the engine pools its token states. */
    private readonly pooling: PoolingMode | undefined,
  ) {}

  static async load(bundleDir: string, options: TrainableEncoderOptions = {}): Promise<TrainableEncoder> {
    const spec = await backboneSpecOf(bundleDir);
    if (!spec.outputs.tokens) throw new Error(`${bundleDir}: the backbone has no token states output; only encoders with token states can be fine-tuned`);
    const pooling = spec.outputs.pooled ? undefined : (spec.pooling as PoolingMode);
    if (pooling && !['mean', 'cls', 'max'].includes(pooling)) throw new Error(`${bundleDir}: unknown pooling ${pooling}`);
    const trainEmbeddings = options.trainEmbeddings ?? true;
    const [tokenizer, model] = await Promise.all([loadTokenizer(spec.tokenizerKind, spec.tokenizerFile, spec.maxTokens), readFile(spec.file)]);
    const graph = await DifferentiableGraph.create(new Uint8Array(model), {
      outputs: [spec.outputs.tokens, ...(spec.outputs.pooled ? [spec.outputs.pooled] : [])],
      threads: options.threads ?? 1,
      device: options.device ?? 'cpu',
      trainable: (name, dims) => {
        const size = dims.reduce((a, b) => a * b, 1);
        if (size <= 1 || CONSTANT_NAMES.test(name)) return false;
        if (!trainEmbeddings && /embed/i.test(name)) return false;
        return true;
      },
    });
    return new TrainableEncoder(spec, tokenizer, graph, pooling);
  }

  get params(): readonly Param[] {
    return this.graph.params;
  }

  encode(texts: readonly string[]): TextEncoding[] | Promise<TextEncoding[]> {
    return this.tokenizer.encodeBatch(texts);
  }

  /** Runs a padded batch; remembers it for backward. */
  async forward(encodings: readonly TextEncoding[]): Promise<EncodedBatch> {
    const rows = encodings.length;
    const tokens = Math.max(1, ...encodings.map((e) => e.ids.length));
    const ids = new BigInt64Array(rows * tokens);
    const maskIds = new BigInt64Array(rows * tokens);
    const mask = new Uint8Array(rows * tokens);
    const { inputs, outputs, hiddenSize: hidden } = this.spec;
    const typeIds = inputs.typeIds ? new BigInt64Array(rows * tokens) : undefined;
    encodings.forEach((encoding, r) => {
      encoding.ids.forEach((id, t) => {
        ids[r * tokens + t] = BigInt(id);
        maskIds[r * tokens + t] = 1n;
        mask[r * tokens + t] = 1;
        if (typeIds && encoding.typeIds) typeIds[r * tokens + t] = BigInt(encoding.typeIds[t]!);
      });
    });
    const feeds: Record<string, ort.Tensor> = {
      [inputs.ids]: new ort.Tensor('int64', ids, [rows, tokens]),
      [inputs.mask]: new ort.Tensor('int64', maskIds, [rows, tokens]),
    };
    if (typeIds) feeds[inputs.typeIds!] = new ort.Tensor('int64', typeIds, [rows, tokens]);
    const result = await this.graph.forward(feeds);
    const tokenStates = result[outputs.tokens!]!.data;
    const pooled = outputs.pooled ? result[outputs.pooled]!.data : poolTokens(tokenStates, mask, rows, tokens, hidden, this.pooling!);
    this.last = { rows, tokens, hidden, mask, tokenStates, pooled };
    return this.last;
  }

  /** Weight gradients from dLoss/dtokenStates and dLoss/dpooled of the last forward (either may be absent). */
  async backward(dTokens: Float32Array | undefined, dPooled: Float32Array | undefined): Promise<Map<string, Gradient>> {
    const batch = this.last;
    if (!batch) throw new Error('TrainableEncoder.backward before forward');
    const { outputs } = this.spec;
    const seeds: Record<string, Float32Array> = {};
    let tokenSeed = dTokens;
    if (dPooled && this.pooling) {
      tokenSeed = tokenSeed ? Float32Array.from(tokenSeed) : new Float32Array(batch.rows * batch.tokens * batch.hidden);
      poolTokensBackward(dPooled, batch, this.pooling, tokenSeed);
    } else if (dPooled) seeds[outputs.pooled!] = dPooled;
    if (tokenSeed) seeds[outputs.tokens!] = tokenSeed;
    return this.graph.backward(seeds);
  }

  /** The backbone's ONNX with the current weights. */
  toModelBytes(): Uint8Array {
    return this.graph.toModelBytes();
  }

  release(): Promise<void> {
    return this.graph.release();
  }
}

/** The engine's pooling (src/engine/encoders/pooling.ts) in TypeScript: mean over the mask, the first token, or max. */
export function poolTokens(states: Float32Array, mask: Uint8Array, rows: number, tokens: number, hidden: number, mode: PoolingMode): Float32Array {
  const pooled = new Float32Array(rows * hidden);
  for (let r = 0; r < rows; r++) {
    const out = pooled.subarray(r * hidden, (r + 1) * hidden);
    if (mode === 'cls') {
      out.set(states.subarray(r * tokens * hidden, r * tokens * hidden + hidden));
      continue;
    }
    let count = 0;
    if (mode === 'max') out.fill(-Infinity);
    for (let t = 0; t < tokens; t++) {
      if (!mask[r * tokens + t]) continue;
      count++;
      const row = states.subarray((r * tokens + t) * hidden, (r * tokens + t + 1) * hidden);
      for (let h = 0; h < hidden; h++) out[h] = mode === 'max' ? Math.max(out[h]!, row[h]!) : out[h]! + row[h]!;
    }
    if (mode === 'mean') for (let h = 0; h < hidden; h++) out[h]! /= Math.max(1, count);
  }
  return pooled;
}

function poolTokensBackward(dPooled: Float32Array, batch: EncodedBatch, mode: PoolingMode, dTokens: Float32Array): void {
  const { rows, tokens, hidden, mask, tokenStates, pooled } = batch;
  for (let r = 0; r < rows; r++) {
    if (mode === 'cls') {
      for (let h = 0; h < hidden; h++) dTokens[r * tokens * hidden + h]! += dPooled[r * hidden + h]!;
      continue;
    }
    let count = 0;
    for (let t = 0; t < tokens; t++) count += mask[r * tokens + t]!;
    // max: the gradient goes to the first token that holds the maximum.
    const claimed = new Uint8Array(hidden);
    for (let t = 0; t < tokens; t++) {
      if (!mask[r * tokens + t]) continue;
      for (let h = 0; h < hidden; h++) {
        const at = (r * tokens + t) * hidden + h;
        if (mode === 'mean') dTokens[at]! += dPooled[r * hidden + h]! / Math.max(1, count);
        else if (!claimed[h] && tokenStates[at] === pooled[r * hidden + h]) {
          dTokens[at]! += dPooled[r * hidden + h]!;
          claimed[h] = 1;
        }
      }
    }
  }
}
