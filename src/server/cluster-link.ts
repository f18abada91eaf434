// A server process's side of the cluster (src/server/cluster.ts): says it is ready, and finds training jobs
// its siblings run, through the primary. (Loaded models stay alike through the registry's desired state.)
import type { TrainingJob } from '../serving/training-jobs.js';
import { isClusterMessage, type ClusterMessage } from './cluster.js';

/** How long a worker waits for its siblings to say whether they know a training job. */
const JOB_QUERY_TIMEOUT_MS = 2_000;

export class ClusterLink {
  private nextAsk = 1;
  private readonly pending = new Map<number, (job: TrainingJob | null) => void>();
  private findJob: ((id: string) => TrainingJob | undefined) | undefined;

  /** `send` is process.send of a cluster worker. */
  constructor(private readonly send: (message: ClusterMessage) => void) {
    process.on('message', (message: unknown) => this.receive(message));
  }

  /** Attaches the handler that looks up a local training job. */
  serve(handlers: { findJob: (id: string) => TrainingJob | undefined }): void {
    this.findJob = handlers.findJob;
  }

  ready(url: string): void {
    this.send({ polyhead: 'ready', url });
  }

  /** A training job run by another server process, or null (none knows it, or none answered in time). */
  askJob(id: string): Promise<TrainingJob | null> {
    const ask = this.nextAsk++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(ask, null), JOB_QUERY_TIMEOUT_MS);
      timer.unref();
      this.pending.set(ask, (job) => (clearTimeout(timer), resolve(job)));
      this.send({ polyhead: 'job-query', id, ask });
    });
  }

  private settle(ask: number, job: TrainingJob | null): void {
    const resolve = this.pending.get(ask);
    this.pending.delete(ask);
    resolve?.(job);
  }

  private receive(message: unknown): void {
    if (!isClusterMessage(message)) return;
    if (message.polyhead === 'job-query') this.send({ polyhead: 'job-answer', ask: message.ask, from: message.from, job: this.findJob?.(message.id) ?? null });
    else if (message.polyhead === 'job-answer') this.settle(message.ask, message.job);
  }
}
