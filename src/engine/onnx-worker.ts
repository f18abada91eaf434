// The worker thread that runs every onnxruntime session of the process. onnxruntime-node's run() is
// synchronous (it blocks the calling thread for the whole inference), so it must not run on the main
// thread: there it would stop HTTP parsing, GraphQL and tokenization while a batch computes. Here the
// main thread keeps serving and forming the next batch while this thread computes the current one.
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export type WorkerTensor = { type: 'int64'; data: BigInt64Array; dims: readonly number[] } | { type: 'float32'; data: Float32Array; dims: readonly number[] };

export type WorkerRequest =
  | { id: number; kind: 'load'; source: string | Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { id: number; kind: 'run'; session: number; feeds: Record<string, WorkerTensor>; outputs: string[] }
  | { id: number; kind: 'release'; session: number };

export type WorkerReply =
  | { id: number; ok: true; session?: number; inputNames?: string[]; outputNames?: string[]; results?: Record<string, { data: Float32Array; dims: number[] }> }
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
  const outputs = await session.run(feeds, request.outputs);
  const results: Record<string, { data: Float32Array; dims: number[] }> = {};
  const transfer: ArrayBuffer[] = [];
  for (const name of request.outputs) {
    // Copy out of onnxruntime's buffer so the copy can be moved (not cloned) to the main thread.
    const data = new Float32Array(outputs[name]!.data as Float32Array);
    results[name] = { data, dims: [...outputs[name]!.dims] };
    transfer.push(data.buffer);
  }
  return { reply: { id: request.id, ok: true, results }, transfer };
}

parentPort!.on('message', (request: WorkerRequest) => {
  handle(request).then(
    ({ reply, transfer }) => parentPort!.postMessage(reply, transfer),
    (error: Error) => parentPort!.postMessage({ id: request.id, ok: false, error: error.message } satisfies WorkerReply),
  );
});
