// The worker thread a fine-tuning run lives in (started by run-in-worker.ts): the backbone's forward and backward
// passes and the optimizer's updates of millions of weights never block the serving thread's event loop, and
// onnxruntime runs with the run's own thread count.
import { parentPort, workerData } from 'node:worker_threads';
import { fineTuneBackbone, type FineTuneHyperparameters, type FineTuneTasks } from './fine-tune.js';
import { TrainableEncoder } from './trainable-encoder.js';

export interface WorkerRequest {
  bundleDir: string;
  tasks: FineTuneTasks;
  hyperparameters: Partial<FineTuneHyperparameters>;
  threads: number;
}

export type WorkerMessage =
  | { type: 'progress'; event: import('../progress.js').TrainingProgress }
  | { type: 'done'; result: Omit<import('./fine-tune.js').FineTuneResult, 'model'>; model: Uint8Array }
  | { type: 'failed'; message: string };

const port = parentPort!;
const request = workerData as WorkerRequest;
const controller = new AbortController();
port.on('message', (message: { type: 'cancel' }) => {
  if (message.type === 'cancel') controller.abort(new Error('the fine-tuning job was cancelled'));
});

try {
  const encoder = await TrainableEncoder.load(request.bundleDir, { threads: request.threads, trainEmbeddings: request.hyperparameters.trainEmbeddings });
  try {
    const { model, ...result } = await fineTuneBackbone({
      encoder,
      tasks: request.tasks,
      hyperparameters: request.hyperparameters,
      signal: controller.signal,
      onProgress: (event) => port.postMessage({ type: 'progress', event } satisfies WorkerMessage),
    });
    port.postMessage({ type: 'done', result, model } satisfies WorkerMessage, [model.buffer as ArrayBuffer]);
  } finally {
    await encoder.release();
  }
} catch (error) {
  port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies WorkerMessage);
}
