// The shared encoder: tokenizer + one ONNX session. Runs a padded batch and returns the pooled sentence
// embeddings and, only when a head needs them, the per-token states.
import type { HeadModelOutput } from './heads/head.js';
import type { OnnxHeadSession } from './heads/onnx-head.js';
import { OnnxSession, int64Tensor, type SessionOptions } from './onnx-runtime.js';
import { TextTokenizer, type TextEncoding } from './tokenizer.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface BackboneSpec {
  /** The backbone's registry name, e.g. use-lite. */
  name: string;
  /** Absolute path of the ONNX file. */
  file: string;
  tokenizerFile: string;
  maxTokens: number;
  hiddenSize: number;
  inputs: { ids: string; mask: string };
  outputs: { tokens: string; pooled: string };
}

export interface BackboneOutput {
  size: number;
  /** Padded sequence length of the batch. */
  tokens: number;
  hidden: number;
  /** [size, hidden] */
  pooled: Float32Array;
  /** [size, tokens, hidden], present when asked for. */
  tokenStates?: Float32Array;
}

export class Backbone {
  private constructor(
    readonly spec: BackboneSpec,
    readonly tokenizer: TextTokenizer,
    private readonly session: OnnxSession,
  ) {}

  static async load(spec: BackboneSpec, options: SessionOptions): Promise<Backbone> {
    const [tokenizer, session] = await Promise.all([TextTokenizer.load(spec.tokenizerFile, spec.maxTokens), OnnxSession.load(spec.file, options)]);
    for (const name of [spec.inputs.ids, spec.inputs.mask]) {
      if (!session.inputNames.includes(name)) throw new Error(`backbone has no input "${name}" (it has ${session.inputNames.join(', ')})`);
    }
    for (const name of [spec.outputs.tokens, spec.outputs.pooled]) {
      if (!session.outputNames.includes(name)) throw new Error(`backbone has no output "${name}" (it has ${session.outputNames.join(', ')})`);
    }
    return new Backbone(spec, tokenizer, session);
  }

  get provider() {
    return this.session.provider;
  }

  encode(text: string): TextEncoding {
    return this.tokenizer.encode(text);
  }

  /**
   * Runs a padded batch. `heads` run right after, in the same onnxruntime worker thread, each on its rows
   * of the batch: what they read (token states above all) never crosses threads. Their outputs come back
   * in order, an Error in place of a head that failed. The token states themselves are returned only when
   * `wantTokenStates`.
   */
  async run(
    encodings: readonly TextEncoding[],
    wantTokenStates: boolean,
    heads: ReadonlyArray<{ model: OnnxHeadSession; rows: readonly number[] }> = [],
  ): Promise<BackboneOutput & { heads: Array<HeadModelOutput | Error> }> {
    const size = encodings.length;
    const tokens = Math.max(1, ...encodings.map((e) => e.ids.length));
    const ids = new BigInt64Array(size * tokens);
    const mask = new BigInt64Array(size * tokens);
    // int64 values written as their low 32-bit words (ids are small and non-negative; the high words stay 0):
    // a BigInt per token cost more than the rest of this function at GPU batch sizes.
    const idWords = new Int32Array(ids.buffer);
    const maskWords = new Int32Array(mask.buffer);
    const low = LITTLE_ENDIAN ? 0 : 1;
    encodings.forEach((encoding, row) => {
      const base = row * tokens;
      for (let i = 0; i < encoding.ids.length; i++) {
        idWords[2 * (base + i) + low] = encoding.ids[i]!;
        maskWords[2 * (base + i) + low] = 1;
      }
    });
    const { outputs } = this.spec;
    const wanted = wantTokenStates ? [outputs.pooled, outputs.tokens] : [outputs.pooled];
    const { results: result, chained } = await this.session.runChained(
      { [this.spec.inputs.ids]: int64Tensor(ids, [size, tokens]), [this.spec.inputs.mask]: int64Tensor(mask, [size, tokens]) },
      wanted,
      heads.map(({ model, rows }) => model.chainedAfter(this.spec, rows)),
    );
    return {
      size,
      tokens,
      hidden: this.spec.hiddenSize,
      pooled: result[outputs.pooled]!.data,
      tokenStates: wantTokenStates ? result[outputs.tokens]!.data : undefined,
      heads: chained,
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
