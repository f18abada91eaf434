// Central finite differences of f = sum_o <seed_o, output_o> against DifferentiableGraph's gradients.
import * as ort from 'onnxruntime-node';
import { DifferentiableGraph, type DifferentiableGraphOptions, type Gradient, type Param } from '../../../src/training/autodiff/index.js';
import { mulberry32 } from '../../helpers/hf-fixtures.js';

export type Feeds = Record<string, ort.Tensor>;

export function uniform(count: number, random: () => number, low = -1, high = 1): Float32Array {
  return Float32Array.from({ length: count }, () => low + (high - low) * random());
}

/** f = sum_o <seed_o, output_o> in float64, at the current parameter values. */
export async function objective(graph: DifferentiableGraph, feeds: Feeds, seeds: Record<string, Float32Array>): Promise<number> {
  const outputs = await graph.forward(feeds);
  let f = 0;
  for (const [name, seed] of Object.entries(seeds)) {
    const data = outputs[name]!.data;
    for (let i = 0; i < seed.length; i++) f += seed[i]! * data[i]!;
  }
  return f;
}

/** One entry of a gradient, whichever kind it is (0 for a row not listed). */
export function gradientAt(param: Param, gradient: Gradient, index: number): number {
  if (gradient.kind === 'dense') return gradient.data[index]!;
  const width = param.data.length / param.dims[0]!;
  const row = Math.floor(index / width);
  let lo = 0;
  let hi = gradient.rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (gradient.rows[mid] === row) return gradient.values[mid * width + (index % width)]!;
    if (gradient.rows[mid]! < row) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

/** The derivative of f along one entry, by central differences with the float32 steps actually taken. */
export async function centralDifference(graph: DifferentiableGraph, feeds: Feeds, seeds: Record<string, Float32Array>, param: Param, index: number, step: number): Promise<number> {
  const original = param.data[index]!;
  param.data[index] = original + step;
  const up = param.data[index]!;
  const fUp = await objective(graph, feeds, seeds);
  param.data[index] = original - step;
  const down = param.data[index]!;
  const fDown = await objective(graph, feeds, seeds);
  param.data[index] = original;
  return (fUp - fDown) / (up - down);
}

export interface Comparison {
  param: string;
  index: number;
  analytic: number;
  numeric: number;
}

export interface CheckOptions {
  /** Entries per parameter: all when the parameter has at most this many, else this many (the largest |g| first, then random). */
  maxEntries?: number;
  /** Finite-difference step. Default 1e-2. */
  step?: number;
  /** Which parameters to check (default all). */
  params?: (name: string) => boolean;
  seed?: number;
}

export async function compareWithFiniteDifferences(
  graph: DifferentiableGraph,
  feeds: Feeds,
  options: CheckOptions = {},
): Promise<{ comparisons: Comparison[]; seeds: Record<string, Float32Array>; gradients: Map<string, Gradient> }> {
  const random = mulberry32(options.seed ?? 7);
  const outputs = await graph.forward(feeds);
  const seeds: Record<string, Float32Array> = {};
  for (const [name, value] of Object.entries(outputs)) seeds[name] = uniform(value.data.length, random);
  await graph.forward(feeds);
  const gradients = await graph.backward(seeds);
  const comparisons: Comparison[] = [];
  const maxEntries = options.maxEntries ?? 64;
  for (const param of graph.params) {
    if (options.params && !options.params(param.name)) continue;
    const gradient = gradients.get(param.name)!;
    const n = param.data.length;
    let entries: number[];
    if (n <= maxEntries) entries = Array.from({ length: n }, (_, i) => i);
    else {
      let largest = 0;
      for (let i = 1; i < n; i++) if (Math.abs(gradientAt(param, gradient, i)) > Math.abs(gradientAt(param, gradient, largest))) largest = i;
      const set = new Set([largest]);
      // A table's random entries come from the rows the feeds use (the others are checked by the caller).
      const width = n / param.dims[0]!;
      const pick = gradient.kind === 'rows' && gradient.rows.length > 0 ? () => gradient.rows[Math.floor(random() * gradient.rows.length)]! * width + Math.floor(random() * width) : () => Math.floor(random() * n);
      for (let tries = 0; set.size < maxEntries && tries < 100 * maxEntries; tries++) set.add(pick());
      entries = [...set];
    }
    for (const index of entries) {
      const numeric = await centralDifference(graph, feeds, seeds, param, index, options.step ?? 1e-2);
      comparisons.push({ param: param.name, index, analytic: gradientAt(param, gradient, index), numeric });
    }
  }
  return { comparisons, seeds, gradients };
}

/** Comparisons that disagree: |numeric - analytic| > rtol * (largest |value| of that parameter's checks) + atol. */
export function mismatches(comparisons: Comparison[], rtol = 1e-2, atol = 1e-4): Comparison[] {
  const scale = new Map<string, number>();
  for (const c of comparisons) scale.set(c.param, Math.max(scale.get(c.param) ?? 0, Math.abs(c.analytic), Math.abs(c.numeric)));
  return comparisons.filter((c) => !(Math.abs(c.numeric - c.analytic) <= rtol * scale.get(c.param)! + atol));
}

/** Builds the graph, checks every parameter against finite differences, and returns what disagrees (with a summary). */
export async function checkModel(
  bytes: Uint8Array,
  outputs: string[],
  feeds: Feeds = {},
  options: CheckOptions & { mode?: DifferentiableGraphOptions['intermediates']; trainable?: DifferentiableGraphOptions['trainable'] } = {},
): Promise<{ bad: Comparison[]; checked: number; gradients: Map<string, Gradient>; graph: DifferentiableGraph }> {
  const graph = await DifferentiableGraph.create(bytes, { outputs, trainable: options.trainable ?? (() => true), intermediates: options.mode });
  const { comparisons, gradients } = await compareWithFiniteDifferences(graph, feeds, options);
  return { bad: mismatches(comparisons), checked: comparisons.length, gradients, graph };
}

export function describe(bad: Comparison[]): string {
  return bad
    .slice(0, 8)
    .map((c) => `${c.param}[${c.index}]: analytic ${c.analytic.toPrecision(6)}, numeric ${c.numeric.toPrecision(6)}`)
    .join('; ');
}
