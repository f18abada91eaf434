/**
 * Reads a TF.js graph model (model.json: `modelTopology.node`, a list of TensorFlow GraphDef nodes,
 * plus `weightsManifest`, whose weights are the Const nodes' values, concatenated in manifest
 * order across the binary shards).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TfNode {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

export interface TfWeight {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

interface ModelJson {
  modelTopology: { node: Array<{ name: string; op: string; input?: string[]; attr?: Record<string, unknown> }> };
  weightsManifest: Array<{
    paths: string[];
    weights: Array<{ name: string; dtype: string; shape: number[]; quantization?: unknown }>;
  }>;
}

export class TfGraphModel {
  readonly nodes: ReadonlyMap<string, TfNode>;
  readonly weights: ReadonlyMap<string, TfWeight>;

  constructor(nodes: TfNode[], weights: TfWeight[]) {
    this.nodes = new Map(nodes.map((n) => [n.name, n]));
    this.weights = new Map(weights.map((w) => [w.name, w]));
  }

  /** Count of nodes per op type, e.g. { MatMul: 6, ... }. */
  opHistogram(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.nodes.values()) counts[node.op] = (counts[node.op] ?? 0) + 1;
    return counts;
  }

  /** The node called `name`, which must run `op`. */
  node(name: string, op: string): TfNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`TF graph has no node '${name}'`);
    if (node.op !== op) throw new Error(`TF node '${name}' is ${node.op}, expected ${op}`);
    return node;
  }

  /** A float32 Const with the expected shape. */
  floatConst(name: string, shape: readonly number[]): Float32Array {
    const weight = this.weight(name, 'float32', shape);
    return weight.data as Float32Array;
  }

  /** An int32 Const with the expected shape. */
  intConst(name: string, shape: readonly number[]): Int32Array {
    return this.weight(name, 'int32', shape).data as Int32Array;
  }

  /** A scalar Const (float32 or int32) as a number. */
  scalar(name: string): number {
    this.node(name, 'Const');
    const weight = this.weights.get(name);
    if (!weight || weight.data.length !== 1) throw new Error(`TF Const '${name}' is not a scalar`);
    return weight.data[0]!;
  }

  private weight(name: string, dtype: TfWeight['dtype'], shape: readonly number[]): TfWeight {
    this.node(name, 'Const');
    const weight = this.weights.get(name);
    if (!weight) throw new Error(`TF Const '${name}' has no weight data`);
    if (weight.dtype !== dtype || weight.shape.join(',') !== shape.join(',')) {
      throw new Error(
        `TF Const '${name}' is ${weight.dtype}[${weight.shape.join(',')}], expected ${dtype}[${shape.join(',')}]`,
      );
    }
    return weight;
  }
}

/** Loads model.json and its weight shards from `modelDir`. */
export async function loadTfGraphModel(modelDir: string): Promise<TfGraphModel> {
  const json = JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8')) as ModelJson;
  const nodes = json.modelTopology.node.map((n) => ({ name: n.name, op: n.op, input: n.input ?? [], attr: n.attr ?? {} }));
  const weights: TfWeight[] = [];
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(join(modelDir, p))));
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.quantization) throw new Error(`quantized weight '${spec.name}' is not supported`);
      if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
        throw new Error(`weight '${spec.name}' has unsupported dtype ${spec.dtype}`);
      }
      const count = spec.shape.reduce((a, b) => a * b, 1);
      // Copy: the shard buffer's offsets are not 4-byte aligned in general.
      const slice = bytes.subarray(offset, offset + count * 4);
      const aligned = new Uint8Array(slice).buffer;
      const data = spec.dtype === 'float32' ? new Float32Array(aligned) : new Int32Array(aligned);
      weights.push({ name: spec.name, dtype: spec.dtype, shape: spec.shape, data });
      offset += count * 4;
    }
    if (offset !== bytes.length) throw new Error(`weight shards hold ${bytes.length} bytes, manifest reads ${offset}`);
  }
  return new TfGraphModel(nodes, weights);
}
