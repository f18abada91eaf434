// Runs fineTuneBackbone in its own worker thread (worker.ts); progress events come back as they happen, an abort
// signal cancels the run (the worker stops at its next step and nothing is returned).
import { Worker } from 'node:worker_threads';
import type { ProgressListener } from '../progress.js';
import type { FineTuneResult } from './fine-tune.js';
import type { WorkerMessage, WorkerRequest } from './worker.js';

export function runFineTuneInWorker(request: WorkerRequest, options: { onProgress?: ProgressListener; signal?: AbortSignal } = {}): Promise<FineTuneResult> {
  // Tests run the TypeScript sources through a loader the worker inherits; the build runs .js.
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  return new Promise<FineTuneResult>((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason ?? new Error('cancelled'));
    const worker = new Worker(entry, { workerData: request });
    let settled = false;
    // Settles only once the worker thread has ended: a caller that then exits the process never leaves a thread
    // inside onnxruntime.
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      void worker.terminate().finally(action);
    };
    const onAbort = () => worker.postMessage({ type: 'cancel' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') options.onProgress?.(message.event);
      else if (message.type === 'done') finish(() => resolve({ ...message.result, model: new Uint8Array(message.model) }));
      else finish(() => reject(options.signal?.aborted ? (options.signal.reason ?? new Error(message.message)) : new Error(message.message)));
    });
    worker.on('error', (error) => finish(() => reject(error)));
    worker.on('exit', (code) => finish(() => reject(new Error(`the fine-tuning worker exited (code ${code}) before it answered`))));
  });
}
