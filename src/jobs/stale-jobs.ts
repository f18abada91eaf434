// Jobs whose replica died (SIGKILL, power loss, a lost host) never stay RUNNING: every replica sweeps for records
// whose runner has not written for `staleMs` (a runner heartbeats far more often) and, in one transaction with
// pg-boss's row of the job, queues each again (while it has attempts left) or marks it FAILED with the reason. Row
// locks make two sweepers settle a job once. A job fetched from pg-boss by a replica that died before it marked the
// record RUNNING is found too (pg-boss has it active, the record is still QUEUED).
import type PgBoss from 'pg-boss';
import { notifyJob } from './job-records.js';
import { bossDb, type JobSql } from './job-sql.js';

export interface StaleJobOptions {
  staleMs: number;
  /** Runs a job gets in all before it is marked failed. */
  attempts: number;
  queue: string;
  /** pg-boss's schema. */
  schema: string;
  log: (line: string) => void;
}

interface Candidate {
  id: string;
}

interface Locked {
  status: string;
  runner: string | null;
  attempts: number;
  lastSeen: Date;
}

const utcNow = `(now() AT TIME ZONE 'UTC')`;

export class StaleJobSweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** Since when this replica has reached the database without a failure; undefined after a failure. */
  private reachableSince: number | undefined;
  private failing = false;

  constructor(
    private readonly sql: JobSql,
    private readonly boss: PgBoss,
    private readonly options: StaleJobOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.round(this.options.staleMs / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /**
   * Settles every stale job now; `olderThanMs` 0 takes every running job (the embedded database at start: only one
   * process can open it, so a job left running belongs to a process that is gone). Returns the ids settled.
   */
  async sweep(olderThanMs = this.options.staleMs): Promise<string[]> {
    const seconds = olderThanMs / 1000;
    const { rows } = await this.sql.query<Candidate>(
      `SELECT r.id FROM "TrainingJobRecord" r
       LEFT JOIN ${this.options.schema}.job j ON j.name = $2 AND j.id::text = r.id
       WHERE r."updatedAt" < ${utcNow} - make_interval(secs => $1)
         AND (r.status = 'RUNNING' OR (r.status = 'QUEUED' AND j.state = 'active' AND j.started_on < now() - make_interval(secs => $1)))`,
      [seconds, this.options.queue],
    );
    const settled: string[] = [];
    for (const { id } of rows) if (await this.settle(id, seconds)) settled.push(id);
    return settled;
  }

  private async tick(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = (async () => {
      try {
        // A replica that could not reach the database lately judges nobody yet: the runners could not write their
        // heartbeats through the same outage, and get `staleMs` of working database to show they are alive.
        if (this.reachableSince === undefined || Date.now() - this.reachableSince < this.options.staleMs) {
          await this.sql.query('SELECT 1');
          this.reachableSince ??= Date.now();
        } else await this.sweep();
        if (this.failing) this.options.log('training jobs: the sweeper reaches the database again');
        this.failing = false;
      } catch (error) {
        this.reachableSince = undefined;
        if (!this.failing) this.options.log(`training jobs: the sweeper cannot reach the database (${(error as Error).message}); retrying`);
        this.failing = true;
      } finally {
        this.sweeping = undefined;
      }
    })();
    await this.sweeping;
  }

  /** One job, under row locks on its record and its pg-boss row; false when it was no longer stale. */
  private settle(id: string, seconds: number): Promise<boolean> {
    const { queue, schema, attempts: maxAttempts } = this.options;
    return this.sql.transaction(async (tx) => {
      const record = (
        await tx.query<Locked>(
          `SELECT status, runner, attempts, ("updatedAt" AT TIME ZONE 'UTC') AS "lastSeen" FROM "TrainingJobRecord"
           WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') AND "updatedAt" < ${utcNow} - make_interval(secs => $2) FOR UPDATE`,
          [id, seconds],
        )
      ).rows[0];
      if (!record) return false; // its runner wrote meanwhile, or another sweeper settled it
      const boss = (
        await tx.query<{ state: string; startedLongAgo: boolean }>(
          `SELECT state::text AS state, started_on < now() - make_interval(secs => $3) AS "startedLongAgo" FROM ${schema}.job WHERE name = $1 AND id::text = $2 FOR UPDATE`,
          [queue, id, seconds],
        )
      ).rows[0];
      if (record.status === 'QUEUED' && !(boss?.state === 'active' && boss.startedLongAgo)) return false;

      const db = { db: bossDb(tx) };
      const who = record.runner ? `the replica that ran it (${record.runner})` : 'the replica that took it from the queue';
      const reason = `${who} stopped: no heartbeat since ${new Date(record.lastSeen).toISOString()}`;
      const requeueable = boss && ['active', 'failed', 'created', 'retry'].includes(boss.state);
      if (record.attempts < maxAttempts && requeueable) {
        await tx.query(`UPDATE "TrainingJobRecord" SET status = 'QUEUED', phase = 'queued', progress = 0, runner = NULL, "startedAt" = NULL, "updatedAt" = ${utcNow} WHERE id = $1`, [id]);
        // pg-boss's own way back into the queue: the active job fails (no retries of its own: a job that throws is
        // not run again), and retry() makes it fetchable once more.
        if (boss.state === 'active') await this.boss.fail(queue, id, { message: reason }, db);
        if (boss.state === 'active' || boss.state === 'failed') await this.boss.retry(queue, id, db);
        this.options.log(`training job ${id}: ${reason}; queued again (attempt ${record.attempts + 1} of ${maxAttempts})`);
      } else {
        const why = requeueable ? `after ${record.attempts} attempt${record.attempts === 1 ? '' : 's'}` : '(the queue no longer holds it)';
        const error = `${reason}; not run again ${why}`;
        await tx.query(`UPDATE "TrainingJobRecord" SET status = 'FAILED', error = $2, "finishedAt" = ${utcNow}, "updatedAt" = ${utcNow} WHERE id = $1`, [id, error]);
        if (boss?.state === 'active') await this.boss.fail(queue, id, { message: error }, db);
        this.options.log(`training job ${id} failed: ${error}`);
      }
      await notifyJob(tx, id);
      return true;
    });
  }
}
