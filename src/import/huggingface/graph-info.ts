// What an ONNX graph declares, read from the file without running it: its inputs and outputs with their
// shapes, and the size of the word embedding table (the initializer that input_ids index), which must hold
// every id the tokenizer can produce.
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

const { onnx } = onnxProto;

/** A dimension: its size, or its symbolic name (batch_size, sequence_length) when it has none. */
export type DeclaredDim = number | string;

export interface GraphInfo {
  inputs: Array<{ name: string; dims: DeclaredDim[] }>;
  outputs: Array<{ name: string; dims: DeclaredDim[] }>;
  /** Rows of the table that `input_ids` index (the vocabulary the graph was trained with); undefined when not found. */
  embeddingRows?: number;
}

export async function readGraphInfo(file: string): Promise<GraphInfo> {
  const model = onnx.ModelProto.decode(await readFile(file));
  const graph = model.graph;
  if (!graph) throw new Error('the file holds no graph');
  const declared = (values: proto.IValueInfoProto[] | null | undefined) =>
    (values ?? []).map((value) => ({
      name: value.name ?? '',
      dims: (value.type?.tensorType?.shape?.dim ?? []).map((d): DeclaredDim => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : '?')),
    }));
  const initializerNames = new Set((graph.initializer ?? []).map((init) => init.name ?? ''));
  const inputs = declared(graph.input).filter((input) => !initializerNames.has(input.name));
  return { inputs, outputs: declared(graph.output), embeddingRows: embeddingRows(graph) };
}

/** Rows of the initializer a Gather reads with `input_ids` as its indices (through Identity nodes, if any). */
function embeddingRows(graph: proto.IGraphProto): number | undefined {
  const producers = new Map<string, proto.INodeProto>();
  for (const node of graph.node ?? []) for (const output of node.output ?? []) producers.set(output, node);
  const initializers = new Map((graph.initializer ?? []).map((init) => [init.name ?? '', init]));
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Gather' || node.input?.[1] !== 'input_ids') continue;
    let name = node.input[0]!;
    for (let hops = 0; hops < 8 && !initializers.has(name); hops++) {
      const producer = producers.get(name);
      if (producer?.opType !== 'Identity') break;
      name = producer.input![0]!;
    }
    const table = initializers.get(name);
    if (table?.dims?.length === 2) return Number(table.dims[0]);
  }
  return undefined;
}
