// The cluster primary's side of "which server process runs training job X?" (src/server/cluster.ts): an ask
// from one worker goes to all its siblings; the first that knows the job answers it, and the asker hears
// null once every sibling said no or went away. Kept apart from node:cluster so that it can be tested alone.
import type { TrainingJob } from '../serving/training-jobs.js';

/** Worker ids, and how to reach one: `answer(to, ask, job)` sends a job-answer to worker `to`. */
export interface RelayTransport {
  answer(to: number, ask: number, job: TrainingJob | null): void;
  query(to: number, ask: number, id: string, from: number): void;
}

interface PendingAsk {
  asker: number;
  ask: number;
  waitingFor: Set<number>;
  answered: boolean;
}

export class JobQueryRelay {
  private readonly pending = new Map<string, PendingAsk>();

  constructor(private readonly transport: RelayTransport) {}

  /** Worker `asker` asks its siblings `siblings` about job `id` (its own ask number `ask`). */
  ask(asker: number, ask: number, id: string, siblings: readonly number[]): void {
    if (siblings.length === 0) return this.transport.answer(asker, ask, null);
    this.pending.set(`${asker}:${ask}`, { asker, ask, waitingFor: new Set(siblings), answered: false });
    for (const sibling of siblings) this.transport.query(sibling, ask, id, asker);
  }

  /** Worker `from` answered ask `ask` of worker `asker`. */
  answered(from: number, asker: number, ask: number, job: TrainingJob | null): void {
    const pending = this.pending.get(`${asker}:${ask}`);
    if (!pending) return;
    if (job && !pending.answered) {
      pending.answered = true;
      this.transport.answer(asker, ask, job);
    }
    this.stopWaiting(pending, from);
  }

  /**
   * A worker exited: it answers nothing any more (an ask waiting only for it ends with null now, not at the
   * asker's timeout), and its own asks are dropped.
   */
  gone(worker: number): void {
    for (const [key, pending] of this.pending) {
      if (pending.asker === worker) this.pending.delete(key);
      else this.stopWaiting(pending, worker);
    }
  }

  /** Asks still waiting for an answer (for tests and diagnostics). */
  get size(): number {
    return this.pending.size;
  }

  private stopWaiting(pending: PendingAsk, worker: number): void {
    if (!pending.waitingFor.delete(worker) || pending.waitingFor.size > 0) return;
    if (!pending.answered) this.transport.answer(pending.asker, pending.ask, null);
    this.pending.delete(`${pending.asker}:${pending.ask}`);
  }
}
