// TrainingJobRecord: a training job as a row, from the moment it is accepted to its end, so that any replica can
// answer trainingJob(id), run it, or run it again. Every write goes through here, in SQL on the queue's connection so
// that it can share a transaction with pg-boss; timestamps are the database's clock (UTC), never a replica's, so a
// heartbeat written on one host is judged stale on another by the same clock. After each write that changes what
// trainingJob(id) shows, pg_notify('polyhead_jobs', id) tells listeners (subscriptions on every replica).
import type { PrismaClient } from '../generated/prisma/client.js';
import type { TrainingJobRecord } from '../generated/prisma/client.js';
import type { JobMetric, JobStatus, JobTask, TrainingJob } from './training-job.js';
import type { JobSql } from './job-sql.js';

/** What a job runs: trainHead, or fineTuneBackbone. */
export type JobKind = 'train_head' | 'fine_tune_backbone';

/** The channel pg_notify announces a job's id on. */
export const jobChannel = 'polyhead_jobs';

/** The replica running a job and the attempt it runs: every write of a runner is conditional on both. */
export interface JobOwner {
  runner: string;
  attempt: number;
}

/** A job this replica has just claimed. */
export interface ClaimedJob {
  kind: JobKind;
  request: Record<string, unknown>;
  job: TrainingJob;
  owner: JobOwner;
}

const utcNow = `(now() AT TIME ZONE 'UTC')`;
/** A record's timestamps read back as instants (they are stored as UTC wall-clock times). */
const instant = (column: string) => `("${column}" AT TIME ZONE 'UTC') AS "${column}"`;
const jobColumns = `id, kind, model, head, task, status, phase, progress, epoch, loss, "validationMetric", metrics, error, request, runner, attempts, version,
  ${instant('createdAt')}, ${instant('startedAt')}, ${instant('finishedAt')}, ${instant('updatedAt')}`;
const ownedBy = `status = 'RUNNING' AND runner = $2 AND attempts = $3`;

export async function insertJobRecord(sql: JobSql, job: TrainingJob, kind: JobKind, request: object): Promise<void> {
  await sql.query(
    `INSERT INTO "TrainingJobRecord" (id, kind, model, head, task, status, phase, progress, metrics, request, attempts, "createdAt", "updatedAt")
     VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, 0, '[]'::jsonb, $7::jsonb, 0, ${utcNow}, ${utcNow})`,
    [job.id, kind, job.model, job.head, job.task, job.phase, JSON.stringify(request)],
  );
  await notifyJob(sql, job.id);
}

/** Takes a QUEUED job for `runner`: RUNNING, one more attempt. Null when the record is not QUEUED (gone, finished). */
export async function claimJobRecord(sql: JobSql, id: string, runner: string): Promise<ClaimedJob | null> {
  const { rows } = await sql.query<RecordRow>(
    `UPDATE "TrainingJobRecord" SET status = 'RUNNING', phase = 'starting', progress = 0, runner = $2, attempts = attempts + 1, error = NULL,
       "startedAt" = ${utcNow}, "finishedAt" = NULL, "updatedAt" = ${utcNow}
     WHERE id = $1 AND status = 'QUEUED' RETURNING ${jobColumns}`,
    [id, runner],
  );
  const row = rows[0];
  if (!row) return null;
  await notifyJob(sql, id);
  return { kind: row.kind as JobKind, request: row.request as Record<string, unknown>, job: jobOfRow(row), owner: { runner, attempt: row.attempts } };
}

/**
 * Writes what the runner changed (phase, progress, figures, version), or only the heartbeat. False when the job is no
 * longer this runner's (a sweeper judged it dead and queued it again): the runner must stop.
 */
export async function writeJobProgress(sql: JobSql, job: TrainingJob, owner: JobOwner, changed: boolean): Promise<boolean> {
  const { rows } = changed
    ? await sql.query(
        `UPDATE "TrainingJobRecord" SET phase = $4, progress = $5, epoch = $6, loss = $7, "validationMetric" = $8, metrics = $9::jsonb, version = $10, "updatedAt" = ${utcNow}
         WHERE id = $1 AND ${ownedBy} RETURNING id`,
        [job.id, owner.runner, owner.attempt, job.phase, job.progress, job.epoch, job.loss, job.validationMetric, JSON.stringify(job.metrics), job.version],
      )
    : await sql.query(`UPDATE "TrainingJobRecord" SET "updatedAt" = ${utcNow} WHERE id = $1 AND ${ownedBy} RETURNING id`, [job.id, owner.runner, owner.attempt]);
  // A heartbeat changes nothing a client sees: it is not announced.
  if (rows.length && changed) await notifyJob(sql, job.id);
  return rows.length > 0;
}

/** The end of a run: SUCCEEDED or FAILED with everything the job shows. False when the job was no longer this runner's. */
export async function finishJobRecord(sql: JobSql, job: TrainingJob, owner: JobOwner): Promise<boolean> {
  const { rows } = await sql.query(
    `UPDATE "TrainingJobRecord" SET status = $4, phase = $5, progress = $6, epoch = $7, loss = $8, "validationMetric" = $9, metrics = $10::jsonb, version = $11,
       error = $12, "finishedAt" = ${utcNow}, "updatedAt" = ${utcNow}
     WHERE id = $1 AND ${ownedBy} RETURNING id`,
    [job.id, owner.runner, owner.attempt, job.status, job.phase, job.progress, job.epoch, job.loss, job.validationMetric, JSON.stringify(job.metrics), job.version, job.error],
  );
  if (rows.length) await notifyJob(sql, job.id);
  return rows.length > 0;
}

/** Stores what a run fixed for every later attempt (the parent version it trains on). */
export async function writeJobRequest(sql: JobSql, id: string, owner: JobOwner, request: object): Promise<boolean> {
  const { rows } = await sql.query(`UPDATE "TrainingJobRecord" SET request = $4::jsonb, "updatedAt" = ${utcNow} WHERE id = $1 AND ${ownedBy} RETURNING id`, [
    id,
    owner.runner,
    owner.attempt,
    JSON.stringify(request),
  ]);
  return rows.length > 0;
}

/**
 * Hands a running job back (this replica is stopping): QUEUED again, the attempt not counted, since nothing went
 * wrong with the job. False when it was no longer this runner's.
 */
export async function releaseJobRecord(sql: JobSql, id: string, owner: JobOwner): Promise<boolean> {
  const { rows } = await sql.query(
    `UPDATE "TrainingJobRecord" SET status = 'QUEUED', phase = 'queued', progress = 0, runner = NULL, attempts = attempts - 1, "startedAt" = NULL, "updatedAt" = ${utcNow}
     WHERE id = $1 AND ${ownedBy} RETURNING id`,
    [id, owner.runner, owner.attempt],
  );
  if (rows.length) await notifyJob(sql, id);
  return rows.length > 0;
}

export async function notifyJob(sql: JobSql, id: string): Promise<void> {
  await sql.query('SELECT pg_notify($1, $2)', [jobChannel, id]);
}

/** The job as trainingJob(id) shows it, from any replica; null when there is no such job. */
export async function findJobRecord(prisma: PrismaClient, id: string): Promise<TrainingJob | null> {
  const record = await prisma.trainingJobRecord.findUnique({ where: { id } });
  return record ? jobOfRow(record) : null;
}

type RecordRow = Omit<TrainingJobRecord, 'metrics' | 'request'> & { metrics: unknown; request: unknown };

export function jobOfRow(row: RecordRow): TrainingJob {
  return {
    id: row.id,
    model: row.model,
    head: row.head,
    task: row.task as JobTask,
    status: row.status as JobStatus,
    phase: row.phase,
    progress: row.progress,
    epoch: row.epoch,
    loss: row.loss,
    validationMetric: row.validationMetric,
    metrics: (row.metrics ?? []) as JobMetric[],
    error: row.error,
    runner: row.runner,
    attempts: row.attempts,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    version: row.version,
  };
}
