// Where the backbone runs and with what settings: the device (auto/cpu/cuda), the precision (the fp16
// backbone on CUDA, checked against fp32 before use), and batch/queue sizes that differ by device.
import { availableParallelism } from 'node:os';
import type { ServerConfig } from '../config.js';
import { ensureFp16Backbone } from '../convert/fp16.js';
import { selectDevice } from '../engine/device.js';
import type { SessionOptions } from '../engine/onnx-runtime.js';
import type { SchedulerOptions } from '../engine/scheduler.js';

export interface Runtime {
  provider: 'cpu' | 'cuda';
  precision: 'fp32' | 'fp16';
  /** e.g. "cpu" or "cuda (NVIDIA H100 80GB HBM3, fp16)" */
  description: string;
  /** Why this device was chosen (for the start-up line). */
  reason: string;
  session: SessionOptions;
  scheduler: Partial<SchedulerOptions<never>>;
}

/** `builtInBundle`: the built default bundle folder when the default model is served (its fp16 variant is derived from it). */
export async function prepareRuntime(config: ServerConfig, builtInBundle: string | undefined, log: (line: string) => void): Promise<Runtime> {
  const device = await selectDevice(config.device); // throws for POLYHEAD_DEVICE=cuda when CUDA cannot work
  const provider = device.provider;
  const session: SessionOptions = {
    executionProvider: provider,
    intraOpThreads: config.ortThreads || cpuShare(provider, config.workers),
    graphOptimization: config.ortOptimization,
    // A GPU runs one kernel stream per copy anyway; copies would only cost GPU memory.
    replicas: provider === 'cuda' ? 1 : config.ortReplicas,
  };
  if (config.precision === 'fp16' && provider !== 'cuda') throw new Error('POLYHEAD_PRECISION=fp16 needs the CUDA execution provider (POLYHEAD_DEVICE=cuda)');
  if (provider === 'cuda' && config.precision !== 'fp32' && builtInBundle) {
    const fp16 = await ensureFp16Backbone(builtInBundle, { check: session, log });
    session.substitutes = new Map([[fp16.fp32File, fp16.fp16File]]);
  }
  // Imported Hugging Face bundles bring their own variants: fp16 on CUDA (unless fp32 is asked), int8 when asked.
  if (config.precision === 'q8') session.preferredVariant = 'quantized';
  else if (provider === 'cuda' && config.precision !== 'fp32') session.preferredVariant = 'fp16';
  const precision = session.substitutes ? 'fp16' : 'fp32';
  // On CUDA a batch costs little more than its launch: bigger batches, deeper queues, two batches in flight.
  const sizes = provider === 'cuda' ? config.cuda : config;
  return {
    provider,
    precision,
    description: device.gpuName ? `${provider} (${device.gpuName}, ${precision})` : provider,
    reason: device.reason,
    session,
    scheduler: {
      maxBatchSize: sizes.maxBatchSize,
      maxBatchTokens: sizes.maxBatchTokens,
      maxWaitMs: config.maxWaitMs,
      maxQueueEntries: sizes.maxQueueTexts,
      maxQueueTokens: sizes.maxQueueTokens,
      maxConcurrentBatches: sizes.concurrentBatches,
      batchOverheadTokens: sizes.batchOverheadTokens,
    },
  };
}

/**
 * Several server processes on the CPU split the cores between them (0 = onnxruntime's default). Not on CUDA:
 * there one intra-op thread per process measured slower with 12 processes (docs/gpu.md).
 */
export function cpuShare(provider: 'cpu' | 'cuda', workers: number): number {
  return provider === 'cpu' && workers > 1 ? Math.max(1, Math.floor(availableParallelism() / workers)) : 0;
}
