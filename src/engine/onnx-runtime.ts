// The only module that imports onnxruntime-node: sessions, tensors and execution providers.
import * as ort from 'onnxruntime-node';

export type ExecutionProviderName = 'cpu' | 'cuda';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Execution provider. Default cpu. */
  executionProvider: ExecutionProviderName;
  /** Threads inside one operator; 0 = onnxruntime's default (one per core). Default 0. */
  intraOpThreads: number;
  /** Graph optimisation level. Default all. */
  graphOptimization: GraphOptimizationLevel;
}

export const defaultSessionOptions: SessionOptions = { executionProvider: 'cpu', intraOpThreads: 0, graphOptimization: 'all' };

export type Feeds = Record<string, ort.Tensor>;

/** A loaded ONNX model: named inputs and outputs, run with only the outputs wanted. */
export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: ExecutionProviderName,
  ) {}

  static async load(path: string, options: SessionOptions = defaultSessionOptions): Promise<OnnxSession> {
    const session = await ort.InferenceSession.create(path, sessionCreateOptions(options));
    return new OnnxSession(session, options.executionProvider);
  }

  /** Loads a model from its serialized bytes (e.g. a graph built in memory by OnnxGraphBuilder). */
  static async fromBytes(bytes: Uint8Array, options: SessionOptions = defaultSessionOptions): Promise<OnnxSession> {
    const session = await ort.InferenceSession.create(bytes, sessionCreateOptions(options));
    return new OnnxSession(session, options.executionProvider);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the model and returns the requested outputs' data and dims. */
  async run(feeds: Feeds, outputs: readonly string[]): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const results = await this.session.run(feeds, [...outputs]);
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const name of outputs) {
      const tensor = results[name]!;
      out[name] = { data: tensor.data as Float32Array, dims: tensor.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function sessionCreateOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: options.executionProvider === 'cuda' ? [{ name: 'cuda' }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: options.graphOptimization,
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
}

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', data, dims);
}

export function float32Tensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}
