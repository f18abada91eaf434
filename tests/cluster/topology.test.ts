// scripts/cluster.sh as a user runs it: PostgreSQL, three replicas on hosts of their own (network namespaces,
// each its own address and data folder) and nginx in front. A multi-task query through nginx is answered by all
// three in turn; a replica that stops leaves nginx within the health loop's second and comes back once ready;
// stop leaves no process, namespace, link, port or folder behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { clusterGql, metricTotal, skipWithoutCluster, startCluster, type Cluster } from '../helpers/cluster.js';
import { topicExamples, topicLabels } from '../helpers/topic-examples.js';

let cluster: Cluster | undefined;

before(async () => {
  if (skipWithoutCluster) return;
  cluster = await startCluster({ replicas: 3 });
});
after(async () => {
  await cluster?.stop().catch(() => {});
});

const multiTask = `query($t: [String!]!) {
  analyze(texts: $t) { text sentiment { label score } entities { text label start end } embedding }
}`;
const texts = ['Maria Lopez loved the new Pixar film she saw in Madrid.', 'The delivery was late and the box was damaged.'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const origin = (url: string) => url.replace(/\/graphql$/, '');

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  for (const giveUpAt = Date.now() + ms; Date.now() < giveUpAt; await sleep(100)) if (await check()) return;
  assert.fail(`${what}: not within ${ms} ms`);
}

function assertAnalysis(data: any) {
  const [first, second] = data.analyze;
  assert.equal(first.sentiment.label, 'positive');
  assert.equal(second.sentiment.label, 'negative');
  assert.ok(first.entities.some((e: any) => e.text === 'Madrid' && e.label === 'LOC'), JSON.stringify(first.entities));
  for (const e of first.entities) assert.equal(texts[0]!.slice(e.start, e.end), e.text);
  assert.equal(first.embedding.length, 512);
}

test('three replicas on hosts of their own answer a multi-task query through nginx, spread over all three', { skip: skipWithoutCluster, timeout: 60_000 }, async () => {
  const c = cluster!;
  assert.equal(c.replicas.length, 3);
  assert.equal(new Set(c.replicas.map((r) => r.address)).size, 3, 'each replica has an address of its own');
  assert.equal(new Set(c.replicas.map((r) => r.dataDir)).size, 3, 'each replica has a data folder of its own');
  for (const replica of c.replicas) assert.ok(existsSync(join(replica.dataDir, 'bundles')), `${replica.dataDir} holds the replica's bundles`);
  if (c.network === 'netns') {
    // Each server process really runs in its own network namespace, where only its own address exists.
    for (const replica of c.replicas) assert.equal(execFileSync('ip', ['netns', 'identify', String(c.pid(replica.number))], { encoding: 'utf8' }).trim(), replica.netns);
  }

  const before = await Promise.all(c.replicas.map((r) => metricTotal(origin(r.url), 'polyhead_graphql_requests_total')));
  const answeredBy = new Map<string, number>();
  const requests = 12;
  for (let i = 0; i < requests; i++) {
    const answer = await clusterGql(c.url, multiTask, { t: texts });
    assert.equal(answer.status, 200);
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    assertAnalysis(answer.data);
    answeredBy.set(answer.replica!, (answeredBy.get(answer.replica!) ?? 0) + 1);
  }
  const addresses = c.replicas.map((r) => `${r.address}:${r.port}`);
  assert.deepEqual([...answeredBy.keys()].sort(), [...addresses].sort(), `answered by ${JSON.stringify([...answeredBy])}`);
  // Each replica's own count of GraphQL requests agrees with what nginx says it sent there.
  const afterCounts = await Promise.all(c.replicas.map((r) => metricTotal(origin(r.url), 'polyhead_graphql_requests_total')));
  c.replicas.forEach((replica, i) => assert.equal(afterCounts[i]! - before[i]!, answeredBy.get(addresses[i]!), `replica ${replica.number}'s /metrics`));
});

test('a replica that stops leaves nginx (no request fails) and is sent requests again once ready', { skip: skipWithoutCluster, timeout: 120_000 }, async () => {
  const c = cluster!;
  await c.replica(2, 'stop');
  // Out after two missed checks a second apart; nginx's passive checks cover the time in between.
  await until('the health loop takes replica 2 out of nginx', () => !c.inNginx().includes(2), 10_000);
  assert.match(readFileSync(c.nginx.upstream, 'utf8'), new RegExp(`server ${c.replicas[1]!.address.replaceAll('.', '\\.')}:\\d+ down;`));
  for (let i = 0; i < 6; i++) {
    const answer = await clusterGql(c.url, '{ sentiment(texts: ["Fine."]) { label } }');
    assert.equal(answer.status, 200);
    assert.equal(answer.errors, undefined);
    assert.notEqual(answer.replica, `${c.replicas[1]!.address}:${c.replicas[1]!.port}`);
  }
  await c.replica(2, 'start'); // returns once the replica is ready and back in nginx
  assert.ok(c.inNginx().includes(2), `in nginx: ${c.inNginx()}`);
  const seen = new Set<string>();
  // Each request is a connection of its own and nginx's workers balance apart: ask until it answers (bounded).
  const back = `${c.replicas[1]!.address}:${c.replicas[1]!.port}`;
  for (let i = 0; i < 40 && !seen.has(back); i++) seen.add((await clusterGql(c.url, '{ sentiment(texts: ["Fine."]) { label } }')).replica!);
  assert.ok(seen.has(`${c.replicas[1]!.address}:${c.replicas[1]!.port}`), `replica 2 answers again: ${[...seen]}`);
});

test('a head trained through one replica is served by all three soon after the job finishes (the time is printed)', { skip: skipWithoutCluster, timeout: 300_000 }, async () => {
  const c = cluster!;
  const examples = topicExamples.map(({ text, label }) => ({ text, label }));
  const started = await clusterGql(
    c.url,
    `mutation($e: [TrainingExampleInput!]) { trainHead(model: "default", head: "topics", task: CLASSIFICATION, labels: ${JSON.stringify(topicLabels)}, examples: $e) { id } }`,
    { e: examples },
    c.apiKey,
  );
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  const id: string = started.data.trainHead.id;
  let job: any;
  for (const giveUpAt = Date.now() + 240_000; ; await sleep(50)) {
    job = (await clusterGql(c.url, 'query($id: ID!) { trainingJob(id: $id) { status error version runner } }', { id }, c.apiKey)).data?.trainingJob;
    if (job?.status === 'SUCCEEDED' || job?.status === 'FAILED') break;
    assert.ok(Date.now() < giveUpAt, `job still ${job?.status}`);
  }
  assert.equal(job.status, 'SUCCEEDED', job.error);
  const finished = Date.now();
  // Each replica, asked directly: it serves the new version and its new head answers.
  const servedAfter: number[] = [];
  await Promise.all(
    c.replicas.map(async (replica) => {
      await until(
        `replica ${replica.number} serves ${job.version}`,
        async () => {
          const answer = await clusterGql(replica.url, '{ server { loadedModels { name version } } analyze(texts: ["The striker scored twice."]) { classify(head: "topics") { label } } }', undefined, c.apiKey).catch(() => undefined);
          return Boolean(answer?.data?.server.loadedModels.some((m: { name: string; version: string }) => m.name === 'default' && m.version === job.version) && answer!.data.analyze[0].classify.label === 'sports');
        },
        // A bound for the test only; the time itself is printed (and quoted in docs/scaling.md), not asserted.
        10_000,
      );
      servedAfter[replica.number - 1] = Date.now() - finished;
    }),
  );
  console.log(`[cluster] trained on ${job.runner}: ${job.version} served by the three replicas ${servedAfter.join(' / ')} ms after the job was seen finished`);
});

test('stop takes everything down and leaves nothing behind', { skip: skipWithoutCluster, timeout: 60_000 }, async () => {
  const c = cluster!;
  const nginxMaster = Number(readFileSync(c.nginx.pidFile, 'utf8'));
  const pids = [
    ...c.replicas.map((r) => c.pid(r.number)),
    nginxMaster,
    ...execFileSync('pgrep', ['-P', String(nginxMaster)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number),
    Number(readFileSync(join(c.dir, 'health.pid'), 'utf8')),
    Number(readFileSync(join(c.dir, 'postgres/data/postmaster.pid'), 'utf8').split('\n')[0]),
  ];
  assert.ok(pids.length >= 7 && pids.every((pid) => pid > 0), `pids ${pids}`);
  const port = Number(new URL(c.front).port);
  await c.stop();
  cluster = undefined;

  // A process that exited but was not yet reaped by init (a zombie) is gone for this purpose.
  const running = (pid: number) => {
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  };
  const alive = pids.filter(running);
  assert.deepEqual(alive, [], 'no process of the cluster is left');
  assert.equal(existsSync(c.dir), false, 'its folder is gone');
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!namespaces.includes(`polyhead-${c.id}-`), namespaces);
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  assert.ok(!new RegExp(`: ph${c.id}(br|r\\d+[hn])[@:]`).test(links), links);
  const claims = '/run/polyhead-clusters';
  assert.ok(!existsSync(claims) || !readdirSync(claims).includes(String(c.id)) || readFileSync(join(claims, String(c.id), 'dir'), 'utf8').trim() !== c.dir, 'its cluster number is free again');
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, `nothing listens on nginx's port ${port} any more`);
});
