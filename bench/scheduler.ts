/**
 * The scheduler's batch selection alone: `npm run bench:scheduler`. Times cheapestGroup (src/engine/cheapest-
 * group.ts) at the CPU and CUDA servers' default sizes (now 128 candidates for batches of 64, and 2,048 for
 * batches of 1,024), on token counts of the fixture sentences' spread, and writes
 * bench/results/scheduler.json. This work runs on the node thread once per batch.
 */
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readConfig } from '../src/config.js';
import { cheapestGroup } from '../src/engine/cheapest-group.js';
import { LOOKAHEAD_BATCHES } from '../src/engine/scheduler.js';
import { packageRoot } from '../src/paths.js';

// The server's default sizes, and as many candidates as the scheduler considers per selection.
const defaults = readConfig({});
const setups = [
  { name: `CPU server (POLYHEAD_MAX_BATCH_SIZE ${defaults.maxBatchSize})`, maxSize: defaults.maxBatchSize, budget: defaults.maxBatchTokens, overhead: defaults.batchOverheadTokens },
  { name: `CUDA server (POLYHEAD_CUDA_MAX_BATCH_SIZE ${defaults.cuda.maxBatchSize})`, maxSize: defaults.cuda.maxBatchSize, budget: defaults.cuda.maxBatchTokens, overhead: defaults.cuda.batchOverheadTokens },
].map((setup) => ({ ...setup, candidates: setup.maxSize * LOOKAHEAD_BATCHES }));
let seed = 11;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const rows = [];
for (const setup of setups) {
  // 5-44 tokens, most of them short, as the fixture sentences with their " (k)" suffix.
  const lengths = Float64Array.from({ length: setup.candidates }, () => 5 + Math.floor(random() * random() * 40)).sort();
  const anchors = Array.from({ length: 64 }, () => Math.floor(random() * setup.candidates));
  for (const anchor of anchors) cheapestGroup(lengths, anchor, setup.maxSize, setup.budget, setup.overhead); // warm-up
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) cheapestGroup(lengths, anchors[calls++ % anchors.length]!, setup.maxSize, setup.budget, setup.overhead);
  const msPerCall = (performance.now() - start) / calls;
  const row = { ...setup, distinctLengths: new Set(lengths).size, calls, msPerSelection: Math.round(msPerCall * 1e4) / 1e4, microsPerTextOfAFullBatch: Math.round((msPerCall * 1000 * 100) / setup.maxSize) / 100 };
  console.log(`${setup.name}: ${row.msPerSelection} ms per batch selection (${row.microsPerTextOfAFullBatch} us per text of a full batch)`);
  rows.push(row);
}
const out = join(packageRoot, 'bench', 'results', 'scheduler.json');
await mkdir(join(packageRoot, 'bench', 'results'), { recursive: true });
await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version }, rows }, null, 2)}\n`);
console.log(`wrote ${out}`);
