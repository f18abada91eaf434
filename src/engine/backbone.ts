// The shared encoder: tokenizer + one ONNX session. Runs a padded batch and returns the pooled sentence
// embeddings, only when a head needs them the per-token states, and the graph outputs heads inside the
// graph read (a Hugging Face task model's logits). Without a pooled output in the graph, the engine pools
// the token states (encoders/pooling.ts) in the worker thread, right after the backbone.
import type { PoolingMode } from '../bundle/manifest.js';
import { poolingGraph } from './encoders/pooling.js';
import type { HeadModelOutput } from './heads/head.js';
import type { OnnxHeadSession } from './heads/onnx-head.js';
import { OnnxSession, int64Tensor, type Chained, type Feeds, type SessionOptions } from './onnx-runtime.js';
import { loadTokenizer, type TokenizerKind } from './tokenizers/registry.js';
import type { TextEncoding, Tokenizer } from './tokenizers/tokenizer.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** The name the engine's pooling publishes its output under, for heads that read `pooled`. */
const ENGINE_POOLED = 'polyhead_pooled';

export interface BackboneSpec {
  /** The backbone's registry name, e.g. use-lite. */
  name: string;
  /** Absolute path of the ONNX file. */
  file: string;
  tokenizerFile: string;
  tokenizerKind: TokenizerKind;
  maxTokens: number;
  hiddenSize: number;
  /** `typeIds`: the graph's token type input (BERT), fed from the tokenizer's type ids or zeros. */
  inputs: { ids: string; mask: string; typeIds?: string };
  /** A task model's graph may have neither: its heads read the graph's own outputs. */
  outputs: { tokens?: string; pooled?: string };
  /** How the engine pools token states when the graph has no pooled output. */
  pooling: string;
}

export interface BackboneOutput {
  size: number;
  /** Padded sequence length of the batch. */
  tokens: number;
  hidden: number;
  /** [size, hidden]; absent when the backbone has no sentence embedding (a task model's graph). */
  pooled?: Float32Array;
  /** [size, tokens, hidden], present when asked for. */
  tokenStates?: Float32Array;
  /** Graph outputs asked for by name (a task model's logits), all rows. */
  graph: Record<string, { data: Float32Array; dims: readonly number[] }>;
}

export class Backbone {
  private constructor(
    readonly spec: BackboneSpec,
    readonly tokenizer: Tokenizer,
    private readonly session: OnnxSession,
    /** The engine's pooling, when the graph has token states but no pooled output. */
    private readonly pooler: OnnxSession | undefined,
  ) {}

  static async load(spec: BackboneSpec, options: SessionOptions): Promise<Backbone> {
    const [tokenizer, session] = await Promise.all([loadTokenizer(spec.tokenizerKind, spec.tokenizerFile, spec.maxTokens), OnnxSession.load(spec.file, options)]);
    try {
      const inputs = [spec.inputs.ids, spec.inputs.mask, ...(spec.inputs.typeIds ? [spec.inputs.typeIds] : [])];
      for (const name of inputs) {
        if (!session.inputNames.includes(name)) throw new Error(`backbone has no input "${name}" (it has ${session.inputNames.join(', ')})`);
      }
      const unfed = session.inputNames.filter((name) => !inputs.includes(name));
      if (unfed.length) throw new Error(`backbone input${unfed.length > 1 ? 's' : ''} ${unfed.join(', ')} would not be fed (the engine feeds ${inputs.join(', ')})`);
      for (const name of [spec.outputs.tokens, spec.outputs.pooled]) {
        if (name && !session.outputNames.includes(name)) throw new Error(`backbone has no output "${name}" (it has ${session.outputNames.join(', ')})`);
      }
      const pooler = !spec.outputs.pooled && spec.outputs.tokens ? await OnnxSession.fromBytes(poolingGraph(spec.pooling as PoolingMode, spec.hiddenSize), { ...options, intraOpThreads: 1 }) : undefined;
      return new Backbone(spec, tokenizer, session, pooler);
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  get provider() {
    return this.session.provider;
  }

  /** Whether the backbone gives a sentence embedding (its own pooled output or the engine's pooling). */
  get hasEmbedding(): boolean {
    return Boolean(this.spec.outputs.pooled ?? this.spec.outputs.tokens);
  }

  /** The graph outputs the backbone's session has (a head inside the graph reads one of them). */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  encodeBatch(texts: readonly string[]): TextEncoding[] | Promise<TextEncoding[]> {
    return this.tokenizer.encodeBatch(texts);
  }

  /** Where a chained head reading `pooled` takes it from: the graph's output or the engine's pooling. */
  get pooledSource(): string | undefined {
    return this.spec.outputs.pooled ?? (this.pooler ? ENGINE_POOLED : undefined);
  }

  /**
   * Runs a padded batch. `heads` run right after, in the same onnxruntime worker thread, each on its rows
   * of the batch: what they read (token states above all) never crosses threads. Their outputs come back
   * in order, an Error in place of a head that failed. The token states themselves are returned only when
   * `wantTokenStates`; `graphOutputs` are returned whole.
   */
  async run(
    encodings: readonly TextEncoding[],
    wantTokenStates: boolean,
    heads: ReadonlyArray<{ model: OnnxHeadSession; rows: readonly number[] }> = [],
    graphOutputs: readonly string[] = [],
  ): Promise<BackboneOutput & { heads: Array<HeadModelOutput | Error> }> {
    const size = encodings.length;
    const tokens = Math.max(1, ...encodings.map((e) => e.ids.length));
    const ids = new BigInt64Array(size * tokens);
    const mask = new BigInt64Array(size * tokens);
    const typeIds = this.spec.inputs.typeIds ? new BigInt64Array(size * tokens) : undefined;
    // int64 values written as their low 32-bit words (ids are small and non-negative; the high words stay 0):
    // a BigInt per token cost more than the rest of this function at GPU batch sizes.
    const idWords = new Int32Array(ids.buffer);
    const maskWords = new Int32Array(mask.buffer);
    const typeWords = typeIds ? new Int32Array(typeIds.buffer) : undefined;
    const low = LITTLE_ENDIAN ? 0 : 1;
    encodings.forEach((encoding, row) => {
      const base = row * tokens;
      for (let i = 0; i < encoding.ids.length; i++) {
        idWords[2 * (base + i) + low] = encoding.ids[i]!;
        maskWords[2 * (base + i) + low] = 1;
      }
      if (typeWords && encoding.typeIds) for (let i = 0; i < encoding.typeIds.length; i++) typeWords[2 * (base + i) + low] = encoding.typeIds[i]!;
    });
    const { inputs, outputs } = this.spec;
    const feeds: Feeds = { [inputs.ids]: int64Tensor(ids, [size, tokens]), [inputs.mask]: int64Tensor(mask, [size, tokens]) };
    if (inputs.typeIds) feeds[inputs.typeIds] = int64Tensor(typeIds!, [size, tokens]);
    const wanted = [...(outputs.pooled ? [outputs.pooled] : []), ...(wantTokenStates && outputs.tokens ? [outputs.tokens] : []), ...graphOutputs];
    const pooling: Chained[] = this.pooler
      ? [{ session: this.pooler, input: 'token_states', from: outputs.tokens!, rows: encodings.map((_, i) => i), mask: { input: 'attention_mask', from: inputs.mask }, output: 'pooled', as: ENGINE_POOLED }]
      : [];
    const { results: result, chained } = await this.session.runChained(feeds, [...new Set(wanted)], [
      ...pooling,
      ...heads.map(({ model, rows }) => model.chainedAfter(this, rows)),
    ]);
    let pooled = outputs.pooled ? result[outputs.pooled]!.data : undefined;
    if (this.pooler) {
      const engineOutput = chained[0]!;
      if (engineOutput instanceof Error) throw new Error(`pooling the token states failed: ${engineOutput.message}`);
      pooled = engineOutput.data;
    }
    if (wantTokenStates && !outputs.tokens) throw new Error('the backbone has no token states output');
    return {
      size,
      tokens,
      hidden: this.spec.hiddenSize,
      pooled,
      tokenStates: wantTokenStates ? result[outputs.tokens!]!.data : undefined,
      graph: Object.fromEntries(graphOutputs.map((name) => [name, result[name]!])),
      heads: chained.slice(pooling.length),
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.session.release(), this.pooler?.release()]);
  }
}
