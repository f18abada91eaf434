// Gradients of an ONNX model's outputs with respect to its trainable initializers, computed by onnxruntime from a
// gradient graph derived from the model itself (see docs/gradients.md).
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { DataType, ModelGraph, toNumber } from './model-graph.js';
import { assembleRecomputed, assembleStored, planGradients, type AssembledModels } from './gradient-graph.js';

const { onnx } = onnxProto;

export type Gradient =
  | { kind: 'dense'; data: Float32Array }
  | { kind: 'rows'; rows: Int32Array; values: Float32Array };

export interface Param {
  name: string;
  dims: number[];
  /** The live value; the optimizer edits it in place and the next run reads it. */
  data: Float32Array;
}

/**
 * How backward() gets the forward pass's intermediate values.
 * - 'stored': forward() also computes every seed-independent value the backward graph reads and keeps it;
 *   backward() runs only the backward nodes. The gradients are those at the parameter values of the last forward().
 * - 'recomputed': forward() runs the plain forward graph; backward() runs the forward graph again followed by the
 *   backward nodes, at the current parameter values.
 */
export type IntermediatesMode = 'stored' | 'recomputed';

export interface DifferentiableGraphOptions {
  /** Which float initializers are trainable (others stay constants). */
  trainable: (initializerName: string, dims: readonly number[]) => boolean;
  /** Graph outputs the caller will give seeds (upstream gradients) for. */
  outputs: string[];
  /** onnxruntime intra-op threads for both sessions. Default 1. */
  threads?: number;
  /** 'cpu' (default) or 'cuda'. */
  device?: 'cpu' | 'cuda';
  /** Default 'stored' (faster on CPU: see docs/gradients.md). */
  intermediates?: IntermediatesMode;
}

interface LastForward {
  feeds: Record<string, ort.Tensor>;
  /** Values the backward session reads ('stored' mode), and computed Gather ids. */
  kept: Record<string, ort.Tensor>;
  outputDims: Map<string, number[]>;
}

export class DifferentiableGraph {
  private last?: LastForward;

  private constructor(
    private readonly graph: ModelGraph,
    readonly params: readonly Param[],
    private readonly outputs: readonly string[],
    private readonly models: AssembledModels,
    private readonly forwardSession: ort.InferenceSession,
    /** Absent when no parameter reaches an output (every gradient is zero). */
    private readonly backwardSession: ort.InferenceSession | undefined,
    private readonly seeds: ReadonlyMap<string, string>,
    readonly intermediates: IntermediatesMode,
  ) {}

  static async create(model: Uint8Array, options: DifferentiableGraphOptions): Promise<DifferentiableGraph> {
    const graph = new ModelGraph(model);
    if (graph.opset < 13) throw new Error(`the model's opset is ${graph.opset}; differentiation needs opset 13 or later`);
    if (options.outputs.length === 0) throw new Error('DifferentiableGraph: no outputs given');
    const declaredOutputs = new Set((graph.graph.output ?? []).map((o) => o.name ?? ''));
    for (const output of options.outputs) {
      if (!declaredOutputs.has(output) && !graph.producers.has(output)) throw new Error(`DifferentiableGraph: the model has no value '${output}'`);
      if (graph.dtypes.get(output) !== DataType.FLOAT) throw new Error(`DifferentiableGraph: output '${output}' is not float32`);
    }
    const params: Param[] = [];
    for (const init of graph.graph.initializer ?? []) {
      if (init.dataType !== DataType.FLOAT) continue;
      const dims = (init.dims ?? []).map((d) => toNumber(d as number));
      if (!options.trainable(init.name ?? '', dims)) continue;
      params.push({ name: init.name ?? '', dims, data: floatData(init) });
    }
    const plan = planGradients(graph, new Set(params.map((p) => p.name)), options.outputs);
    const mode = options.intermediates ?? 'stored';
    const parts = { g: graph, plan, params, outputs: options.outputs };
    const models = mode === 'stored' ? assembleStored(parts) : assembleRecomputed(parts);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [options.device ?? 'cpu'],
      intraOpNumThreads: options.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Unused generated constants would otherwise be reported as warnings on every load.
      logSeverityLevel: 3,
    };
    const [forwardSession, backwardSession] = await Promise.all([
      ort.InferenceSession.create(models.forward, sessionOptions),
      models.backwardOutputs.length > 0 ? ort.InferenceSession.create(models.backward, sessionOptions) : undefined,
    ]);
    return new DifferentiableGraph(graph, params, options.outputs, models, forwardSession, backwardSession, plan.seeds, mode);
  }

  /** Runs the forward graph with the current param values; returns the requested outputs. Remembers the feeds for backward. */
  async forward(feeds: Record<string, ort.Tensor>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    for (const name of this.graph.inputs.keys()) {
      if (!feeds[name]) throw new Error(`DifferentiableGraph.forward: missing input '${name}'`);
    }
    const inputs: Record<string, ort.Tensor> = { ...this.paramTensors() };
    for (const name of this.forwardSession.inputNames) if (feeds[name]) inputs[name] = feeds[name];
    const results = await this.forwardSession.run(inputs, this.models.forwardOutputs);
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    const outputDims = new Map<string, number[]>();
    for (const name of this.outputs) {
      const t = results[name]!;
      out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
      outputDims.set(name, [...t.dims]);
    }
    const kept: Record<string, ort.Tensor> = {};
    for (const name of [...this.models.stored, ...this.models.storedIndices]) kept[name] = results[name]!;
    this.last = { feeds: { ...feeds }, kept, outputDims };
    return out;
  }

  /** Gradients of sum_o <seed_o, output_o> w.r.t. every trainable param, at the last forward's feeds. A missing seed counts as zero. */
  async backward(seeds: Record<string, Float32Array>): Promise<Map<string, Gradient>> {
    const last = this.last;
    if (!last) throw new Error('DifferentiableGraph.backward: call forward() first');
    for (const name of Object.keys(seeds)) {
      if (!this.outputs.includes(name)) throw new Error(`DifferentiableGraph.backward: '${name}' is not one of the outputs (${this.outputs.join(', ')})`);
    }
    const seedTensors: Record<string, ort.Tensor> = {};
    for (const [output, input] of this.seeds) {
      const dims = last.outputDims.get(output)!;
      const size = dims.reduce((a, d) => a * d, 1);
      const seed = seeds[output] ?? new Float32Array(size);
      if (seed.length !== size) throw new Error(`DifferentiableGraph.backward: the seed of '${output}' has ${seed.length} values, the output ${size}`);
      seedTensors[input] = new ort.Tensor('float32', seed, dims);
    }
    const results = await this.runBackward(last, seedTensors);
    const gradients = new Map<string, Gradient>();
    for (const param of this.params) {
      const sources = this.models.gradients.rows.get(param.name);
      if (sources) {
        const parts = sources.map((s) => ({
          values: results[s.values]!.data as Float32Array,
          indices: ('fed' in s.indices ? last.feeds[s.indices.fed]! : (last.kept[s.indices.output] ?? results[s.indices.output])!).data as BigInt64Array | Int32Array,
        }));
        gradients.set(param.name, accumulateRows(param, parts));
        continue;
      }
      const output = this.models.gradients.dense.get(param.name);
      const data = output ? (results[output]!.data as Float32Array) : new Float32Array(param.data.length);
      if (data.length !== param.data.length) throw new Error(`gradient of '${param.name}' has ${data.length} values, the parameter ${param.data.length}`);
      gradients.set(param.name, { kind: 'dense', data });
    }
    return gradients;
  }

  /** The original model with the current param values written into its initializers (same graph, same names). */
  toModelBytes(): Uint8Array {
    const values = new Map(this.params.map((p) => [p.name, p.data]));
    const initializer = (this.graph.graph.initializer ?? []).map((t) => {
      const data = values.get(t.name ?? '');
      if (!data) return t;
      return onnx.TensorProto.create({ ...t, floatData: [], rawData: new Uint8Array(data.slice().buffer) });
    });
    const graph = onnx.GraphProto.create({ ...this.graph.graph, initializer });
    return onnx.ModelProto.encode(onnx.ModelProto.create({ ...this.graph.model, graph })).finish();
  }

  async release(): Promise<void> {
    this.last = undefined;
    await Promise.all([this.forwardSession.release(), this.backwardSession?.release()]);
  }

  private paramTensors(): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    for (const p of this.params) out[p.name] = new ort.Tensor('float32', p.data, p.dims);
    return out;
  }

  private async runBackward(last: LastForward, seedTensors: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    const session = this.backwardSession;
    if (!session) return {};
    const params = this.paramTensors();
    const inputs: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const tensor = seedTensors[name] ?? params[name] ?? last.kept[name] ?? last.feeds[name];
      if (!tensor) throw new Error(`DifferentiableGraph: nothing to feed the backward input '${name}'`);
      inputs[name] = tensor;
    }
    return session.run(inputs, this.models.backwardOutputs);
  }
}

function floatData(t: proto.ITensorProto): Float32Array {
  const count = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d as number), 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`initializer ${t.name} is stored as external data, which is not supported`);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const data = raw ? new Float32Array(count) : Float32Array.from(t.floatData ?? []);
  if (raw) {
    if (raw.length !== count * 4) throw new Error(`initializer ${t.name} holds ${raw.length} bytes for ${count} floats`);
    new Uint8Array(data.buffer).set(raw);
  }
  if (data.length !== count) throw new Error(`initializer ${t.name} holds ${data.length} values for ${count}`);
  return data;
}

/** Sums the gradients of a table's gathered rows per id: unique ids ascending, their rows in that order. */
function accumulateRows(param: Param, parts: Array<{ values: Float32Array; indices: BigInt64Array | Int32Array }>): Gradient {
  const count = param.dims[0]!;
  const width = count === 0 ? 0 : param.data.length / count;
  const slot = new Int32Array(count).fill(-1);
  const ids: number[] = [];
  const normalized = parts.map(({ values, indices }) => {
    if (values.length !== indices.length * width) throw new Error(`rows gradient of '${param.name}': ${values.length} values for ${indices.length} ids of width ${width}`);
    const list = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      let id = Number(indices[i]!);
      if (id < 0) id += count;
      if (id < 0 || id >= count) throw new Error(`rows gradient of '${param.name}': id ${indices[i]} outside [0, ${count})`);
      list[i] = id;
      if (slot[id] === -1) {
        slot[id] = 0;
        ids.push(id);
      }
    }
    return list;
  });
  ids.sort((a, b) => a - b);
  ids.forEach((id, k) => (slot[id] = k));
  const sums = new Float64Array(ids.length * width);
  parts.forEach(({ values }, p) => {
    const list = normalized[p]!;
    for (let i = 0; i < list.length; i++) {
      const base = slot[list[i]!]! * width;
      const from = i * width;
      for (let j = 0; j < width; j++) sums[base + j]! += values[from + j]!;
    }
  });
  return { kind: 'rows', rows: Int32Array.from(ids), values: Float32Array.from(sums) };
}
