// The onnxruntime layer: sessions (run in worker threads, see onnx-worker.ts), tensors, execution providers.
// With onnx-worker.ts, the only code that imports onnxruntime-node.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ChainedResult, WorkerReply, WorkerRequest, WorkerTensor } from './onnx-worker.js';

export type ExecutionProviderName = 'cpu' | 'cuda';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Execution provider. Default cpu. */
  executionProvider: ExecutionProviderName;
  /** Threads inside one operator, per replica; 0 = the machine's cores divided among the replicas. Default 0. */
  intraOpThreads: number;
  /**
   * Copies of the session, each in its own worker thread; a run goes to the copy whose thread has the fewest
   * calls in flight, so with n replicas n batches compute at once. Default 1.
   */
  replicas?: number;
  /** Graph optimisation level. Default all. */
  graphOptimization: GraphOptimizationLevel;
  /** CUDA device index when executionProvider is cuda. Default 0. */
  cudaDeviceId?: number;
  /**
   * Files loaded in place of others, by absolute path: e.g. the fp16 backbone (src/convert/fp16.ts) in place
   * of backbone.onnx when the provider is cuda. Paths not in the map load as they are.
   */
  substitutes?: ReadonlyMap<string, string>;
  /**
   * The precision variant of a backbone graph to load when its bundle has one (an imported Hugging Face
   * folder's onnx/model_fp16.onnx or onnx/model_quantized.onnx); fp32 otherwise.
   */
  preferredVariant?: 'fp16' | 'quantized';
}

export const defaultSessionOptions: SessionOptions = { executionProvider: 'cpu', intraOpThreads: 0, graphOptimization: 'all' };

export type Tensor = WorkerTensor;
export type Feeds = Record<string, Tensor>;

/**
 * One worker thread (src/engine/onnx-worker.ts) that hosts sessions and runs calls on them. The thread holds
 * the process open only while calls are in flight.
 */
class WorkerHost {
  private worker?: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: WorkerReply & { ok: true }) => void; reject: (error: Error) => void }>();

  /** Calls in flight: how busy this thread is. */
  get load(): number {
    return this.pending.size;
  }

  call(request: DistributiveOmit<WorkerRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<WorkerReply & { ok: true }> {
    const worker = this.start();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // Tests run the TypeScript sources through a loader that the worker inherits; the build runs .js.
    const entry = new URL(import.meta.url.endsWith('.ts') ? './onnx-worker.ts' : './onnx-worker.js', import.meta.url);
    const worker = new Worker(entry);
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(new Error(reply.error));
    });
    const fail = (error: Error) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`the onnxruntime worker stopped: ${error.message}`));
      this.pending.clear();
      this.worker = undefined; // the next call starts a new worker (its sessions must be loaded again)
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The process's worker threads, started as replicas ask for them: replica i of every session lives in thread i. */
const hosts: WorkerHost[] = [];
function host(index: number): WorkerHost {
  while (hosts.length <= index) hosts.push(new WorkerHost());
  return hosts[index]!;
}

interface Replica {
  host: WorkerHost;
  session: number;
}

/** A session run after another in the same worker thread, fed from its outputs (see ChainedRun in onnx-worker.ts). */
export interface Chained {
  session: OnnxSession;
  /** This session's input, fed with rows `rows` of the first session's output `from`. */
  input: string;
  from: string;
  rows: readonly number[];
  /** Optionally a second input fed with the same rows of one of the first session's feeds. */
  mask?: { input: string; from: string };
  /** The output returned. */
  output: string;
  /** Also offered to the runs after it under this name (see ChainedRun.as). */
  as?: string;
}

export interface RunOptions {
  /**
   * Move the feeds' buffers to the worker thread instead of copying them: the caller's typed arrays are detached
   * (length 0) as soon as run() is called. Only for arrays that own their whole ArrayBuffer and are not used afterwards.
   */
  moveFeeds?: boolean;
}

/** The distinct, transferable buffers of some feeds. */
function feedBuffers(feeds: Feeds): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const tensor of Object.values(feeds)) if (tensor.data.buffer instanceof ArrayBuffer) buffers.add(tensor.data.buffer);
  return [...buffers];
}

/** A loaded ONNX model: named inputs and outputs, run with only the outputs wanted (in worker threads). */
export class OnnxSession {
  private constructor(
    private readonly replicas: readonly Replica[],
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly provider: ExecutionProviderName,
    /** The file loaded (after `substitutes`); undefined when loaded from bytes. */
    readonly file?: string,
  ) {}

  static async load(path: string, options: SessionOptions = defaultSessionOptions): Promise<OnnxSession> {
    const file = options.substitutes?.get(path) ?? path;
    return OnnxSession.create(file, options, file);
  }

  /** Loads a model from its serialized bytes (e.g. a graph built in memory by OnnxGraphBuilder). */
  static async fromBytes(bytes: Uint8Array, options: SessionOptions = defaultSessionOptions): Promise<OnnxSession> {
    return OnnxSession.create(bytes, options);
  }

  private static async create(source: string | Uint8Array, options: SessionOptions, file?: string): Promise<OnnxSession> {
    const count = Math.max(1, options.replicas ?? 1);
    const loads = await Promise.allSettled(
      Array.from({ length: count }, async (_, index) => {
        const reply = await host(index).call({ kind: 'load', source, options: sessionCreateOptions(options, replicaThreads(options, count)) });
        return { replica: { host: host(index), session: reply.session! }, reply };
      }),
    );
    const loaded = loads.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = loads.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      // All or nothing: the copies that did load are released.
      await Promise.allSettled(loaded.map(({ replica }) => replica.host.call({ kind: 'release', session: replica.session })));
      throw failed.reason;
    }
    const { reply } = loaded[0]!;
    return new OnnxSession(
      loaded.map(({ replica }) => replica),
      reply.inputNames!,
      reply.outputNames!,
      options.executionProvider,
      file,
    );
  }

  /**
   * Runs the model and returns the requested outputs' data and dims. The feeds are copied to the worker thread,
   * or moved there (no copy; the caller's arrays are detached) with `options.moveFeeds`.
   */
  async run(feeds: Feeds, outputs: readonly string[], options: RunOptions = {}): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    return (await this.runChained(feeds, outputs, [], options)).results;
  }

  /**
   * Runs the model, then each of `chain` on its outputs in the same worker thread (see ChainedRun): the
   * intermediate outputs stay in that thread. A chained run that fails yields an Error in its place.
   */
  async runChained(
    feeds: Feeds,
    outputs: readonly string[],
    chain: readonly Chained[],
    options: RunOptions = {},
  ): Promise<{ results: Record<string, { data: Float32Array; dims: readonly number[] }>; chained: Array<{ data: Float32Array; dims: readonly number[]; ms: number } | Error> }> {
    // The least busy thread that holds a copy of every session in the chain.
    let chosen: Replica | undefined;
    for (const replica of this.replicas) {
      if (chosen && replica.host.load >= chosen.host.load) continue;
      if (chain.every(({ session }) => session.replicaOn(replica.host))) chosen = replica;
    }
    if (!chosen) throw new Error('the chained sessions are not loaded in the same worker threads as the model they read');
    const host = chosen.host;
    const reply = await host.call({
      kind: 'run',
      session: chosen.session,
      feeds,
      outputs: [...outputs],
      chain: chain.map(({ session, ...run }) => ({ ...run, session: session.replicaOn(host)!.session, rows: [...run.rows] })),
    }, options.moveFeeds ? feedBuffers(feeds) : []);
    const chained = (reply.chained ?? []).map((result: ChainedResult) => ('error' in result ? new Error(result.error) : result));
    return { results: reply.results!, chained };
  }

  private replicaOn(host: WorkerHost): Replica | undefined {
    return this.replicas.find((replica) => replica.host === host);
  }

  async release(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.host.call({ kind: 'release', session: replica.session })));
  }
}

/**
 * Intra-op threads of each of `count` replicas: as configured, else the cores shared out among them.
 * Measured on 2 cores (README): two single-threaded replicas serve 10-15% more than one two-threaded
 * session, whose threads wait for each other whenever the node thread takes a core.
 */
function replicaThreads(options: SessionOptions, count: number): number {
  if (options.intraOpThreads) return options.intraOpThreads;
  return count === 1 ? 0 : Math.max(1, Math.floor(availableParallelism() / count));
}

function sessionCreateOptions(options: SessionOptions, intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    // Listing cpu after cuda lets ORT place the nodes CUDA lacks (shape ops) on the CPU. It is no fallback: when the
    // CUDA provider cannot load, create() throws (src/engine/device.ts probes it before any model loads).
    executionProviders: options.executionProvider === 'cuda' ? [{ name: 'cuda', deviceId: options.cudaDeviceId ?? 0 }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: options.graphOptimization,
    ...(intraOpThreads ? { intraOpNumThreads: intraOpThreads } : {}),
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

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): Tensor {
  return { type: 'int64', data, dims };
}

export function float32Tensor(data: Float32Array, dims: readonly number[]): Tensor {
  return { type: 'float32', data, dims };
}
