// Reverse-mode differentiation of an ONNX graph into ONNX graphs.
//
// 1. Activity: a value is active when it is a float and depends on a trainable parameter. Integer and boolean
//    values (shapes, ids, masks, comparisons, Range, Shape, Where's condition) are never active, so their
//    subgraphs are skipped without any list of "non-differentiable ops".
// 2. Need: an active value needs a gradient when a requested output depends on it.
// 3. Reverse pass over the nodes in reverse topological order: each node whose outputs got a gradient hands them
//    to its op's rule (ops/registry.ts), which emits the gradients of the inputs that need one. A value used by
//    several nodes gets one contribution from each, summed (Sum, in node order) when its producer is reached.
// 4. A [N, ...] parameter read only through Gather(param, ids) on axis 0 (an embedding table) gets no dense
//    gradient: the graph outputs the gradient of each Gather's result, and the caller adds its rows up per id.
//
// The emitted nodes are then assembled into sessions in one of two ways (see assemble*): the forward session
// also computes every seed-independent value the backward nodes read and returns it ('stored'), or one session
// runs the forward graph again followed by the backward nodes ('recomputed').
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { GradientBuilder, UnsupportedGradientError } from './builder.js';
import { DataType, intAttribute, type ModelGraph } from './model-graph.js';
import { gradientRule, supportedOps } from './ops/registry.js';

const { onnx } = onnxProto;

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

/** One Gather of a row-gathered parameter: the gradient of its result and the ids it read. */
export interface RowsSource {
  values: string;
  indices: string;
}

export interface GradientPlan {
  builder: GradientBuilder;
  /** Seed input of each requested output that depends on a parameter. */
  seeds: Map<string, string>;
  /** Value holding the gradient of each parameter with a dense gradient (absent: zero). */
  dense: Map<string, string>;
  /** Parameters read only through Gather on axis 0, with their Gathers (possibly none reached). */
  rows: Map<string, RowsSource[]>;
}

export function planGradients(g: ModelGraph, params: ReadonlySet<string>, outputs: readonly string[]): GradientPlan {
  const b = new GradientBuilder(g);
  const active = new Set<string>(params);
  for (const node of g.nodes) {
    if (!node.inputs.some((i) => active.has(i))) continue;
    for (const output of node.outputs) {
      const dtype = g.dtypes.get(output);
      if (dtype === undefined || FLOAT_TYPES.has(dtype)) active.add(output);
    }
  }
  const needed = new Set<string>(outputs.filter((o) => active.has(o)));
  for (let n = g.nodes.length - 1; n >= 0; n--) {
    const node = g.nodes[n]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    for (const input of node.inputs) if (active.has(input)) needed.add(input);
    for (const output of node.outputs) {
      if (needed.has(output) && g.dtypes.get(output) !== DataType.FLOAT) {
        throw new UnsupportedGradientError(node, `its output '${output}' (ONNX type ${g.dtypes.get(output) ?? 'unknown'}) lies on a differentiable path, and only float32 paths are supported`);
      }
    }
  }

  const rows = new Map<string, RowsSource[]>();
  for (const p of params) {
    const dims = g.shapes.get(p) ?? [];
    const users = g.consumers.get(p) ?? [];
    const onlyGathered = users.length > 0 && users.every((u) => u.opType === 'Gather' && u.domain === '' && u.inputs[0] === p && u.inputs[1] !== p && intAttribute(u, 'axis', 0) % dims.length === 0);
    if (dims.length >= 2 && onlyGathered && !outputs.includes(p)) rows.set(p, []);
  }

  const contributions = new Map<string, string[]>();
  const contribute = (value: string, grad: string) => {
    const list = contributions.get(value) ?? [];
    list.push(grad);
    contributions.set(value, list);
  };
  const seeds = new Map<string, string>();
  for (const output of outputs) {
    if (!needed.has(output)) continue;
    const seed = b.fresh(`seed_${output.replace(/[^A-Za-z0-9_]/g, '_')}`);
    b.markDependent(seed, DataType.FLOAT);
    seeds.set(output, seed);
    contribute(output, seed);
  }
  const totals = new Map<string, string | undefined>();
  const total = (value: string): string | undefined => {
    if (!totals.has(value)) {
      const list = contributions.get(value);
      totals.set(value, list?.length ? b.sum(list) : undefined);
    }
    return totals.get(value);
  };

  for (let n = g.nodes.length - 1; n >= 0; n--) {
    const node = g.nodes[n]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    const dOut = node.outputs.map((o) => (needed.has(o) ? total(o) : undefined));
    if (dOut.every((d) => d === undefined)) continue;
    const gathered = node.opType === 'Gather' ? rows.get(node.inputs[0]!) : undefined;
    if (gathered) {
      gathered.push({ values: dOut[0]!, indices: node.inputs[1]! });
      continue;
    }
    const needs = node.inputs.map((i) => i !== '' && needed.has(i));
    if (!needs.some(Boolean)) continue;
    const rule = gradientRule(node.domain, node.opType);
    if (!rule) {
      throw new UnsupportedGradientError(node, `the op type has no gradient rule and lies on a path from a trainable parameter to ${outputs.join(', ')} (rules exist for ${supportedOps().join(', ')})`);
    }
    const grads = rule({ node, b, dOut, needs });
    node.inputs.forEach((input, i) => {
      const grad = grads[i];
      if (needs[i] && grad) contribute(input, grad);
    });
  }

  const dense = new Map<string, string>();
  for (const p of params) {
    if (rows.has(p)) continue;
    const grad = total(p);
    if (grad) dense.set(p, grad);
  }
  return { builder: b, seeds, dense, rows };
}

// ---------------------------------------------------------------------------------------------------------------
// Assembly.

/** Where each gradient the caller reads comes from: a session output name, or an input the caller fed. */
export interface GradientOutputs {
  dense: Map<string, string>;
  rows: Map<string, Array<{ values: string; indices: { fed: string } | { output: string } }>>;
}

export interface AssembledModels {
  forward: Uint8Array;
  /** Outputs of the forward session: the requested outputs first, then values kept for backward. */
  forwardOutputs: string[];
  backward: Uint8Array;
  backwardInputs: string[];
  backwardOutputs: string[];
  gradients: GradientOutputs;
  /** Forward-session outputs the caller keeps for the backward session ('stored' mode). */
  stored: string[];
  /** Forward-session outputs that are row ids of Gathers ('stored' mode). */
  storedIndices: string[];
}

interface Parts {
  g: ModelGraph;
  plan: GradientPlan;
  params: ReadonlyArray<{ name: string; dims: number[] }>;
  outputs: readonly string[];
}

function valueInfo(name: string, dtype: number, dims?: number[]): proto.IValueInfoProto {
  return { name, type: { tensorType: { elemType: dtype, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } } };
}

function model(g: ModelGraph, graph: proto.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: g.model.irVersion,
      opsetImport: g.model.opsetImport,
      producerName: 'polyhead-autodiff',
      graph: onnx.GraphProto.create(graph),
    }),
  ).finish();
}

/** The graph's outputs as the caller named them (declared types kept), or plain float32 ones. */
function outputInfos(g: ModelGraph, names: readonly string[], types: (name: string) => number | undefined): proto.IValueInfoProto[] {
  const declared = new Map((g.graph.output ?? []).map((o) => [o.name ?? '', o]));
  return names.map((name) => declared.get(name) ?? valueInfo(name, types(name) ?? DataType.FLOAT));
}

/** The plain forward graph with the parameters as inputs. */
export function assembleForwardOnly({ g, params, outputs }: Parts): Uint8Array {
  const paramNames = new Set(params.map((p) => p.name));
  return model(g, {
    name: `${g.graph.name ?? 'model'}-forward`,
    node: g.graph.node,
    initializer: (g.graph.initializer ?? []).filter((t) => !paramNames.has(t.name ?? '')),
    input: [...g.inputs.values(), ...params.map((p) => valueInfo(p.name, DataType.FLOAT, p.dims))],
    output: outputInfos(g, outputs, (n) => g.dtypes.get(n)),
    valueInfo: g.graph.valueInfo,
  });
}

function gradientOutputs(plan: GradientPlan, identity: (value: string, name: string) => string, indexSource: (indices: string) => { fed: string } | { output: string }): GradientOutputs {
  const dense = new Map<string, string>();
  for (const [param, value] of plan.dense) dense.set(param, identity(value, `grad/dense/${param}`));
  const rows = new Map<string, Array<{ values: string; indices: { fed: string } | { output: string } }>>();
  for (const [param, sources] of plan.rows) {
    rows.set(
      param,
      sources.map((s, k) => ({ values: identity(s.values, `grad/rows/${param}/${k}`), indices: indexSource(s.indices) })),
    );
  }
  return { dense, rows };
}

function forwardNodes(g: ModelGraph, plan: GradientPlan): proto.INodeProto[] {
  return (g.graph.node ?? []).map((node, i) => plan.builder.extendedNodes.get(i) ?? node);
}

/**
 * The backward session's outputs, each an Identity of the value it returns (a graph output may not be a graph input
 * or another output's name), with its dtype; `identity(value, name)` adds one and returns its output name.
 */
function graphOutputsOf(b: Parts['plan']['builder']) {
  const identities: proto.INodeProto[] = [];
  const outputNames: string[] = [];
  const identity = (value: string, name: string) => {
    const out = b.fresh(name);
    const dtype = b.dtypeOf(value);
    if (dtype !== undefined) b.dtypes.set(out, dtype);
    identities.push(onnx.NodeProto.create({ name: out, opType: 'Identity', input: [value], output: [out] }));
    outputNames.push(out);
    return out;
  };
  return { identities, outputNames, identity };
}

/** 'recomputed': one session that runs the forward graph and then every gradient node. */
export function assembleRecomputed(parts: Parts): AssembledModels {
  const { g, plan, params } = parts;
  const b = plan.builder;
  const paramNames = new Set(params.map((p) => p.name));
  const { identities, outputNames, identity } = graphOutputsOf(b);
  const indexSource = (indices: string) => (g.inputs.has(indices) ? { fed: indices } : { output: identity(indices, 'grad/ids') });
  const gradients = gradientOutputs(plan, identity, indexSource);
  const seedInputs = [...plan.seeds.values()];
  const backward = model(g, {
    name: `${g.graph.name ?? 'model'}-gradients`,
    node: [...forwardNodes(g, plan), ...b.nodes, ...identities],
    initializer: [...(g.graph.initializer ?? []).filter((t) => !paramNames.has(t.name ?? '')), ...b.initializers],
    input: [...g.inputs.values(), ...params.map((p) => valueInfo(p.name, DataType.FLOAT, p.dims)), ...seedInputs.map((s) => valueInfo(s, DataType.FLOAT))],
    output: outputNames.map((n) => valueInfo(n, b.dtypeOf(n) ?? DataType.FLOAT)),
  });
  return {
    forward: assembleForwardOnly(parts),
    forwardOutputs: [...parts.outputs],
    backward,
    backwardInputs: [...g.inputs.keys(), ...params.map((p) => p.name), ...seedInputs],
    backwardOutputs: outputNames,
    gradients,
    stored: [],
    storedIndices: [],
  };
}

/**
 * 'stored': the forward session runs the forward graph plus every gradient node that does not depend on a seed
 * (masks, normalised activations, transposed operands, shapes) and returns the values the backward nodes read;
 * the backward session takes them as inputs.
 */
export function assembleStored(parts: Parts): AssembledModels {
  const { g, plan, params, outputs } = parts;
  const b = plan.builder;
  const paramNames = new Set(params.map((p) => p.name));
  const forwardSide = b.nodes.filter((n) => !(n.output ?? []).some((o) => b.dependent.has(o)));
  const backwardSide = b.nodes.filter((n) => (n.output ?? []).some((o) => b.dependent.has(o)));
  const { identities, outputNames, identity } = graphOutputsOf(b);
  const storedIndices: string[] = [];
  const indexSource = (indices: string) => {
    if (g.inputs.has(indices)) return { fed: indices };
    if (!storedIndices.includes(indices)) storedIndices.push(indices);
    return { output: indices };
  };
  const gradients = gradientOutputs(plan, identity, indexSource);
  const backwardNodes = [...backwardSide, ...identities];

  const initializers = new Map<string, proto.ITensorProto>();
  for (const t of g.graph.initializer ?? []) if (!paramNames.has(t.name ?? '')) initializers.set(t.name ?? '', t);
  for (const t of b.initializers) initializers.set(t.name ?? '', t);
  const seedInputs = new Set(plan.seeds.values());
  const definedInBackward = new Set<string>(backwardNodes.flatMap((n) => n.output ?? []));
  const backwardInitializers = new Set<string>();
  const fed: string[] = [];
  const stored: string[] = [];
  for (const node of backwardNodes) {
    for (const input of node.input ?? []) {
      if (input === '' || definedInBackward.has(input) || backwardInitializers.has(input) || fed.includes(input) || stored.includes(input)) continue;
      if (initializers.has(input)) backwardInitializers.add(input);
      else if (seedInputs.has(input) || paramNames.has(input) || g.inputs.has(input)) fed.push(input);
      else stored.push(input);
    }
  }
  const forwardOutputs = [...new Set([...outputs, ...stored, ...storedIndices])];
  const forwardInitializers = [...(g.graph.initializer ?? []).filter((t) => !paramNames.has(t.name ?? '')), ...b.initializers];
  const forward = model(g, {
    name: `${g.graph.name ?? 'model'}-forward-for-gradients`,
    node: [...forwardNodes(g, plan), ...forwardSide],
    initializer: forwardInitializers,
    input: [...g.inputs.values(), ...params.map((p) => valueInfo(p.name, DataType.FLOAT, p.dims))],
    output: outputInfos(g, forwardOutputs, (n) => b.dtypeOf(n)),
    valueInfo: g.graph.valueInfo,
  });
  const paramDims = new Map(params.map((p) => [p.name, p.dims]));
  const inputInfo = (name: string) =>
    g.inputs.get(name) ?? (paramDims.has(name) ? valueInfo(name, DataType.FLOAT, paramDims.get(name)) : valueInfo(name, b.dtypeOf(name) ?? DataType.FLOAT));
  const backwardInputs = [...fed, ...stored];
  const backward = model(g, {
    name: `${g.graph.name ?? 'model'}-backward`,
    node: backwardNodes,
    initializer: [...backwardInitializers].map((n) => initializers.get(n)!),
    input: backwardInputs.map(inputInfo),
    output: outputNames.map((n) => valueInfo(n, b.dtypeOf(n) ?? DataType.FLOAT)),
  });
  return { forward, forwardOutputs, backward, backwardInputs, backwardOutputs: outputNames, gradients, stored, storedIndices };
}
