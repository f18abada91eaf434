/**
 * A small ONNX graph builder on top of `onnx-proto` (protobufjs definitions of onnx.proto).
 *
 * Used to export the backbone and the task heads. Typical use:
 *
 * ```ts
 * const g = new OnnxGraphBuilder({ name: 'sentiment-head' });
 * g.input('pooled', 'float32', ['batch', 512]);
 * const w = g.initializer('weight', new Float32Array(512 * 2), [512, 2]);
 * const b = g.initializer('bias', new Float32Array(2), [2]);
 * const logits = g.node('Add', [g.node('MatMul', ['pooled', w]), b]);
 * g.node('Softmax', [logits], { outputs: ['probs'], attrs: { axis: -1 } });
 * g.output('probs', 'float32', ['batch', 2]);
 * const bytes = g.toBytes();
 * ```
 *
 * Names are the wiring: `node()` returns the names of its outputs (generated unless given), and
 * those names are passed as inputs to later nodes. The builder checks that every node input and
 * graph output refers to something defined before serializing.
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

// onnx-proto is CommonJS: its namespace arrives as a property of the default export.
const { onnx } = onnxProto;

/** Element types the builder can declare for inputs, outputs and initializers. */
export type ElementType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** A dimension: a fixed size, or a symbolic name such as 'batch' or 'tokens'. */
export type Dim = number | string;

/** Typed arrays accepted as initializer data. */
export type TensorData = Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

/** Forces a number to be stored as a FLOAT attribute even when it is integral (e.g. alpha: 1). */
export interface FloatAttribute {
  readonly kind: 'float';
  readonly value: number;
}

/**
 * Attribute values: integral numbers become INT, other numbers FLOAT, arrays of integral numbers
 * INTS (arrays with any fraction FLOATS), strings STRING; wrap with `floatAttr()` to force FLOAT.
 */
export type AttributeValue = number | number[] | string | FloatAttribute;

export interface NodeOptions {
  /** Output names; a number asks for that many generated names. Default: one generated name. */
  outputs?: string[] | number;
  attrs?: Record<string, AttributeValue>;
  /** Operator domain, e.g. 'com.microsoft' for onnxruntime contrib ops. Default: the ONNX domain. */
  domain?: string;
  /** Node name; default: generated from the op type. */
  name?: string;
}

export interface GraphBuilderOptions {
  /** Graph name, stored in the model. */
  name: string;
  /** Default ONNX opset version. Default 17 (LayerNormalization needs >= 17). */
  opset?: number;
  /** Extra operator sets, e.g. `{ 'com.microsoft': 1 }`. */
  extraOpsets?: Record<string, number>;
  /** Default 'polyhead'. */
  producerName?: string;
  docString?: string;
}

/** ONNX IR version written to the model: IR 8 matches opset 17 (onnx 1.12) and is the newest onnx-proto 8 knows. */
const IR_VERSION = 8;

const DATA_TYPE: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

export function floatAttr(value: number): FloatAttribute {
  return { kind: 'float', value };
}

export class OnnxGraphBuilder {
  private readonly options: Required<Omit<GraphBuilderOptions, 'docString'>> & { docString?: string };
  private readonly nodes: proto.INodeProto[] = [];
  private readonly initializers: proto.ITensorProto[] = [];
  private readonly inputs: proto.IValueInfoProto[] = [];
  private readonly outputs: proto.IValueInfoProto[] = [];
  private readonly defined = new Set<string>();
  private readonly usedNames = new Map<string, number>();

  constructor(options: GraphBuilderOptions) {
    this.options = {
      opset: 17,
      extraOpsets: {},
      producerName: 'polyhead',
      ...options,
    };
  }

  /** Declares a graph input. */
  input(name: string, type: ElementType, dims: Dim[]): string {
    this.define(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares a graph output; `name` must be produced by a node, an input or an initializer. */
  output(name: string, type: ElementType, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Adds a constant tensor (weights, shapes, scalars) and returns its name. */
  initializer(name: string, data: TensorData, dims: readonly number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
    }
    this.define(name);
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims: [...dims],
        dataType: DATA_TYPE[elementTypeOf(data)],
        // raw_data is little-endian; every platform Node runs on is little-endian.
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  /**
   * float16 initializer from float32 values (rounded to nearest, ties to even; beyond +-65504 becomes +-Infinity,
   * so check magnitudes before converting). `dims` defaults to a 1-D tensor; use [] for a scalar.
   */
  float16s(name: string, values: ArrayLike<number>, dims: readonly number[] = [values.length]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (values.length !== expected) throw new Error(`initializer ${name}: ${values.length} values for dims [${dims.join(', ')}]`);
    const bits = float16Bits(values);
    this.define(name);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [...dims], dataType: DATA_TYPE.float16, rawData: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) }),
    );
    return name;
  }

  /** float32 initializer from numbers. `dims` defaults to a 1-D tensor; use [] for a scalar. */
  floats(name: string, values: ArrayLike<number>, dims: readonly number[] = [values.length]): string {
    return this.initializer(name, Float32Array.from(values), dims);
  }

  /** int64 initializer from numbers (shapes, axes, indices). `dims` defaults to 1-D; [] for a scalar. */
  int64s(name: string, values: ArrayLike<number>, dims: readonly number[] = [values.length]): string {
    return this.initializer(name, BigInt64Array.from(Array.from(values, BigInt)), dims);
  }

  /** Adds a node and returns its output names (the first one is usually all you need: see `op`). */
  node(opType: string, inputs: string[], options: NodeOptions = {}): string[] {
    for (const input of inputs) {
      // '' is ONNX's way to skip an optional input.
      if (input !== '' && !this.defined.has(input)) {
        throw new Error(`${opType}: input '${input}' is not defined yet`);
      }
    }
    const base = options.name ?? opType;
    const nodeName = this.uniqueName(base);
    const outputs =
      typeof options.outputs === 'number' || options.outputs === undefined
        ? Array.from({ length: options.outputs ?? 1 }, (_, i) => this.uniqueName(`${nodeName}_out${i}`))
        : options.outputs;
    for (const output of outputs) this.define(output);
    this.nodes.push(
      onnx.NodeProto.create({
        name: nodeName,
        opType,
        domain: options.domain ?? '',
        input: inputs,
        output: outputs,
        attribute: Object.entries(options.attrs ?? {}).map(([key, value]) => attribute(key, value)),
      }),
    );
    return outputs;
  }

  /** `node()` for the common single-output case: returns the one output name. */
  op(opType: string, inputs: string[], options: Omit<NodeOptions, 'outputs'> & { output?: string } = {}): string {
    const { output, ...rest } = options;
    return this.node(opType, inputs, { ...rest, outputs: output === undefined ? 1 : [output] })[0]!;
  }

  /** Builds the ModelProto (validated: graph outputs must be defined). */
  toModel(): proto.ModelProto {
    for (const out of this.outputs) {
      if (!this.defined.has(out.name!)) throw new Error(`graph output '${out.name}' is never produced`);
    }
    const opsetImport = [
      { domain: '', version: this.options.opset },
      ...Object.entries(this.options.extraOpsets).map(([domain, version]) => ({ domain, version })),
    ];
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport,
      producerName: this.options.producerName,
      docString: this.options.docString ?? '',
      graph: onnx.GraphProto.create({
        name: this.options.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
  }

  /** Serializes the model to ONNX protobuf bytes. */
  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.toModel()).finish();
  }

  private define(name: string): void {
    if (this.defined.has(name)) throw new Error(`name '${name}' is defined twice`);
    this.defined.add(name);
  }

  private uniqueName(base: string): string {
    const count = this.usedNames.get(base) ?? 0;
    this.usedNames.set(base, count + 1);
    const candidate = count === 0 ? base : `${base}_${count}`;
    return this.defined.has(candidate) ? this.uniqueName(`${base}_`) : candidate;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bit patterns of float32 values: round to nearest, ties to even (as numpy's astype(float16)). */
export function float16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i]!;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0); // Infinity or NaN
      continue;
    }
    const e = exponent - 127 + 15;
    let half: number;
    if (e >= 0x1f) {
      half = 0x7c00; // too large: Infinity
    } else if (e <= 0) {
      if (e < -10) {
        half = 0; // below half the smallest subnormal
      } else {
        const m = mantissa | 0x800000;
        const shift = 14 - e;
        half = m >>> shift;
        const rest = m & ((1 << shift) - 1);
        const halfway = 1 << (shift - 1);
        if (rest > halfway || (rest === halfway && half & 1)) half++;
      }
    } else {
      half = (e << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry into the exponent is correct (up to Infinity)
    }
    out[i] = sign | half;
  }
  return out;
}

/** float32 values of binary16 bit patterns (exact). */
export function float16Values(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    out[i] =
      exponent === 0 ? sign * mantissa * 2 ** -24 : exponent === 0x1f ? (mantissa ? NaN : sign * Infinity) : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

function valueInfo(name: string, type: ElementType, dims: Dim[]): proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function elementTypeOf(data: TensorData): ElementType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

function attribute(name: string, value: AttributeValue): proto.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') {
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? { name, type: AttributeType.INT, i: value }
      : { name, type: AttributeType.FLOAT, f: value };
  }
  if (Array.isArray(value)) {
    return value.every(Number.isInteger)
      ? { name, type: AttributeType.INTS, ints: value }
      : { name, type: AttributeType.FLOATS, floats: value };
  }
  return { name, type: AttributeType.FLOAT, f: value.value };
}
