// The streams behind subscriptions: PushStream's ending and bound, LiveEvents' fan-out, and a job followed
// through find() on notices and polls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushStream } from '../../src/serving/push-stream.js';
import { LiveEvents, modelChangesTopic } from '../../src/serving/live-events.js';
import { followTrainingJob } from '../../src/serving/job-updates.js';
import { newTrainingJob, type TrainingJob } from '../../src/serving/training-jobs.js';

test('return() ends a stream at once, even while a next() waits, and runs its cleanup once', async () => {
  let cleanups = 0;
  const stream = new PushStream<number>().onClose(() => cleanups++);
  const waiting = stream.next();
  assert.deepEqual(await stream.return(), { value: undefined, done: true });
  assert.deepEqual(await waiting, { value: undefined, done: true });
  assert.deepEqual(await stream.next(), { value: undefined, done: true });
  stream.push(1);
  stream.end();
  assert.equal(cleanups, 1);
});

test('values pushed before end() or fail() are delivered first; the error comes once', async () => {
  const ended = new PushStream<number>();
  ended.push(1);
  ended.push(2);
  ended.end();
  const values: number[] = [];
  for await (const value of ended) values.push(value);
  assert.deepEqual(values, [1, 2]);

  const failed = new PushStream<number>();
  failed.push(1);
  failed.fail(new Error('gone'));
  assert.deepEqual(await failed.next(), { value: 1, done: false });
  await assert.rejects(failed.next(), /gone/);
  assert.deepEqual(await failed.next(), { value: undefined, done: true });
});

test('a consumer that falls behind the bound ends with OVERLOADED instead of buffering more', async () => {
  const stream = new PushStream<number>(3);
  for (let i = 0; i < 10; i++) stream.push(i);
  assert.ok(stream.closed);
  const values: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const value of stream) values.push(value);
    })(),
    (error: Error & { code?: string }) => error.code === 'OVERLOADED',
  );
  assert.deepEqual(values, [0, 1, 2]);
});

test('LiveEvents gives every subscriber of a topic each event, and forgets one that returned', async () => {
  const live = new LiveEvents();
  const a = live.subscribe(modelChangesTopic);
  const b = live.subscribe(modelChangesTopic);
  const event = { kind: 'LOADED' as const, model: 'm', version: '1.0.0', at: new Date() };
  live.publishModelChange(event);
  assert.deepEqual(await a.next(), { value: event, done: false });
  assert.deepEqual(await b.next(), { value: event, done: false });
  await a.return();
  assert.equal(live.count(modelChangesTopic), 1);
  live.publish('OTHER', 'x');
  live.publishModelChange({ ...event, kind: 'UNLOADED', version: null });
  assert.equal(((await b.next()).value as typeof event).kind, 'UNLOADED');
});

test('a followed job: its state first, a change on a notice without waiting for the poll, the end after SUCCEEDED', async () => {
  const job: TrainingJob = newTrainingJob('m', 'topic', 'classification');
  const reads: string[] = [];
  let wake: (() => void) | undefined;
  let watching = false;
  const stream = followTrainingJob(job.id, {
    find: async (id) => (reads.push(id), id === job.id ? job : null),
    watch: (_id, onNotice) => {
      wake = onNotice;
      watching = true;
      return () => (watching = false);
    },
    pollMs: 60_000, // no poll within this test: only notices cause reads
  });
  assert.equal((await stream.next()).value?.status, 'QUEUED');
  job.status = 'RUNNING';
  job.progress = 0.5;
  wake!();
  const running = (await stream.next()).value!;
  assert.deepEqual([running.status, running.progress], ['RUNNING', 0.5]);
  job.progress = 0.75;
  assert.equal(running.progress, 0.5, 'the state sent does not change with the job');
  wake!();
  assert.equal((await stream.next()).value?.progress, 0.75);
  wake!(); // a notice with nothing new sends nothing...
  await new Promise((resolve) => setImmediate(resolve));
  job.status = 'SUCCEEDED';
  job.progress = 1;
  wake!(); // ...the next change does, and ends the stream
  const last = (await stream.next()).value!;
  assert.deepEqual([last.status, last.progress], ['SUCCEEDED', 1]);
  assert.deepEqual(await stream.next(), { value: undefined, done: true });
  assert.equal(watching, false, 'stopped watching once it ended');
  assert.ok(reads.length >= 3);
});

test('an unknown job fails with NOT_FOUND; a job left alone is read again by the poll', async () => {
  const missing = followTrainingJob('nope', { find: async () => null, pollMs: 60_000 });
  await assert.rejects(missing.next(), (error: Error & { code?: string }) => error.code === 'NOT_FOUND' && /no training job "nope"/.test(error.message));

  const job = newTrainingJob('m', 'topic', 'classification');
  const polled = followTrainingJob(job.id, { find: async () => job, pollMs: 20 });
  // The poll's timer does not keep a process alive (a server does): this test must.
  const alive = setInterval(() => {}, 1_000);
  try {
    assert.equal((await polled.next()).value?.status, 'QUEUED');
    job.status = 'FAILED';
    job.error = 'no more memory';
    const failed = (await polled.next()).value!;
    assert.deepEqual([failed.status, failed.error], ['FAILED', 'no more memory']);
    assert.equal((await polled.next()).done, true);
  } finally {
    clearInterval(alive);
  }
});
