// An ONNX model read for differentiation: its nodes in order, initializers, real inputs, and for every value
// its element type and, where it can be told without running the graph, its shape (numbers, symbolic names,
// null for a dimension not known). Shapes only ever make the gradient graph smaller (a broadcast that provably
// did not happen needs no ReduceSum); where one is not known, the rules fall back to computing it at run time.
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX element types (TensorProto.DataType) used here. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16 } as const;

/** A dimension: a size, a symbolic name (equal names are equal sizes), or null when not known. */
export type Dim = number | string | null;
export type Shape = Dim[];

export interface GraphNode {
  /** Position in the graph's node list (topological order). */
  index: number;
  name: string;
  opType: string;
  domain: string;
  /** Input names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  proto: proto.INodeProto;
}

/** int64 fields arrive as Long objects from protobufjs (the `long` package is installed), numbers otherwise. */
export function toNumber(value: number | { toNumber(): number } | bigint | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  return value.toNumber();
}

export function attribute(node: GraphNode, name: string): proto.IAttributeProto | undefined {
  return node.proto.attribute?.find((a) => a.name === name);
}

export function intAttribute(node: GraphNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? toNumber(a.i as number) : fallback;
}

export function intsAttribute(node: GraphNode, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a ? (a.ints ?? []).map((v) => toNumber(v as number)) : undefined;
}

export function floatAttribute(node: GraphNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? (a.f ?? fallback) : fallback;
}

export function stringAttribute(node: GraphNode, name: string, fallback: string): string {
  const a = attribute(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

/** Element type of a node's outputs from its inputs' types (enough for the ops backbones hold). */
export function inferDtype(opType: string, inputs: Array<number | undefined>, node: GraphNode | undefined, outputIndex: number): number | undefined {
  switch (opType) {
    case 'Cast':
      return node ? intAttribute(node, 'to', DataType.FLOAT) : undefined;
    case 'CastLike':
      return inputs[1];
    case 'Shape':
    case 'Size':
    case 'NonZero':
    case 'ArgMax':
    case 'ArgMin':
      return DataType.INT64;
    case 'Equal':
    case 'Less':
    case 'LessOrEqual':
    case 'Greater':
    case 'GreaterOrEqual':
    case 'Not':
    case 'And':
    case 'Or':
    case 'Xor':
    case 'IsNaN':
    case 'IsInf':
      return DataType.BOOL;
    case 'Where':
      return inputs[1];
    case 'Constant': {
      const tensor = node ? attribute(node, 'value')?.t : undefined;
      if (tensor) return tensor.dataType ?? undefined;
      if (node && (attribute(node, 'value_float') || attribute(node, 'value_floats'))) return DataType.FLOAT;
      return DataType.INT64;
    }
    case 'ConstantOfShape': {
      const tensor = node ? attribute(node, 'value')?.t : undefined;
      return tensor?.dataType ?? DataType.FLOAT;
    }
    case 'TopK':
      return outputIndex === 1 ? DataType.INT64 : inputs[0];
    case 'Dropout':
      return outputIndex === 1 ? DataType.BOOL : inputs[0];
    default:
      return inputs.find((t) => t !== undefined);
  }
}

export class ModelGraph {
  readonly model: proto.ModelProto;
  readonly graph: proto.IGraphProto;
  readonly nodes: GraphNode[];
  readonly initializers = new Map<string, proto.ITensorProto>();
  /** Graph inputs that are not initializers: what a caller feeds. */
  readonly inputs = new Map<string, proto.IValueInfoProto>();
  readonly producers = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  readonly dtypes = new Map<string, number>();
  readonly shapes = new Map<string, Shape>();
  /** Opset of the default (ai.onnx) domain. */
  readonly opset: number;
  /** Every value name in the graph (to keep generated names apart). */
  readonly names = new Set<string>();
  private readonly constantCache = new Map<string, number[] | null>();

  constructor(bytes: Uint8Array) {
    this.model = onnx.ModelProto.decode(bytes);
    const graph = this.model.graph;
    if (!graph) throw new Error('the model holds no graph');
    this.graph = graph;
    const defaultOpset = (this.model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
    this.opset = toNumber(defaultOpset?.version as number);
    for (const init of graph.initializer ?? []) {
      const name = init.name ?? '';
      this.initializers.set(name, init);
      this.dtypes.set(name, init.dataType ?? 0);
      this.shapes.set(name, (init.dims ?? []).map((d) => toNumber(d as number)));
      this.names.add(name);
    }
    for (const input of graph.input ?? []) {
      const name = input.name ?? '';
      this.names.add(name);
      if (this.initializers.has(name)) continue;
      this.inputs.set(name, input);
      this.dtypes.set(name, input.type?.tensorType?.elemType ?? 0);
      const shape = declaredShape(input);
      if (shape) this.shapes.set(name, shape);
    }
    this.nodes = (graph.node ?? []).map((p, index) => ({
      index,
      name: p.name || `${p.opType}_${index}`,
      opType: p.opType ?? '',
      domain: p.domain ?? '',
      inputs: [...(p.input ?? [])],
      outputs: [...(p.output ?? [])],
      proto: p,
    }));
    this.checkOrder();
    const declared = new Map<string, Shape>();
    for (const info of [...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
      const shape = declaredShape(info);
      if (shape && info.name) declared.set(info.name, shape);
    }
    for (const node of this.nodes) {
      for (const input of node.inputs) {
        if (input === '') continue;
        const list = this.consumers.get(input) ?? [];
        list.push(node);
        this.consumers.set(input, list);
      }
      const inputTypes = node.inputs.map((i) => this.dtypes.get(i));
      node.outputs.forEach((output, i) => {
        this.producers.set(output, node);
        this.names.add(output);
        const dtype = inferDtype(node.opType, inputTypes, node, i);
        if (dtype !== undefined) this.dtypes.set(output, dtype);
      });
      const inferred = inferShapes(this, node);
      node.outputs.forEach((output, i) => {
        const shape = inferred[i] ?? declared.get(output);
        if (shape) this.shapes.set(output, shape);
      });
    }
  }

  /** The values of a small integer or float constant (an initializer or a Constant node's output), else undefined. */
  constantValues(name: string): number[] | undefined {
    if (name === '') return undefined;
    if (!this.constantCache.has(name)) this.constantCache.set(name, this.readConstant(name) ?? null);
    return this.constantCache.get(name) ?? undefined;
  }

  private readConstant(name: string): number[] | undefined {
    const init = this.initializers.get(name);
    if (init) return tensorNumbers(init);
    const producer = this.producers.get(name);
    if (producer?.opType !== 'Constant') return undefined;
    const value = attribute(producer, 'value')?.t;
    if (value) return tensorNumbers(value);
    const a = producer.proto.attribute?.[0];
    if (!a) return undefined;
    if (a.name === 'value_int') return [toNumber(a.i as number)];
    if (a.name === 'value_ints') return (a.ints ?? []).map((v) => toNumber(v as number));
    if (a.name === 'value_float') return [a.f ?? 0];
    if (a.name === 'value_floats') return [...(a.floats ?? [])];
    return undefined;
  }

  /** ONNX promises topological order; a graph that breaks it would make the reverse pass wrong, so it is checked. */
  private checkOrder(): void {
    const defined = new Set<string>([...this.initializers.keys(), ...this.inputs.keys(), '']);
    for (const node of this.nodes) {
      for (const input of node.inputs) {
        if (!defined.has(input)) throw new Error(`node '${node.name}' (${node.opType}) reads '${input}' before it is defined: the graph is not in topological order`);
      }
      for (const output of node.outputs) defined.add(output);
    }
  }
}

function declaredShape(info: proto.IValueInfoProto): Shape | undefined {
  const shape = info.type?.tensorType?.shape;
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d): Dim => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue as number) : null));
}

/** Numbers of a tensor of at most 4,096 elements (larger constants are weights, never axes or shapes). */
function tensorNumbers(t: proto.ITensorProto): number[] | undefined {
  const count = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d as number), 1);
  if (count > 4096) return undefined;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const out: number[] = [];
  switch (t.dataType) {
    case DataType.INT64:
      for (let i = 0; i < count; i++) out.push(view ? Number(view.getBigInt64(i * 8, true)) : toNumber(t.int64Data?.[i] as number));
      return out;
    case DataType.INT32:
      for (let i = 0; i < count; i++) out.push(view ? view.getInt32(i * 4, true) : (t.int32Data?.[i] ?? 0));
      return out;
    case DataType.FLOAT:
      for (let i = 0; i < count; i++) out.push(view ? view.getFloat32(i * 4, true) : (t.floatData?.[i] ?? 0));
      return out;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shape inference, conservative: a dimension that cannot be told is null, an op not listed gives no shape.

function broadcastShapes(shapes: Array<Shape | undefined>): Shape | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let result: Dim = 1;
    for (const s of shapes as Shape[]) {
      const d = s[i - (rank - s.length)];
      if (d === undefined || d === 1) continue;
      if (result === 1) result = d;
      else if (result === d) continue;
      else if (typeof result === 'number') continue; // a size > 1 fixes the dimension; the other is 1 or equal
      else if (typeof d === 'number') result = d;
      else result = null;
    }
    out.push(result);
  }
  return out;
}

const SAME_AS_FIRST = new Set([
  'Identity', 'Relu', 'LeakyRelu', 'Tanh', 'Sigmoid', 'Erf', 'Gelu', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal',
  'Sin', 'Cos', 'Cast', 'CastLike', 'Softmax', 'LogSoftmax', 'Not', 'Floor', 'Ceil', 'Round', 'Sign', 'IsNaN', 'IsInf',
  'CumSum', 'Clip', 'Dropout', 'Softplus',
]);
const BROADCASTING = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual',
  'And', 'Or', 'Xor', 'Where', 'PRelu',
]);

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function inferShapes(g: ModelGraph, node: GraphNode): Array<Shape | undefined> {
  const s = (i: number) => (node.inputs[i] ? g.shapes.get(node.inputs[i]!) : undefined);
  const c = (i: number) => (node.inputs[i] ? g.constantValues(node.inputs[i]!) : undefined);
  const x = s(0);
  if (SAME_AS_FIRST.has(node.opType)) return [x];
  if (BROADCASTING.has(node.opType)) return [broadcastShapes(node.inputs.filter((i) => i !== '').map((i) => g.shapes.get(i)))];
  switch (node.opType) {
    case 'LayerNormalization': {
      if (!x) return [];
      const axis = normalizeAxis(intAttribute(node, 'axis', -1), x.length);
      const stats = x.map((d, i) => (i < axis ? d : 1));
      return [x, stats, stats];
    }
    case 'MatMul': {
      const a = x;
      const b = s(1);
      if (!a || !b || a.length < 2 || b.length < 2) return [];
      const batch = broadcastShapes([a.slice(0, -2), b.slice(0, -2)]);
      return batch ? [[...batch, a[a.length - 2]!, b[b.length - 1]!]] : [];
    }
    case 'Gemm': {
      const a = x;
      const b = s(1);
      if (!a || !b || a.length !== 2 || b.length !== 2) return [];
      return [[intAttribute(node, 'transA', 0) ? a[1]! : a[0]!, intAttribute(node, 'transB', 0) ? b[0]! : b[1]!]];
    }
    case 'Transpose': {
      if (!x) return [];
      const perm = intsAttribute(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return [perm.map((p) => x[p] ?? null)];
    }
    case 'Reshape': {
      const target = c(1);
      if (!target) {
        const shapeOfShape = s(1);
        return shapeOfShape && typeof shapeOfShape[0] === 'number' ? [Array.from({ length: shapeOfShape[0] }, () => null)] : [];
      }
      const allowZero = intAttribute(node, 'allowzero', 0) === 1;
      return [target.map((d, i) => (d === 0 && !allowZero ? (x?.[i] ?? null) : d === -1 ? null : d))];
    }
    case 'Flatten': {
      if (!x) return [];
      const axis = normalizeAxis(intAttribute(node, 'axis', 1), x.length);
      const product = (dims: Shape): Dim => (dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((p, d) => p * d, 1) : null);
      return [[product(x.slice(0, axis)), product(x.slice(axis))]];
    }
    case 'Gather': {
      const indices = s(1);
      if (!x || !indices) return [];
      const axis = normalizeAxis(intAttribute(node, 'axis', 0), x.length);
      return [[...x.slice(0, axis), ...indices, ...x.slice(axis + 1)]];
    }
    case 'Unsqueeze': {
      const axes = g.opset >= 13 ? c(1) : intsAttribute(node, 'axes');
      if (!x || !axes) return [];
      const rank = x.length + axes.length;
      const set = new Set(axes.map((a) => normalizeAxis(a, rank)));
      const out: Shape = [];
      let k = 0;
      for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : (x[k++] ?? null));
      return [out];
    }
    case 'Squeeze': {
      const axes = g.opset >= 13 ? c(1) : intsAttribute(node, 'axes');
      if (!x) return [];
      if (!axes) return x.every((d) => typeof d === 'number') ? [x.filter((d) => d !== 1)] : [];
      const set = new Set(axes.map((a) => normalizeAxis(a, x.length)));
      return [x.filter((_, i) => !set.has(i))];
    }
    case 'Split': {
      if (!x) return [];
      const axis = normalizeAxis(intAttribute(node, 'axis', 0), x.length);
      const sizes = (g.opset >= 13 ? c(1) : intsAttribute(node, 'split')) ?? undefined;
      return node.outputs.map((_, i) => x.map((d, k) => (k === axis ? (sizes ? sizes[i]! : typeof d === 'number' ? d / node.outputs.length : null) : d)));
    }
    case 'Concat': {
      const shapes = node.inputs.map((i) => g.shapes.get(i));
      if (shapes.some((sh) => !sh) || !x) return [];
      const axis = normalizeAxis(intAttribute(node, 'axis', 0), x.length);
      const sizes = shapes.map((sh) => sh![axis]);
      const total = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : null;
      return [x.map((d, k) => (k === axis ? total : d))];
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceSumSquare':
    case 'ReduceL2': {
      if (!x) return [];
      const axesAsInput = node.opType === 'ReduceSum' ? g.opset >= 13 : g.opset >= 18;
      const axes = axesAsInput ? (node.inputs[1] ? c(1) : []) : (intsAttribute(node, 'axes') ?? []);
      if (!axes) return [];
      const keep = intAttribute(node, 'keepdims', 1) === 1;
      if (axes.length === 0 && intAttribute(node, 'noop_with_empty_axes', 0) === 1) return [x];
      const set = new Set((axes.length ? axes : x.map((_, i) => i)).map((a) => normalizeAxis(a, x.length)));
      return [keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i))];
    }
    case 'Shape':
      return x ? [[x.length]] : [];
    case 'Size':
      return [[]];
    case 'Constant': {
      const t = attribute(node, 'value')?.t;
      return t ? [(t.dims ?? []).map((d) => toNumber(d as number))] : [];
    }
    case 'ConstantOfShape': {
      const dims = c(0);
      if (dims) return [dims];
      return x && typeof x[0] === 'number' ? [Array.from({ length: x[0] }, () => null)] : [];
    }
    case 'Expand': {
      const target = c(1);
      if (target) return [broadcastShapes([x, target.map((d) => d)])];
      return [];
    }
    case 'Slice':
      return x ? [x.map(() => null)] : [];
    case 'Range':
      return [[null]];
    default:
      return [];
  }
}
