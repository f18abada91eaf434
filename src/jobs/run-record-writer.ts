// Keeps a running job's record current while it runs: what the runner changed, at most once per `throttleMs` (a
// training loop reports far more often than anyone reads) and at once when the phase changes; when nothing changed
// for `heartbeatMs`, a heartbeat, so that sweepers on other replicas see the runner alive. Writes go one at a time,
// in order. A write that finds the job no longer this runner's calls `onLost` once.
import { writeJobProgress, type JobOwner } from './job-records.js';
import type { JobSql } from './job-sql.js';
import type { TrainingJob } from './training-job.js';

export interface RunRecordWriterOptions {
  throttleMs: number;
  heartbeatMs: number;
  onLost: () => void;
  log: (line: string) => void;
}

export class RunRecordWriter {
  private written: string;
  private writtenPhase: string;
  private lastWriteAt = Date.now();
  private writing: Promise<void> = Promise.resolve();
  private queued = false;
  private lost = false;
  private failing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sql: JobSql,
    private readonly job: TrainingJob,
    private readonly owner: JobOwner,
    private readonly options: RunRecordWriterOptions,
  ) {
    this.written = visibleState(job);
    this.writtenPhase = job.phase;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.throttleMs);
    this.timer.unref();
  }

  /** The runner changed the job: a new phase is written now, anything else by the next tick. */
  changed(): void {
    if (this.job.phase !== this.writtenPhase) this.write();
  }

  /** Stops writing; resolves once the last write is done. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }

  private tick(): void {
    if (visibleState(this.job) !== this.written || Date.now() - this.lastWriteAt >= this.options.heartbeatMs) this.write();
  }

  private write(): void {
    if (this.queued || this.lost) return;
    this.queued = true;
    this.writing = this.writing.then(async () => {
      this.queued = false;
      // What the job is now, not when the write was asked for: a write that waited carries the newest state.
      const state = visibleState(this.job);
      this.writtenPhase = this.job.phase;
      this.lastWriteAt = Date.now();
      try {
        const mine = await writeJobProgress(this.sql, this.job, this.owner, state !== this.written);
        if (this.failing) this.options.log(`training job ${this.job.id}: its record is written again`);
        this.failing = false;
        if (!mine) {
          this.lost = true;
          this.options.onLost();
        } else this.written = state;
      } catch (error) {
        // The database away a moment: the run goes on and the next tick writes again. Said once per outage.
        if (!this.failing) this.options.log(`training job ${this.job.id}: cannot write its record (${(error as Error).message}); retrying`);
        this.failing = true;
      }
    });
  }
}

function visibleState(job: TrainingJob): string {
  return JSON.stringify([job.phase, job.progress, job.epoch, job.loss, job.validationMetric, job.metrics, job.version]);
}
