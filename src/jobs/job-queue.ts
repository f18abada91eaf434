// Durable training jobs: every job is a TrainingJobRecord row from the moment it is accepted, queued in pg-boss (its
// own schema, in the same database) and run by whichever replica fetches it first, one job at a time per replica
// (training shares the CPU with serving). The same queue runs on PostgreSQL and on the embedded PGlite, through
// pg-boss's `db` option. A runner writes its progress (throttled) and a heartbeat; a replica that dies is noticed by
// the sweepers of the others (stale-jobs.ts); a replica that stops (SIGTERM) hands its running job back at once,
// for another replica or for itself after the restart: a training job takes minutes, a shutdown grace seconds.
import { hostname } from 'node:os';
import PgBoss from 'pg-boss';
import { PolyheadError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { TrainingProgress } from '../training/progress.js';
import { claimJobRecord, findJobRecord, finishJobRecord, insertJobRecord, releaseJobRecord, writeJobRequest, type JobKind, type JobOwner } from './job-records.js';
import { bossDb, type JobSql } from './job-sql.js';
import { RunRecordWriter } from './run-record-writer.js';
import { StaleJobSweeper } from './stale-jobs.js';
import { jobProgress, type TrainingJob } from './training-job.js';

/** What a runner gets: the job to keep current, its stored request, and the signal that stops it. */
export interface JobRun {
  job: TrainingJob;
  /** As stored when the job was accepted (plus what an earlier attempt fixed with saveRequest). */
  request: Record<string, unknown>;
  /** Aborted when this replica stops, when another replica took the job over, or past the queue's time limit. */
  signal: AbortSignal;
  /** A training progress event: kept in the job and written (throttled). */
  progress(event: TrainingProgress): void;
  /** Call after changing the job directly (phase, metrics, version). */
  changed(): void;
  /** Stores `request` as it is now, for any later attempt (what this attempt fixed, such as the parent version). */
  saveRequest(): Promise<void>;
}

/** Runs one kind of job; resolves when its work is done (the queue then marks it SUCCEEDED), throws to fail it. */
export type JobRunner = (run: JobRun) => Promise<void>;

export interface JobQueueOptions {
  sql: JobSql;
  prisma: PrismaClient;
  /** A running job whose record has had no write for this long lost its replica (POLYHEAD_JOB_STALE_MS). */
  staleMs: number;
  /** Runs a job gets in all, the first and those after its replica died, before it is marked failed (POLYHEAD_JOB_ATTEMPTS). */
  attempts: number;
  /** The embedded database: only one process opens it, so a job left running at start belongs to a process that is gone. */
  embedded: boolean;
  log: (line: string) => void;
}

const queueName = 'training';
const bossSchema = 'pgboss';
/** pg-boss fails a job active longer than this (it allows less than 24 h); a run stops a little before. */
const expireInSeconds = 23 * 3600;
const runLimitMs = (expireInSeconds - 300) * 1000;
/** How often an idle replica asks pg-boss for a job (a job submitted here wakes it at once). */
const pollMs = 1_000;
/** Progress is written at most this often (plus at every phase change). */
const throttleMs = 250;

class ShutdownError extends Error {
  constructor() {
    super('the server is shutting down');
  }
}
class JobLostError extends Error {
  constructor() {
    super('another replica took the job over (this one was judged gone)');
  }
}

let queuesInProcess = 0;

export class DurableJobQueue {
  /** This replica as job records name it: host and process id (and which server, when a process runs several). */
  readonly runner: string;
  private boss: PgBoss | undefined;
  private sweeper: StaleJobSweeper | undefined;
  private readonly runners = new Map<JobKind, JobRunner>();
  private current: { controller: AbortController; done: Promise<void> } | undefined;
  private polling: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;

  constructor(private readonly options: JobQueueOptions) {
    const nth = ++queuesInProcess;
    this.runner = `${hostname()} pid ${process.pid}${nth > 1 ? ` server ${nth}` : ''}`;
  }

  register(kind: JobKind, runner: JobRunner): void {
    this.runners.set(kind, runner);
  }

  /** Installs pg-boss's schema (first start), settles what dead replicas left, and starts taking jobs. */
  async start(): Promise<void> {
    const { sql, staleMs, attempts, log } = this.options;
    // Scheduling (cron) is not used; supervision keeps pg-boss's tables tidy (expiry, archive, deletion).
    const boss = new PgBoss({ db: bossDb(sql), schema: bossSchema, schedule: false, supervise: true, migrate: true });
    boss.on('error', (error: Error) => log(`training jobs: pg-boss: ${error.message}`));
    this.boss = boss;
    await boss.start();
    await createQueueOnce(boss);
    this.sweeper = new StaleJobSweeper(sql, boss, { staleMs, attempts, queue: queueName, schema: bossSchema, log });
    if (this.options.embedded) await this.sweeper.sweep(0);
    this.sweeper.start();
    this.polling = this.poll();
  }

  /** Records the job and queues it, in one transaction; this replica's runner is woken if it is idle. */
  async submit(job: TrainingJob, kind: JobKind, request: object): Promise<void> {
    if (this.closing || !this.boss) throw new PolyheadError('SHUTTING_DOWN', 'the server is shutting down: start the job on another replica');
    const boss = this.boss;
    await this.options.sql.transaction(async (tx) => {
      await insertJobRecord(tx, job, kind, request);
      await boss.send(queueName, { kind }, { id: job.id, retryLimit: 0, expireInSeconds, db: bossDb(tx) });
    });
    this.wake?.();
  }

  /** The job as its record says, whichever replica runs or ran it; null when there is none. */
  find(id: string): Promise<TrainingJob | null> {
    return findJobRecord(this.options.prisma, id);
  }

  /** Stops taking jobs, hands the running one back (or lets it finish its last step) and stops pg-boss. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      this.closing = true;
      this.wake?.();
      this.current?.controller.abort(new ShutdownError());
      await this.current?.done;
      await this.polling;
      await this.sweeper?.stop();
      await this.boss?.stop({ graceful: false, close: false });
      await this.options.sql.close();
    })());
  }

  // pg-boss's work() is not used: it completes or fails a job itself after the handler returns, outside any
  // transaction and without waiting (a rejection there, with the database away, would be unhandled), while here a
  // job's end is written together with its record. So the queue fetches one job at a time itself.
  private async poll(): Promise<void> {
    while (!this.closing) {
      // pg-boss answers "no job" when the fetch itself fails (the database away): the loop just tries again later.
      const [fetched] = await this.boss!.fetch<{ kind: string }>(queueName, { batchSize: 1 }).catch(() => []);
      if (fetched && this.closing) await this.putBack(fetched.id);
      else if (fetched) await this.handle(fetched.id);
      else {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          this.wake = () => (clearTimeout(timer), resolve());
        });
        this.wake = undefined;
      }
    }
  }

  private async handle(id: string): Promise<void> {
    const { sql, log } = this.options;
    const boss = this.boss!;
    let claimed;
    try {
      claimed = await claimJobRecord(sql, id, this.runner);
    } catch (error) {
      log(`training job ${id}: cannot mark it running (${(error as Error).message}); it goes back to the queue`);
      await this.putBack(id);
      return;
    }
    if (!claimed) {
      // Its record is not waiting (a sweeper failed it meanwhile): nothing to run.
      await boss.complete(queueName, id, { skipped: 'the job record is not queued' }).catch(() => {});
      return;
    }
    const { job, owner, kind, request } = claimed;
    const controller = new AbortController();
    // close() came while the job was being claimed: it goes straight back.
    if (this.closing) controller.abort(new ShutdownError());
    const limit = setTimeout(() => controller.abort(new Error(`the job ran for more than ${Math.floor(runLimitMs / 3_600_000)} hours, the queue's limit`)), runLimitMs);
    limit.unref();
    const writer = new RunRecordWriter(sql, job, owner, {
      throttleMs,
      heartbeatMs: Math.max(100, Math.round(this.options.staleMs / 6)),
      onLost: () => controller.abort(new JobLostError()),
      log,
    });
    const keep = jobProgress(job);
    const run: JobRun = {
      job,
      request,
      signal: controller.signal,
      progress: (event) => {
        keep(event);
        writer.changed();
      },
      changed: () => writer.changed(),
      saveRequest: async () => {
        if (!(await writeJobRequest(sql, job.id, owner, request))) controller.abort(new JobLostError());
        controller.signal.throwIfAborted();
      },
    };
    writer.start();
    const done = (async () => {
      try {
        const runner = this.runners.get(kind);
        if (!runner) throw new Error(`this server does not run jobs of kind "${kind}"`);
        await runner(run);
        if (controller.signal.reason instanceof JobLostError) throw controller.signal.reason;
        job.status = 'SUCCEEDED';
        job.phase = 'done';
        job.progress = 1;
        await writer.stop();
        await this.finish(job, owner);
      } catch (error) {
        await writer.stop();
        const reason: unknown = controller.signal.reason;
        if (reason instanceof JobLostError) log(`training job ${job.id} (${job.model}/${job.head}): ${reason.message}; this run stops`);
        else if (reason instanceof ShutdownError) await this.giveBack(job, owner);
        else {
          job.status = 'FAILED';
          job.error = (error as Error).message;
          await this.finish(job, owner);
          log(`training job ${job.id} (${job.model}/${job.head}) failed: ${(error as Error).message}`);
        }
      } finally {
        clearTimeout(limit);
      }
    })().catch((error: Error) => {
      // The end could not be written (the database away): the record stays RUNNING without heartbeats, and a
      // sweeper settles it once it is stale.
      log(`training job ${id}: cannot record its end (${error.message}); a sweeper will settle it`);
    });
    this.current = { controller, done };
    await done;
    this.current = undefined;
  }

  /** SUCCEEDED or FAILED, with pg-boss's job completed or failed in the same transaction. */
  private async finish(job: TrainingJob, owner: JobOwner): Promise<void> {
    const boss = this.boss!;
    await this.options.sql.transaction(async (tx) => {
      if (!(await finishJobRecord(tx, job, owner))) return; // another replica took it over: its record is not ours to end
      const output = { status: job.status, version: job.version, error: job.error };
      if (job.status === 'SUCCEEDED') await boss.complete(queueName, job.id, output, { db: bossDb(tx) });
      else await boss.fail(queueName, job.id, output, { db: bossDb(tx) });
    });
  }

  /** This replica is stopping: the job is QUEUED again, and pg-boss's job fetchable again, in one transaction. */
  private async giveBack(job: TrainingJob, owner: JobOwner): Promise<void> {
    const released = await this.options.sql.transaction(async (tx) => {
      if (!(await releaseJobRecord(tx, job.id, owner))) return false;
      await this.requeue(tx, job.id, 'handed back: the replica that ran it is stopping');
      return true;
    });
    if (released) this.options.log(`training job ${job.id} (${job.model}/${job.head}) handed back to the queue: this server is stopping`);
  }

  /** A job fetched but not started (this replica is stopping, or could not mark it running) goes back to the queue. */
  private async putBack(id: string): Promise<void> {
    await this.options.sql.transaction((tx) => this.requeue(tx, id, 'put back: not started')).catch((error: Error) => {
      this.options.log(`training job ${id}: cannot put it back (${error.message}); a sweeper will`);
    });
  }

  private async requeue(tx: JobSql, id: string, message: string): Promise<void> {
    await this.boss!.fail(queueName, id, { message }, { db: bossDb(tx) });
    await this.boss!.retry(queueName, id, { db: bossDb(tx) });
  }
}

/**
 * Replicas that start together on a fresh database race to create the queue, and PostgreSQL settles the race by
 * failing one of them with a deadlock (40P01): that one tries again, and then finds the queue there.
 */
async function createQueueOnce(boss: PgBoss): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (!(await boss.getQueue(queueName))) await boss.createQueue(queueName, { name: queueName, retryLimit: 0, expireInSeconds });
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 100));
    }
  }
}
