// Several server processes sharing one port (node:cluster), for when one event loop cannot keep the device
// busy: on a GPU the node side (HTTP, GraphQL, JSON, tokenization) is the bottleneck long before the GPU is
// (docs/gpu.md). The primary serves nothing: it forks the workers, restarts one that dies, relays their
// messages and stops them on SIGTERM. Every worker opens the same PostgreSQL registry; the loaded models
// stay alike as on several hosts, through the registry's desired state (src/serving/desired-state.ts).
import cluster, { type Worker } from 'node:cluster';
import type { TrainingJob } from '../serving/training-jobs.js';
import { JobQueryRelay } from './job-query-relay.js';

/** What workers tell each other through the primary. */
export type ClusterMessage =
  | { polyhead: 'ready'; url: string }
  /** A worker asks its siblings for a training job it does not run (trainHead ran on another worker). */
  | { polyhead: 'job-query'; id: string; ask: number; from?: number }
  | { polyhead: 'job-answer'; ask: number; job: TrainingJob | null; from?: number };

export function isClusterMessage(value: unknown): value is ClusterMessage {
  return typeof value === 'object' && value !== null && typeof (value as { polyhead?: unknown }).polyhead === 'string';
}

/** Runs the primary until SIGTERM/SIGINT; resolves with the exit code. */
export function runClusterPrimary(workers: number, log: (line: string) => void): Promise<number> {
  // 'advanced' serialization keeps Dates (training jobs) intact across processes.
  cluster.setupPrimary({ serialization: 'advanced' });
  let stopping = false;
  // Every worker that got as far as listening, replacements included.
  const started = new Set<number>();
  const byId = (id: number) => cluster.workers?.[id];
  const jobQueries = new JobQueryRelay({
    answer: (to, ask, job) => byId(to)?.send({ polyhead: 'job-answer', ask, job } satisfies ClusterMessage),
    query: (to, ask, id, from) => byId(to)?.send({ polyhead: 'job-query', id, ask, from } satisfies ClusterMessage),
  });

  return new Promise<number>((resolveExit) => {
    const stopAll = (code: number) => {
      stopping = true;
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
      if (alive.length === 0) return resolveExit(code);
      for (const worker of alive) worker.process.kill('SIGTERM');
      cluster.on('exit', () => {
        if (Object.values(cluster.workers ?? {}).every((w) => !w || w.isDead())) resolveExit(code);
      });
    };

    const fork = () => {
      const worker = cluster.fork();
      worker.on('message', (message: unknown) => relay(worker, message));
    };

    const relay = (from: Worker, message: unknown) => {
      if (!isClusterMessage(message)) return;
      const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w !== from && !w.isDead());
      switch (message.polyhead) {
        case 'ready':
          started.add(from.id);
          if (started.size === workers) log(`polyhead cluster: ${workers} server processes ready at ${message.url}`);
          return;
        case 'job-query':
          return jobQueries.ask(from.id, message.ask, message.id, others.map((w) => w.id));
        case 'job-answer':
          if (message.from !== undefined) jobQueries.answered(from.id, message.from, message.ask, message.job);
          return;
      }
    };

    cluster.on('exit', (worker, code, signal) => {
      jobQueries.gone(worker.id);
      if (stopping) return;
      if (!started.has(worker.id)) {
        // It never started (bad settings, unreachable database): more forks would fail the same way.
        log(`polyhead cluster: a server process failed to start (exit ${code ?? signal}); stopping`);
        return stopAll(1);
      }
      log(`polyhead cluster: server process ${worker.process.pid} exited (${code ?? signal}); starting another`);
      fork();
    });
    process.once('SIGTERM', () => stopAll(0));
    process.once('SIGINT', () => stopAll(0));
    for (let i = 0; i < workers; i++) fork();
  });
}
