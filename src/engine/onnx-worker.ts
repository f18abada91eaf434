// The worker thread that runs every onnxruntime session of the process. onnxruntime-node's run() is
// synchronous (it blocks the calling thread for the whole inference), so it must not run on the main
// thread: there it would stop HTTP parsing, GraphQL and tokenization while a batch computes. Here the
// main thread keeps serving and forming the next batch while this thread computes the current one.
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export type WorkerTensor = { type: 'int64'; data: BigInt64Array; dims: readonly number[] } | { type: 'float32'; data: Float32Array; dims: readonly number[] };

/**
 * A session run in the same call right after the main one, fed from its outputs: `input` gets the rows
 * `rows` of the main output `from` (and `mask`, when given, the same rows of the main feed `mask.from`).
 * So a head reads the backbone's token states where they were computed, and they never cross threads.
 */
export interface ChainedRun {
  session: number;
  input: string;
  from: string;
  rows: number[];
  mask?: { input: string; from: string };
  output: string;
  /**
   * Also offer this run's output to the runs after it under this name, as if the main session had it (the
   * engine's pooling of token states, which heads reading `pooled` then read where it was computed).
   */
  as?: string;
}

export type ChainedResult = { data: Float32Array; dims: number[]; ms: number } | { error: string };

export type WorkerRequest =
  | { id: number; kind: 'load'; source: string | Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { id: number; kind: 'run'; session: number; feeds: Record<string, WorkerTensor>; outputs: string[]; chain?: ChainedRun[] }
  | { id: number; kind: 'release'; session: number };

export type WorkerReply =
  | {
      id: number;
      ok: true;
      session?: number;
      inputNames?: string[];
      outputNames?: string[];
      results?: Record<string, { data: Float32Array; dims: number[] }>;
      chained?: ChainedResult[];
    }
  | { id: number; ok: false; error: string };

const sessions = new Map<number, ort.InferenceSession>();
let nextSession = 1;

async function handle(request: WorkerRequest): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  if (request.kind === 'load') {
    const session = await ort.InferenceSession.create(request.source as string, request.options);
    const id = nextSession++;
    sessions.set(id, session);
    return { reply: { id: request.id, ok: true, session: id, inputNames: [...session.inputNames], outputNames: [...session.outputNames] }, transfer: [] };
  }
  const session = sessions.get(request.session);
  if (!session) throw new Error(`onnxruntime session ${request.session} is not loaded`);
  if (request.kind === 'release') {
    sessions.delete(request.session);
    await session.release();
    return { reply: { id: request.id, ok: true }, transfer: [] };
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(request.feeds)) feeds[name] = new ort.Tensor(tensor.type, tensor.data, tensor.dims);
  const chain = request.chain ?? [];
  const published = new Set(chain.flatMap((run) => (run.as ? [run.as] : [])));
  const fetched = [...new Set([...request.outputs, ...chain.map((run) => run.from).filter((name) => !published.has(name))])];
  const outputs: Record<string, ort.Tensor> = { ...(await session.run(feeds, fetched)) };
  const results: Record<string, { data: Float32Array; dims: number[] }> = {};
  const transfer: ArrayBuffer[] = [];
  for (const name of request.outputs) {
    // Copy out of onnxruntime's buffer so the copy can be moved (not cloned) to the main thread.
    const data = new Float32Array(outputs[name]!.data as Float32Array);
    results[name] = { data, dims: [...outputs[name]!.dims] };
    transfer.push(data.buffer);
  }
  const chained: ChainedResult[] = [];
  for (const run of chain) {
    // A failing chained session fails only its own result: the main output and the other runs stand.
    try {
      const started = performance.now();
      const result = await runChained(run, outputs, feeds);
      if (run.as) outputs[run.as] = new ort.Tensor('float32', result.data, result.dims);
      chained.push({ ...result, ms: performance.now() - started });
      transfer.push(result.data.buffer as ArrayBuffer);
    } catch (error) {
      chained.push({ error: (error as Error).message });
    }
  }
  return { reply: { id: request.id, ok: true, results, chained }, transfer };
}

async function runChained(run: ChainedRun, outputs: Record<string, ort.Tensor>, feeds: Record<string, ort.Tensor>): Promise<{ data: Float32Array; dims: number[] }> {
  const session = sessions.get(run.session);
  if (!session) throw new Error(`onnxruntime session ${run.session} is not loaded`);
  const source = outputs[run.from];
  if (!source) throw new Error(`no output "${run.from}" to feed "${run.input}"`);
  const headFeeds: Record<string, ort.Tensor> = { [run.input]: selectRows(source, run.rows) };
  if (run.mask) {
    const mask = feeds[run.mask.from];
    if (!mask) throw new Error(`no feed "${run.mask.from}" to feed "${run.mask.input}"`);
    headFeeds[run.mask.input] = selectRows(mask, run.rows);
  }
  const result = (await session.run(headFeeds, [run.output]))[run.output]!;
  return { data: new Float32Array(result.data as Float32Array), dims: [...result.dims] };
}

/** The given rows (first dimension) of a tensor; the tensor itself when they are all its rows in order. */
function selectRows(tensor: ort.Tensor, rows: readonly number[]): ort.Tensor {
  const [count, ...rest] = tensor.dims;
  if (rows.length === count && rows.every((row, i) => row === i)) return tensor;
  const stride = rest.reduce((a, b) => a * b, 1);
  const data = tensor.data as Float32Array | BigInt64Array;
  const out = new (data.constructor as Float32ArrayConstructor | BigInt64ArrayConstructor)(rows.length * stride);
  rows.forEach((row, i) => out.set(data.subarray(row * stride, (row + 1) * stride) as never, i * stride));
  return new ort.Tensor(tensor.type as 'float32', out as Float32Array, [rows.length, ...rest]);
}

parentPort!.on('message', (request: WorkerRequest) => {
  handle(request).then(
    ({ reply, transfer }) => parentPort!.postMessage(reply, transfer),
    (error: Error) => parentPort!.postMessage({ id: request.id, ok: false, error: error.message } satisfies WorkerReply),
  );
});
