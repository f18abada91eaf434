// The only module that imports onnxruntime-node: sessions, tensors and execution providers.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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
  /** CUDA device index when executionProvider is cuda. Default 0. */
  cudaDeviceId?: number;
  /**
   * Files loaded in place of others, by absolute path: e.g. the fp16 backbone (src/convert/fp16.ts) in place
   * of backbone.onnx when the provider is cuda. Paths not in the map load as they are.
   */
  substitutes?: ReadonlyMap<string, string>;
}

export const defaultSessionOptions: SessionOptions = { executionProvider: 'cpu', intraOpThreads: 0, graphOptimization: 'all' };

export type Feeds = Record<string, ort.Tensor>;

/** A loaded ONNX model: named inputs and outputs, run with only the outputs wanted. */
export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: ExecutionProviderName,
    /** The file loaded (after `substitutes`); undefined when loaded from bytes. */
    readonly file?: string,
  ) {}

  static async load(path: string, options: SessionOptions = defaultSessionOptions): Promise<OnnxSession> {
    const file = options.substitutes?.get(path) ?? path;
    const session = await ort.InferenceSession.create(file, sessionCreateOptions(options));
    return new OnnxSession(session, options.executionProvider, file);
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
    // Listing cpu after cuda lets ORT place the nodes CUDA lacks (shape ops) on the CPU. It is no fallback: when the
    // CUDA provider cannot load, create() throws (src/engine/device.ts probes it before any model loads).
    executionProviders: options.executionProvider === 'cuda' ? [{ name: 'cuda', deviceId: options.cudaDeviceId ?? 0 }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: options.graphOptimization,
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Idle intra-op threads sleep instead of spinning: the node event loop (GraphQL, tokenization) shares
    // these cores, and spinning threads starve it under load.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * Creates a session for `modelBytes` with only the given execution provider (no CPU fallback), runs it once
 * with `feeds` and returns the first output's values. Throws onnxruntime's own message when the provider
 * cannot load (library or CUDA runtime missing, no device). Used by src/engine/device.ts.
 */
export async function probeExecutionProvider(
  provider: ExecutionProviderName,
  modelBytes: Uint8Array,
  feeds: Record<string, { data: Float32Array; dims: readonly number[] }>,
  deviceId = 0,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(modelBytes, {
    executionProviders: [provider === 'cuda' ? { name: 'cuda', deviceId } : 'cpu'],
    graphOptimizationLevel: 'disabled',
  });
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor('float32', t.data, t.dims)]));
    const out = await session.run(tensors);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** onnxruntime-node's version and the folder of its native binding (where the CUDA provider libraries go). */
export function onnxRuntimeInstall(): { version: string; binaryDir: string } {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('onnxruntime-node/package.json');
  const { version } = require(packageJson) as { version: string };
  return { version, binaryDir: join(dirname(packageJson), 'bin', 'napi-v6', process.platform, process.arch) };
}

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', data, dims);
}

export function float32Tensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}
