// A server process's side of the cluster (src/server/cluster.ts): says it is ready. (Loaded models stay alike
// through the registry's desired state; training jobs are records any process answers, see src/jobs/.)
import type { ClusterMessage } from './cluster.js';

export class ClusterLink {
  /** `send` is process.send of a cluster worker. */
  constructor(private readonly send: (message: ClusterMessage) => void) {}

  ready(url: string): void {
    this.send({ polyhead: 'ready', url });
  }
}
