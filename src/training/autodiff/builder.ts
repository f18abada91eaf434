// Emits the nodes of a gradient graph. Every value it makes is marked seed-dependent when any of its inputs is
// (the seeds, the upstream gradients, are the roots): that mark is what later splits the work between the forward
// session (everything computable from the forward values alone: masks, normalised activations, transposed
// operands, shapes) and the backward session (see gradient-graph.ts).
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { DataType, inferDtype, type GraphNode, type ModelGraph, type Shape } from './model-graph.js';

const { onnx } = onnxProto;

/** Attribute values: an integer is INT, an integer array INTS, a string STRING; floats are wrapped. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

export class UnsupportedGradientError extends Error {
  constructor(node: GraphNode, reason: string) {
    super(`no gradient for node '${node.name}' (${node.domain ? `${node.domain}.` : ''}${node.opType}): ${reason}`);
    this.name = 'UnsupportedGradientError';
  }
}

export class GradientBuilder {
  /** Emitted nodes, in an order that is topological given the forward graph before them. */
  readonly nodes: proto.INodeProto[] = [];
  readonly initializers: proto.ITensorProto[] = [];
  /** Values that depend on a seed (computed in the backward session). */
  readonly dependent = new Set<string>();
  /** Element types of the values emitted here. */
  readonly dtypes = new Map<string, number>();
  /** Names of the constants emitted here. */
  readonly constants = new Set<string>();
  /** Forward nodes that gained outputs (LayerNormalization's mean and inverse deviation), by node index. */
  readonly extendedNodes = new Map<number, proto.INodeProto>();
  private readonly shapeCache = new Map<string, string>();
  private readonly constantCache = new Map<string, string>();
  private counter = 0;

  constructor(readonly graph: ModelGraph) {}

  get opset(): number {
    return this.graph.opset;
  }

  /** Marks a value as seed-dependent (a seed input). */
  markDependent(name: string, dtype: number): void {
    this.dependent.add(name);
    this.dtypes.set(name, dtype);
  }

  /** A fresh value name that collides with nothing in the model. */
  fresh(hint: string): string {
    let name: string;
    do name = `grad/${hint}_${this.counter++}`;
    while (this.graph.names.has(name));
    this.graph.names.add(name);
    return name;
  }

  dtypeOf(name: string): number | undefined {
    return this.dtypes.get(name) ?? this.graph.dtypes.get(name);
  }

  /** The static shape of a forward value, when known. */
  shapeOf(name: string): Shape | undefined {
    return this.graph.shapes.get(name);
  }

  rankOf(name: string): number | undefined {
    return this.shapeOf(name)?.length;
  }

  /** Adds a node; returns its output names. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, domain = ''): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType));
    const dependent = inputs.some((i) => this.dependent.has(i));
    const inputTypes = inputs.map((i) => this.dtypeOf(i));
    names.forEach((name, i) => {
      if (dependent) this.dependent.add(name);
      const dtype = opType === 'Cast' ? (attrs.to as number) : opType === 'ConstantOfShape' ? DataType.FLOAT : inferDtype(opType, inputTypes, undefined, i);
      if (dtype !== undefined) this.dtypes.set(name, dtype);
    });
    this.nodes.push(
      onnx.NodeProto.create({
        name: names[0]!.replace(/_out$/, ''),
        opType,
        domain,
        input: inputs,
        output: names,
        attribute: Object.entries(attrs).map(([key, value]) => makeAttribute(key, value)),
      }),
    );
    return names;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    return this.constant(`f:${value}`, () => tensor(this.fresh('const'), DataType.FLOAT, [], new Uint8Array(Float32Array.of(value).buffer)));
  }

  /** A 1-D int64 constant. */
  ints(values: number[]): string {
    return this.constant(`i:${values.join(',')}`, () => tensor(this.fresh('const'), DataType.INT64, [values.length], new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer)));
  }

  /** A scalar int64 constant. */
  intScalar(value: number): string {
    return this.constant(`is:${value}`, () => tensor(this.fresh('const'), DataType.INT64, [], new Uint8Array(BigInt64Array.of(BigInt(value)).buffer)));
  }

  /** Shape(x), emitted once per value. */
  shape(x: string): string {
    let name = this.shapeCache.get(x);
    if (!name) this.shapeCache.set(x, (name = this.op('Shape', [x])));
    return name;
  }

  /** x reshaped to the shape of the forward value `like` (a constant shape when it is known statically). */
  reshapeLike(x: string, like: string): string {
    const shape = this.shapeOf(like);
    const target = shape?.every((d) => typeof d === 'number') ? this.ints(shape as number[]) : this.shape(like);
    return this.op('Reshape', [x, target]);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    return this.opset >= 18
      ? this.op('ReduceMean', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 })
      : this.op('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  unsqueeze(x: string, axes: number[] | string): string {
    return this.op('Unsqueeze', [x, typeof axes === 'string' ? axes : this.ints(axes)]);
  }

  /** Sum of gradient contributions of one value (all of its shape), in a fixed order. */
  sum(values: string[]): string {
    if (values.length === 1) return values[0]!;
    return this.op('Sum', values);
  }

  /**
   * Reduces the gradient of a broadcasting op's result to one operand's shape: sums over the axes the operand was
   * broadcast along, then reshapes to the operand. Statically when the shapes decide it; otherwise the axes are
   * computed at run time (leading axes the operand lacks, and its axes of size 1).
   */
  unbroadcast(grad: string, operand: string, result: string): string {
    const xs = this.shapeOf(operand);
    const ys = this.shapeOf(result);
    if (xs && ys && ys.length >= xs.length) {
      const lead = ys.length - xs.length;
      const axes: number[] = [];
      for (let i = 0; i < lead; i++) axes.push(i);
      let decided = true;
      for (let i = 0; i < xs.length; i++) {
        const dx = xs[i]!;
        const dy = ys[i + lead]!;
        if (dx === 1) {
          if (dy !== 1) axes.push(i + lead);
        } else if (!(typeof dx === 'number' || (dx !== null && dx === dy))) {
          decided = false;
        }
      }
      if (decided) {
        if (axes.length === 0) return lead === 0 ? grad : this.reshapeLike(grad, operand);
        const reduced = this.reduceSum(grad, axes, true);
        return lead === 0 ? reduced : this.reshapeLike(reduced, operand);
      }
    }
    const sx = this.shape(operand);
    const lead = this.op('Sub', [this.op('Size', [this.shape(result)]), this.op('Size', [sx])]);
    const leading = this.op('Range', [this.intScalar(0), lead, this.intScalar(1)]);
    const ones = this.op('Add', [this.op('Squeeze', [this.op('NonZero', [this.op('Equal', [sx, this.ints([1])])]), this.ints([0])]), lead]);
    const axes = this.op('Concat', [leading, ones], { axis: 0 });
    const reduced = this.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.op('Reshape', [reduced, sx]);
  }

  /** Zeros of the shape of a forward value. */
  zerosLike(x: string): string {
    return this.op('ConstantOfShape', [this.shape(x)]);
  }

  /**
   * Extra outputs of a forward node (e.g. LayerNormalization's Mean and InvStdDev): existing names are kept,
   * missing ones get fresh names and the node is re-emitted with them.
   */
  extendOutputs(node: GraphNode, count: number): string[] {
    const current = this.extendedNodes.get(node.index)?.output ?? node.outputs;
    const outputs = [...current];
    for (let i = 0; i < count; i++) {
      if (!outputs[i]) outputs[i] = this.fresh(`${node.opType}_extra`);
    }
    outputs.forEach((name, i) => {
      if (i > 0 && !this.dtypeOf(name)) this.dtypes.set(name, DataType.FLOAT);
    });
    this.extendedNodes.set(node.index, onnx.NodeProto.create({ ...node.proto, output: outputs }));
    return outputs;
  }

  unsupported(node: GraphNode, reason: string): UnsupportedGradientError {
    return new UnsupportedGradientError(node, reason);
  }

  private constant(key: string, make: () => proto.ITensorProto): string {
    let name = this.constantCache.get(key);
    if (!name) {
      const t = make();
      name = t.name!;
      this.initializers.push(t);
      this.constants.add(name);
      this.dtypes.set(name, t.dataType!);
      this.constantCache.set(key, name);
    }
    return name;
  }
}

function tensor(name: string, dataType: number, dims: number[], rawData: Uint8Array): proto.ITensorProto {
  return onnx.TensorProto.create({ name, dataType, dims, rawData });
}

function makeAttribute(name: string, value: AttrValue): proto.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: AttributeType.INT, i: value };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.FLOATS, floats: value.floats };
}
