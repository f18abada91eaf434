// Faults on the several-hosts topology (scripts/cluster.sh: PostgreSQL, three replicas on hosts of their own,
// nginx in front), each under 64 clients sending multi-task queries through nginx:
//   (a) a rolling restart (SIGTERM one replica, wait, start it again, then the next) answers every request;
//   (b) SIGKILL of one replica: the requests it held fail with a clear error and are counted, none fails once
//       nginx has marked it down, no mutation is applied twice, and its training job is retried or failed;
//   (c) PostgreSQL restarted: inference keeps answering, registry fields answer REGISTRY_UNAVAILABLE meanwhile,
//       every replica recovers without a restart;
//   (d) a replica started while a model change is in flight converges.
// Each test prints its counts (the closing notes and docs/scaling.md quote them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterGql, skipWithoutCluster, startCluster, type Cluster } from '../helpers/cluster.js';
import { startLoad, summarize, type Outcome } from '../helpers/load.js';
import { topicExamples, topicLabels } from '../helpers/topic-examples.js';

let cluster: Cluster | undefined;
const staleMs = 6_000;

before(async () => {
  if (skipWithoutCluster) return;
  cluster = await startCluster({
    replicas: 3,
    // A killed runner's job is noticed within seconds here (default 30 s).
    env: { POLYHEAD_JOB_STALE_MS: String(staleMs), POLYHEAD_LOG: 'info' },
  });
});
after(async () => {
  await cluster?.stop().catch(() => {});
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clients = 64;
const multiTask = 'query($t: [String!]!) { analyze(texts: $t) { sentiment { label } entities { text label } } }';
const texts = ['Maria Lopez loved the new film she saw in Madrid.', 'The delivery was late and the box was damaged.'];
const rightAnswer = (data: any) => data?.analyze?.[0]?.sentiment?.label === 'positive' && data.analyze[1].sentiment.label === 'negative';

function load(c: Cluster) {
  return startLoad({ url: c.url, clients, query: multiTask, variables: { t: texts }, check: rightAnswer, timeoutMs: 30_000 });
}

function report(name: string, outcomes: Outcome[], extra: Record<string, unknown> = {}) {
  console.log(`[cluster faults] ${name}: ${JSON.stringify({ ...summarize(outcomes), ...extra })}`);
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  for (const giveUpAt = Date.now() + ms; ; await sleep(200)) {
    const value = await check();
    if (value) return value;
    if (Date.now() > giveUpAt) assert.fail(`${what}: not within ${ms} ms`);
  }
}

/** What a replica serves, asked directly (not through nginx). */
async function servedVersion(c: Cluster, n: number, model = 'default'): Promise<string | null> {
  try {
    const answer = await clusterGql(c.replicas[n - 1]!.url, '{ server { loadedModels { name version } } }', undefined, c.apiKey);
    return answer.data?.server.loadedModels.find((m: { name: string }) => m.name === model)?.version ?? null;
  } catch {
    return null;
  }
}

test('(a) a rolling restart under load answers every request', { skip: skipWithoutCluster, timeout: 600_000 }, async () => {
  const c = cluster!;
  const running = load(c);
  await sleep(3_000);
  const steps: Array<{ replica: number; stoppedMs: number; readyAgainMs: number }> = [];
  for (const replica of c.replicas) {
    const t0 = running.now();
    await c.replica(replica.number, 'stop'); // SIGTERM; returns once the process has exited
    const stoppedMs = running.now() - t0;
    await c.replica(replica.number, 'start'); // returns once it is ready and nginx sends to it again
    steps.push({ replica: replica.number, stoppedMs, readyAgainMs: running.now() - t0 });
  }
  await sleep(3_000);
  const outcomes = await running.stop();
  report('rolling restart', outcomes, { clients, steps });
  const failures = outcomes.filter((o) => !o.ok);
  assert.ok(outcomes.length > 200, `only ${outcomes.length} requests were sent`);
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed during the rolling restart`);
});

const trainMutation = `mutation($e: [TrainingExampleInput!]) {
  trainHead(model: "default", head: "topics", task: CLASSIFICATION, labels: ${JSON.stringify(topicLabels)}, examples: $e) { id } }`;
const jobQuery = 'query($id: ID!) { trainingJob(id: $id) { status phase error runner attempts version } }';

test('(b) SIGKILL of a replica under load: counted failures, none after nginx drops it, no mutation twice, its job retried or failed', { skip: skipWithoutCluster, timeout: 600_000 }, async () => {
  const c = cluster!;
  // A training job, and the replica that runs it: that one is killed.
  const started = await clusterGql(c.url, trainMutation, { e: [...topicExamples, ...topicExamples, ...topicExamples] }, c.apiKey);
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  const jobId: string = started.data.trainHead.id;
  const runner = await until('the job runs', async () => {
    const job = (await clusterGql(c.url, jobQuery, { id: jobId }, c.apiKey)).data?.trainingJob;
    return job?.status === 'RUNNING' && job.runner ? (job.runner as string) : undefined;
  });
  // runner: "<host> pid <pid>"; the hosts share a name here (network namespaces), the pids tell them apart.
  const runnerPid = Number(/\bpid (\d+)/.exec(runner)?.[1]);
  const victim = c.replicas.find((r) => c.pid(r.number) === runnerPid);
  assert.ok(victim, `runner ${runner} is one of the replicas (${c.replicas.map((r) => c.pid(r.number)).join(', ')})`);

  const running = load(c);
  // Mutations through nginx at the same time: each creates one API key with a name of its own, so one applied
  // twice would show as two keys with one name.
  const mutationNames: string[] = [];
  const mutationOutcomes: Array<{ name: string; ok: boolean; code?: string }> = [];
  let mutating = true;
  const mutator = (async () => {
    for (let i = 0; mutating; i++) {
      const name = `fault-b-${i}`;
      mutationNames.push(name);
      try {
        const answer = await clusterGql(c.url, 'mutation($n: String!) { createApiKey(name: $n, scopes: ["read"]) { key } }', { n: name }, c.apiKey);
        mutationOutcomes.push({ name, ok: !answer.errors, code: answer.errors?.[0]?.extensions?.code as string | undefined });
      } catch (error) {
        mutationOutcomes.push({ name, ok: false, code: (error as Error).name });
      }
      await sleep(50);
    }
  })();
  await sleep(3_000);
  const killedAt = running.now();
  await c.replica(victim!.number, 'kill');
  const droppedAt = await until('nginx drops the killed replica', () => (!c.inNginx().includes(victim!.number) ? running.now() : undefined), 15_000);
  await sleep(5_000);
  mutating = false;
  await mutator;
  const outcomes = await running.stop();

  const afterDrop = outcomes.filter((o) => !o.ok && o.sentAt > droppedAt);
  const failed = outcomes.filter((o) => !o.ok);
  report('SIGKILL', outcomes, {
    clients,
    killedAtMs: killedAt,
    nginxDroppedItMs: droppedAt - killedAt,
    failedAfterDrop: afterDrop.length,
    mutations: mutationOutcomes.length,
    mutationsFailed: mutationOutcomes.filter((m) => !m.ok).length,
  });
  assert.deepEqual(afterDrop.slice(0, 5), [], 'no request sent after nginx dropped the replica fails');
  for (const failure of failed) {
    // What a client of a killed replica sees: nginx's typed answer (or a cut connection), never a wrong answer.
    assert.equal(failure.code, 'REPLICA_UNAVAILABLE', JSON.stringify(failure));
    assert.ok(failure.sentAt <= droppedAt, `a failure sent at ${failure.sentAt} ms, after the drop at ${droppedAt} ms`);
  }

  // No mutation twice: every key name at most once in the registry.
  const keys = (await clusterGql(c.url, '{ apiKeys { name } }', undefined, c.apiKey)).data.apiKeys as Array<{ name: string }>;
  const counts = new Map<string, number>();
  for (const key of keys) if (key.name.startsWith('fault-b-')) counts.set(key.name, (counts.get(key.name) ?? 0) + 1);
  assert.ok([...counts.values()].every((n) => n === 1), 'no key name twice');
  for (const m of mutationOutcomes) if (m.ok) assert.equal(counts.get(m.name), 1, `${m.name} answered ok is there once`);

  // The killed runner's job: retried by another replica (SUCCEEDED) or FAILED with the reason, never left running.
  const job = await until(
    'the killed replica\'s job ends',
    async () => {
      const j = (await clusterGql(c.url, jobQuery, { id: jobId }, c.apiKey)).data?.trainingJob;
      return j && (j.status === 'SUCCEEDED' || j.status === 'FAILED') ? j : undefined;
    },
    staleMs * 4 + 120_000,
  );
  console.log(`[cluster faults] SIGKILL job: ${JSON.stringify(job)}`);
  if (job.status === 'FAILED') assert.match(job.error, /stopped|died|killed|lost/i);
  else assert.notEqual(Number(/\bpid (\d+)/.exec(job.runner)?.[1]), runnerPid, 'retried by another replica');

  await c.replica(victim!.number, 'start');
});

test('(c) PostgreSQL restarted under load: inference keeps answering, registry fields say REGISTRY_UNAVAILABLE, replicas recover', { skip: skipWithoutCluster, timeout: 600_000 }, async () => {
  const c = cluster!;
  const running = load(c);
  await sleep(2_000);
  const downAt = running.now();
  await c.postgres('stop');
  // A registry field while PostgreSQL is away: a typed error, from every replica.
  const registryCodes: string[] = [];
  for (const replica of c.replicas) {
    const answer = await clusterGql(replica.url, '{ models(first: 1) { edges { node { name } } } }', undefined, c.apiKey);
    registryCodes.push(String(answer.errors?.[0]?.extensions?.code ?? 'answered'));
  }
  await sleep(3_000);
  await c.postgres('start');
  const upAt = running.now();
  // Every replica answers registry fields again, without a restart.
  const recovery: number[] = [];
  for (const replica of c.replicas) {
    const t0 = Date.now();
    await until(`replica ${replica.number} answers the registry again`, async () => {
      const answer = await clusterGql(replica.url, '{ models(first: 1) { edges { node { name } } } }', undefined, c.apiKey).catch(() => undefined);
      return answer && !answer.errors;
    });
    recovery.push(Date.now() - t0);
  }
  await sleep(2_000);
  const outcomes = await running.stop();
  const during = outcomes.filter((o) => o.sentAt >= downAt && o.sentAt <= upAt);
  report('PostgreSQL restart', outcomes, { clients, duringOutage: summarize(during), registryCodes, recoveryMs: recovery });
  assert.deepEqual(registryCodes, ['REGISTRY_UNAVAILABLE', 'REGISTRY_UNAVAILABLE', 'REGISTRY_UNAVAILABLE']);
  assert.ok(during.length > 50, `only ${during.length} inference requests during the outage`);
  assert.deepEqual(outcomes.filter((o) => !o.ok).slice(0, 5), [], 'inference kept answering');

  // The desired state still reaches every replica (their LISTEN sessions came back).
  const t0 = Date.now();
  const changed = await clusterGql(c.url, 'mutation { loadModel(model: "default", version: "1.2.0") { version } }', undefined, c.apiKey);
  assert.equal(changed.errors, undefined, JSON.stringify(changed.errors));
  for (const replica of c.replicas) await until(`replica ${replica.number} follows after the restart`, async () => (await servedVersion(c, replica.number)) === '1.2.0', 10_000);
  console.log(`[cluster faults] PostgreSQL restart: a model change reached all replicas ${Date.now() - t0} ms after it was made`);
});

test('(d) a replica started while a model change is in flight converges', { skip: skipWithoutCluster, timeout: 600_000 }, async () => {
  const c = cluster!;
  const late = c.replicas[2]!;
  await c.replica(late.number, 'stop');
  // Start it, and change the served version while it starts (before it is ready).
  await c.replica(late.number, 'start', { wait: false });
  const target = (await servedVersion(c, 1)) === '1.3.0' ? '1.2.0' : '1.3.0';
  const changed = await clusterGql(c.replicas[0]!.url, 'mutation($v: String) { loadModel(model: "default", version: $v) { version } }', { v: target }, c.apiKey);
  assert.equal(changed.errors, undefined, JSON.stringify(changed.errors));
  await c.script('wait', '180');
  const t0 = Date.now();
  const served = await until('every replica serves the new version', async () => {
    const versions = await Promise.all(c.replicas.map((r) => servedVersion(c, r.number)));
    return versions.every((v) => v === target) ? versions : undefined;
  });
  console.log(`[cluster faults] late replica: ${JSON.stringify({ target, served, convergedMsAfterReady: Date.now() - t0 })}`);
});
