// A training job as clients see it (trainingJob(id), trainingJobUpdates): what it does, where it stands, what it
// produced. Kept in a TrainingJobRecord row (job-records.ts); a runner holds a copy it keeps current.
import { randomUUID } from 'node:crypto';
import type { TrainingProgress } from '../training/progress.js';

export type TrainableTask = 'classification' | 'token_classification';
/** What a job does: a head's task (trainHead) or fine-tuning a backbone. */
export type JobTask = TrainableTask | 'fine_tune_backbone';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface JobMetric {
  metric: string;
  value: number;
  split: string;
  samples: number;
}

export interface TrainingJob {
  id: string;
  model: string;
  /** The head trained; for a fine-tuning job, the heads retrained (comma-separated). */
  head: string;
  task: JobTask;
  status: JobStatus;
  phase: string;
  /** 0..1 within the current phase. */
  progress: number;
  epoch: number | null;
  loss: number | null;
  validationMetric: number | null;
  metrics: JobMetric[];
  error: string | null;
  /** The replica running it, or that ran it last ("host pid 123"). */
  runner: string | null;
  /** How many times a replica has started it (a run handed back by a stopping replica does not count). */
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The version the job registered. */
  version: string | null;
}

/** A new job, QUEUED. */
export function newTrainingJob(model: string, head: string, task: JobTask): TrainingJob {
  return {
    id: randomUUID(),
    model,
    head,
    task,
    status: 'QUEUED',
    phase: 'queued',
    progress: 0,
    epoch: null,
    loss: null,
    validationMetric: null,
    metrics: [],
    error: null,
    runner: null,
    attempts: 0,
    createdAt: new Date(),
    startedAt: null,
    finishedAt: null,
    version: null,
  };
}

/** A progress listener that keeps a job's phase, progress, epoch, loss and best validation figure current. */
export function jobProgress(job: TrainingJob): (event: TrainingProgress) => void {
  return (event) => {
    job.phase = event.phase;
    job.progress = event.total ? event.done / event.total : 0;
    job.epoch = event.epoch ?? job.epoch;
    job.loss = event.loss ?? job.loss;
    job.validationMetric = event.bestValidationMetric ?? job.validationMetric;
  };
}
