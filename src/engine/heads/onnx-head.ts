// Feeding a head's ONNX session: a head reads `pooled` [n, hidden] or `token_states` [n, tokens, hidden]
// (+ `attention_mask` [n, tokens] when it declares one) and returns `logits` (its first output).
import type { Backbone, BackboneOutput } from '../backbone.js';
import { OnnxSession, float32Tensor, int64Tensor, type Chained, type Feeds, type SessionOptions } from '../onnx-runtime.js';
import { gatherPooled, gatherTokenStates } from './features.js';
import type { HeadRow, HeadSpec } from './head.js';

export class OnnxHeadSession {
  private constructor(
    private readonly spec: HeadSpec,
    private readonly session: OnnxSession,
  ) {}

  static async load(spec: HeadSpec, options: SessionOptions): Promise<OnnxHeadSession> {
    if (!spec.file) throw new Error(`head ${spec.name} has no ONNX file`);
    // Heads are tiny: one thread each, so they never compete with the backbone for cores.
    const session = await OnnxSession.load(spec.file, { ...options, intraOpThreads: 1 });
    const expected = spec.reads === 'pooled' ? 'pooled' : 'token_states';
    if (!session.inputNames.includes(expected)) {
      await session.release();
      throw new Error(`head ${spec.name} reads ${spec.reads} but its ONNX inputs are ${session.inputNames.join(', ')} (expected "${expected}")`);
    }
    return new OnnxHeadSession(spec, session);
  }

  /**
   * This head as a run chained after the backbone's (see OnnxSession.runChained): fed the given rows of the
   * backbone's pooled output or token states (and attention mask) in the backbone's worker thread.
   */
  chainedAfter(backbone: Pick<Backbone, 'spec' | 'pooledSource'>, rows: readonly number[]): Chained {
    const reads = this.spec.reads === 'pooled';
    const from = reads ? backbone.pooledSource : backbone.spec.outputs.tokens;
    if (!from) throw new Error(`head ${this.spec.name} reads ${this.spec.reads}, which the backbone does not give`);
    return {
      session: this.session,
      input: reads ? 'pooled' : 'token_states',
      from,
      rows,
      ...(!reads && this.session.inputNames.includes('attention_mask') ? { mask: { input: 'attention_mask', from: backbone.spec.inputs.mask } } : {}),
      output: this.session.outputNames[0]!,
    };
  }

  /** Runs the head on its own on the given rows; returns its first output ([n, labels] or [n, tokens, labels]). */
  async run(features: BackboneOutput, rows: readonly HeadRow[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
    const output = this.session.outputNames[0]!;
    if (this.spec.reads === 'pooled') {
      const pooled = gatherPooled(features, rows);
      return (await this.session.run({ pooled: float32Tensor(pooled, [rows.length, features.hidden]) }, [output]))[output]!;
    }
    const { states, mask } = gatherTokenStates(features, rows);
    const feeds: Feeds = { token_states: float32Tensor(states, [rows.length, features.tokens, features.hidden]) };
    if (this.session.inputNames.includes('attention_mask')) feeds.attention_mask = int64Tensor(mask, [rows.length, features.tokens]);
    return (await this.session.run(feeds, [output]))[output]!;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
