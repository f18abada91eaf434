// A training job's states as a stream, for trainingJobUpdates: the current state first, then every change
// until the job ends. The job is always read through find() (this process's jobs, or wherever the job's
// record lives), so the stream works the same on any replica; a change notice only says "read it again",
// and a slow poll covers notices that never come (a listener that reconnected, a process that does not send them).
import { PolyheadError } from '../errors.js';
import { jobsChannel, type RegistryNotifications } from '../registry/notifications.js';
import { PushStream } from './push-stream.js';
import type { TrainingJob } from './training-jobs.js';

export interface JobFollowing {
  find: (id: string) => Promise<TrainingJob | null>;
  /** Calls wake whenever the job may have changed; returns the way to stop. */
  watch?: (id: string, wake: () => void) => () => void;
  /** Reads the job again after this long without a notice. */
  pollMs: number;
}

const terminal = new Set(['SUCCEEDED', 'FAILED']);

export function followTrainingJob(id: string, following: JobFollowing): PushStream<TrainingJob> {
  // Few states are ever buffered: each read sends only what changed, and a slow consumer only delays reads.
  const stream = new PushStream<TrainingJob>(64);
  let lastSent: string | undefined;
  let reading: Promise<void> | undefined;
  let readAgain = false;

  const readOnce = async () => {
    const job = await following.find(id);
    if (stream.closed) return;
    if (!job) {
      // Unknown from the start: a clear error. Gone later (a restart forgot it): the stream just ends.
      if (lastSent === undefined) stream.fail(new PolyheadError('NOT_FOUND', `no training job "${id}"`));
      else stream.end();
      return;
    }
    const snapshot: TrainingJob = { ...job, metrics: job.metrics.map((m) => ({ ...m })) };
    const key = JSON.stringify(snapshot);
    if (key !== lastSent) {
      lastSent = key;
      stream.push(snapshot);
    }
    if (terminal.has(job.status)) stream.end();
  };
  const read = () => {
    if (stream.closed) return;
    if (reading) {
      readAgain = true; // a notice during a read: read once more after it, not twice at once
      return;
    }
    reading = (async () => {
      try {
        do {
          readAgain = false;
          await readOnce().catch((error: unknown) => {
            // The first read's failure is the subscriber's answer; a later one (the registry away a moment) waits for the next poll.
            if (lastSent === undefined) stream.fail(error);
          });
        } while (readAgain && !stream.closed);
      } finally {
        reading = undefined;
      }
    })();
  };

  const stopWatching = following.watch?.(id, read);
  const poll = setInterval(read, following.pollMs);
  poll.unref();
  stream.onClose(() => {
    clearInterval(poll);
    stopWatching?.();
  });
  read();
  return stream;
}

/** Change notices from the registry's 'polyhead_jobs' channel (a job id each); a reconnected listener means "read again". */
export function jobNotices(notifications: Pick<RegistryNotifications, 'listen' | 'onReconnect'>): NonNullable<JobFollowing['watch']> {
  return (id, wake) => {
    const stopListening = notifications.listen(jobsChannel, (payload) => {
      if (payload === id) wake();
    });
    const stopReconnect = notifications.onReconnect(wake);
    return () => {
      stopListening();
      stopReconnect();
    };
  };
}
