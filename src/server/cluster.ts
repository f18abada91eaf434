// Several server processes sharing one port (node:cluster), for when one event loop cannot keep the device
// busy: on a GPU the node side (HTTP, GraphQL, JSON, tokenization) is the bottleneck long before the GPU is
// (docs/gpu.md). The primary serves nothing: it forks the workers, restarts one that dies, relays their
// messages and stops them on SIGTERM. Every worker opens the same PostgreSQL registry; the loaded models
// stay alike as on several hosts, through the registry's desired state (src/serving/desired-state.ts).
import cluster, { type Worker } from 'node:cluster';

/** What workers tell each other through the primary. */
export type ClusterMessage =
  | { polyhead: 'ready'; url: string };

export function isClusterMessage(value: unknown): value is ClusterMessage {
  return typeof value === 'object' && value !== null && typeof (value as { polyhead?: unknown }).polyhead === 'string';
}

/** Runs the primary until SIGTERM/SIGINT; resolves with the exit code. */
export function runClusterPrimary(workers: number, log: (line: string) => void): Promise<number> {
  let stopping = false;
  // Every worker that got as far as listening, replacements included.
  const started = new Set<number>();

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
      switch (message.polyhead) {
        case 'ready':
          started.add(from.id);
          if (started.size === workers) log(`polyhead cluster: ${workers} server processes ready at ${message.url}`);
          return;
      }
    };

    cluster.on('exit', (worker, code, signal) => {
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
