// Session settings that depend on the device and on how many server processes share the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../src/config.js';
import { packageRoot } from '../../src/paths.js';
import { serverNodeFlags } from '../../src/server/node-flags.js';
import { cpuShare, prepareRuntime } from '../../src/server/runtime.js';

const cpu = (env: Record<string, string>) => prepareRuntime(readConfig({ POLYHEAD_DEVICE: 'cpu', POLYHEAD_MODELS: '', ...env }), undefined, () => {});

test('on the CPU several server processes split the cores; one process leaves it to the replicas; a set value wins', async () => {
  const share = Math.max(1, Math.floor(availableParallelism() / 2));
  const two = (await cpu({ POLYHEAD_WORKERS: '2' })).session;
  assert.equal(two.intraOpThreads, share);
  assert.equal(two.replicas, 1);
  assert.equal((await cpu({})).session.intraOpThreads, 0);
  assert.equal((await cpu({ POLYHEAD_WORKERS: '2', POLYHEAD_ORT_THREADS: '3' })).session.intraOpThreads, 3);
});

test('on CUDA the processes keep onnxruntime\'s own thread default (one thread each measured slower)', () => {
  assert.equal(cpuShare('cuda', 12), 0);
  assert.equal(cpuShare('cpu', 1), 0);
  assert.equal(cpuShare('cpu', availableParallelism() * 4), 1);
});

test('the scheduler weighs padding against a per-run cost that can be set per device', async () => {
  assert.equal((await cpu({})).scheduler.batchOverheadTokens, 12);
  assert.equal((await cpu({ POLYHEAD_BATCH_OVERHEAD_TOKENS: '40' })).scheduler.batchOverheadTokens, 40);
  assert.equal(readConfig({ POLYHEAD_CUDA_BATCH_OVERHEAD_TOKENS: '1000' }).cuda.batchOverheadTokens, 1000);
});

test('npm start runs the server with the V8 flags the benchmarks and tests use', async () => {
  const start: string = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')).scripts.start;
  assert.equal(start, `node ${serverNodeFlags.join(' ')} dist/src/main.js`);
});
