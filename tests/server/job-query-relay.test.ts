// The cluster primary's relay of training-job lookups between server processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobQueryRelay } from '../../src/server/job-query-relay.js';
import type { TrainingJob } from '../../src/serving/training-jobs.js';

function setup() {
  const sent: string[] = [];
  const relay = new JobQueryRelay({
    answer: (to, ask, job) => sent.push(`answer ${to}#${ask} ${job ? job.id : 'null'}`),
    query: (to, ask, id, from) => sent.push(`query ${to} ${from}#${ask} ${id}`),
  });
  return { relay, sent };
}
const job = { id: 'job-1' } as TrainingJob;

test('an ask goes to every sibling; the first that knows the job answers; the asker hears once', () => {
  const { relay, sent } = setup();
  relay.ask(1, 7, 'job-1', [2, 3]);
  assert.deepEqual(sent.splice(0), ['query 2 1#7 job-1', 'query 3 1#7 job-1']);
  relay.answered(2, 1, 7, job);
  relay.answered(3, 1, 7, null);
  assert.deepEqual(sent, ['answer 1#7 job-1']);
  assert.equal(relay.size, 0);
});

test('null once every sibling said no; at once when there is no sibling', () => {
  const { relay, sent } = setup();
  relay.ask(1, 1, 'x', []);
  relay.ask(1, 2, 'x', [2, 3]);
  relay.answered(2, 1, 2, null);
  assert.deepEqual(sent.filter((line) => line.startsWith('answer')), ['answer 1#1 null']);
  relay.answered(3, 1, 2, null);
  assert.deepEqual(sent.filter((line) => line.startsWith('answer')), ['answer 1#1 null', 'answer 1#2 null']);
  relay.answered(3, 1, 2, job); // late or repeated answers are ignored
  assert.equal(sent.filter((line) => line.startsWith('answer')).length, 2);
});

test('a sibling that dies before answering stops being waited for; a dead asker\'s asks are dropped', () => {
  const { relay, sent } = setup();
  relay.ask(1, 1, 'x', [2, 3]);
  relay.answered(2, 1, 1, null);
  relay.gone(3);
  assert.deepEqual(sent.filter((line) => line.startsWith('answer')), ['answer 1#1 null']);
  relay.ask(2, 1, 'y', [1, 3]);
  relay.gone(2);
  assert.equal(relay.size, 0);
  relay.answered(1, 2, 1, job);
  assert.equal(sent.filter((line) => line.startsWith('answer 2')).length, 0);
});
