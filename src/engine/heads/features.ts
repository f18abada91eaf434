// Copies the rows a head needs out of the backbone's batch output (a head runs only on the texts that asked).
import type { BackboneOutput } from '../backbone.js';
import type { HeadRow } from './head.js';

export function gatherPooled(features: BackboneOutput, rows: readonly HeadRow[]): Float32Array {
  const { hidden, pooled } = features;
  if (!pooled) throw new Error('the backbone gives no sentence embedding');
  if (rows.length === features.size) return pooled;
  const out = new Float32Array(rows.length * hidden);
  rows.forEach((row, i) => out.set(pooled.subarray(row.index * hidden, (row.index + 1) * hidden), i * hidden));
  return out;
}

/** [rows, tokens, hidden] token states and the matching int64 attention mask. */
export function gatherTokenStates(features: BackboneOutput, rows: readonly HeadRow[]): { states: Float32Array; mask: BigInt64Array } {
  const { hidden, tokens, tokenStates } = features;
  if (!tokenStates) throw new Error('the backbone ran without token states, but a token head needs them');
  const stride = tokens * hidden;
  const states = rows.length === features.size ? tokenStates : new Float32Array(rows.length * stride);
  const mask = new BigInt64Array(rows.length * tokens);
  rows.forEach((row, i) => {
    if (states !== tokenStates) states.set(tokenStates.subarray(row.index * stride, (row.index + 1) * stride), i * stride);
    for (let t = 0; t < row.encoding.ids.length; t++) mask[i * tokens + t] = 1n;
  });
  return { states, mask };
}

/** Softmax of one row of logits, in place into `out`. */
export function softmax(logits: Float32Array, offset: number, count: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < count; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += out[i] = Math.exp(logits[offset + i]! - max);
  for (let i = 0; i < count; i++) out[i]! /= sum;
}

/** The rows of a graph output [size, ...] that a head inside the graph decodes, in the rows' order. */
export function gatherGraphOutput(features: BackboneOutput, name: string, rows: readonly HeadRow[]): { data: Float32Array; dims: readonly number[] } {
  const output = features.graph[name];
  if (!output) throw new Error(`the backbone ran without its output "${name}"`);
  const [size, ...rest] = output.dims;
  if (rows.length === size && rows.every((row, i) => row.index === i)) return output;
  const stride = rest.reduce((a, b) => a * b, 1);
  const data = new Float32Array(rows.length * stride);
  rows.forEach((row, i) => data.set(output.data.subarray(row.index * stride, (row.index + 1) * stride), i * stride));
  return { data, dims: [rows.length, ...rest] };
}
