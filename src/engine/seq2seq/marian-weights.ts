// The weights of a Marian (opus-mt) decoder, read out of one of the decoder files Optimum exports: the merged
// decoder (decoder_model_merged.onnx: the weights are initializers of the outer graph, the nodes live in the two
// branches of its If), decoder_model.onnx, or decoder_with_past_model.onnx (which lacks the cross-attention key and
// value projections: they only ever run on the encoder's output, so reading it alone is refused by name).
//
// How the weights are found (torch.onnx's naming, which Optimum keeps):
// - biases, LayerNorms, the position table and final_logits_bias keep their PyTorch names
//   (model.decoder.layers.{i}.self_attn.q_proj.bias, ....final_layer_norm.weight, model.decoder.embed_positions.weight);
// - a Linear's weight is an anonymous initializer (onnx::MatMul_<n>) holding the transposed matrix [in, out]: it is
//   the second input of the MatMul whose output goes into the Add with the named bias (a Gemm carrying the bias, or a
//   Transpose of an [out, in] matrix, are read as well);
// - the output projection is the MatMul feeding Add(final_logits_bias);
// - the token embedding is model.decoder.embed_tokens.weight or model.shared.weight, else the [vocab, d_model] table
//   a Gather reads with indices derived from input_ids.
// Nodes are searched in every (sub)graph, each name resolved in its own graph first (the two branches of a merged
// decoder reuse the same value names); initializers and Constant nodes of any graph count.
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { float16Values } from '../../onnx/graph-builder.js';

const { onnx } = onnxProto;

/** What the decoder's shapes and maths come from: config.json's values (see `marianConfig`). */
export interface MarianConfig {
  /** d_model */
  dModel: number;
  /** decoder_layers */
  decoderLayers: number;
  /** decoder_attention_heads */
  decoderHeads: number;
  /** activation_function: swish (= silu), gelu, relu. */
  activation: string;
  /** scale_embedding: token embeddings are multiplied by sqrt(d_model). */
  scaleEmbedding: boolean;
  /** decoder_vocab_size, else vocab_size. */
  vocabSize: number;
  /** max_position_embeddings: rows of the position tables. */
  maxPositions: number;
  /** pad_token_id: what padded encoder batches hold (masked, so only its validity matters). */
  padTokenId: number;
  eosTokenId: number;
  /** decoder_start_token_id, else pad_token_id (Marian starts from pad). */
  decoderStartTokenId: number;
}

/** The config.json fields of a Marian model, checked. `source` names the file in errors. */
export function marianConfig(json: Record<string, unknown>, source = 'config.json'): MarianConfig {
  const int = (name: string, fallback?: string): number => {
    const value = json[name] ?? (fallback === undefined ? undefined : json[fallback]);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new Error(`${source}: ${name}${fallback ? ` (or ${fallback})` : ''} must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const padTokenId = int('pad_token_id');
  const config: MarianConfig = {
    dModel: int('d_model'),
    decoderLayers: int('decoder_layers'),
    decoderHeads: int('decoder_attention_heads'),
    activation: typeof json.activation_function === 'string' ? json.activation_function : 'swish',
    scaleEmbedding: json.scale_embedding === true,
    vocabSize: int('decoder_vocab_size', 'vocab_size'),
    maxPositions: int('max_position_embeddings'),
    padTokenId,
    eosTokenId: int('eos_token_id'),
    decoderStartTokenId: json.decoder_start_token_id === undefined || json.decoder_start_token_id === null ? padTokenId : int('decoder_start_token_id'),
  };
  if (config.dModel < 1 || config.decoderLayers < 1 || config.decoderHeads < 1 || config.dModel % config.decoderHeads !== 0) {
    throw new Error(`${source}: d_model ${config.dModel} must be a positive multiple of decoder_attention_heads ${config.decoderHeads}, with decoder_layers >= 1`);
  }
  if (json.normalize_before === true || json.add_final_layer_norm === true || json.normalize_embedding === true) {
    throw new Error(`${source}: only post-norm Marian decoders are supported (normalize_before, add_final_layer_norm and normalize_embedding must be false)`);
  }
  activationKind(config.activation, source);
  return config;
}

export type ActivationKind = 'swish' | 'gelu' | 'relu';

export function activationKind(name: string, source = 'config.json'): ActivationKind {
  if (name === 'swish' || name === 'silu') return 'swish';
  if (name === 'gelu' || name === 'relu') return name;
  throw new Error(`${source}: activation_function ${JSON.stringify(name)} is not supported (swish, silu, gelu, relu)`);
}

/** y = x @ weight + bias with weight row-major [inFeatures, outFeatures] (PyTorch's weight transposed, as ONNX MatMul takes it). */
export interface Linear {
  weight: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

export interface LayerNorm {
  weight: Float32Array;
  bias: Float32Array;
  epsilon: number;
}

export interface Attention {
  q: Linear;
  k: Linear;
  v: Linear;
  out: Linear;
}

export interface MarianDecoderLayer {
  selfAttn: Attention;
  selfAttnLayerNorm: LayerNorm;
  crossAttn: Attention;
  crossAttnLayerNorm: LayerNorm;
  fc1: Linear;
  fc2: Linear;
  finalLayerNorm: LayerNorm;
}

export interface MarianDecoderWeights {
  /** The file the weights came from. */
  file: string;
  dModel: number;
  heads: number;
  headDim: number;
  ffnDim: number;
  vocabSize: number;
  /** Rows of embedPositions. */
  maxPositions: number;
  activation: ActivationKind;
  layers: MarianDecoderLayer[];
  /** [vocabSize, dModel], already multiplied by sqrt(dModel) when scale_embedding. */
  embedTokens: Float32Array;
  /** [maxPositions, dModel] */
  embedPositions: Float32Array;
  /** [dModel, vocabSize] */
  outputProjection: Float32Array;
  /** [vocabSize] */
  finalLogitsBias: Float32Array;
}

/** Reads the decoder weights of `file` (see the module comment). */
export async function readMarianDecoderWeights(file: string, config: MarianConfig): Promise<MarianDecoderWeights> {
  return marianDecoderWeights(await readFile(file), config, file);
}

/** The decoder weights of a serialized decoder model; `file` names it in errors. */
export function marianDecoderWeights(bytes: Uint8Array, config: MarianConfig, file = 'the decoder model'): MarianDecoderWeights {
  let model: proto.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new Error(`${file} is not an ONNX model: ${(error as Error).message}`);
  }
  if (!model.graph) throw new Error(`${file} holds no graph`);
  const index = new GraphIndex(model.graph, file);
  const { dModel: d, decoderHeads: heads, decoderLayers } = config;
  const activation = activationKind(config.activation, file);

  const layers: MarianDecoderLayer[] = [];
  let ffnDim = 0;
  for (let i = 0; i < decoderLayers; i++) {
    const prefix = `model.decoder.layers.${i}`;
    const attention = (module: string): Attention => ({
      q: index.linear(`${prefix}.${module}.q_proj`, d, d),
      k: index.linear(`${prefix}.${module}.k_proj`, d, d),
      v: index.linear(`${prefix}.${module}.v_proj`, d, d),
      out: index.linear(`${prefix}.${module}.out_proj`, d, d),
    });
    const fc1 = index.linear(`${prefix}.fc1`, d);
    const fc2 = index.linear(`${prefix}.fc2`, fc1.outFeatures, d);
    ffnDim = fc1.outFeatures;
    layers.push({
      selfAttn: attention('self_attn'),
      selfAttnLayerNorm: index.layerNorm(`${prefix}.self_attn_layer_norm`, d),
      crossAttn: attention('encoder_attn'),
      crossAttnLayerNorm: index.layerNorm(`${prefix}.encoder_attn_layer_norm`, d),
      fc1,
      fc2,
      finalLayerNorm: index.layerNorm(`${prefix}.final_layer_norm`, d),
    });
  }

  const tokens = index.tokenEmbedding(config.vocabSize, d);
  const embedTokens = tokens.data;
  if (config.scaleEmbedding) {
    const scale = Math.fround(Math.sqrt(d));
    for (let j = 0; j < embedTokens.length; j++) embedTokens[j] = Math.fround(embedTokens[j]! * scale);
  }
  const positions = index.positionTable(d, config.maxPositions);
  const head = index.outputProjection(d, config.vocabSize);
  return {
    file,
    dModel: d,
    heads,
    headDim: d / heads,
    ffnDim,
    vocabSize: config.vocabSize,
    maxPositions: positions.rows,
    activation,
    layers,
    embedTokens,
    embedPositions: positions.data,
    outputProjection: head.weight,
    finalLogitsBias: head.bias,
  };
}

interface Scope {
  graph: proto.IGraphProto;
  parent?: Scope;
  /** Node producing each value of this graph. */
  producers: Map<string, proto.INodeProto>;
}

interface FoundTensor {
  data: Float32Array;
  dims: number[];
}

const PASS_THROUGH = new Set(['Identity', 'Cast']);

/** Every graph of a model (subgraphs of If/Loop/Scan included), with its producers and every constant tensor. */
class GraphIndex {
  private readonly scopes: Scope[] = [];
  /** Initializers and Constant-node values of every graph (outer graphs first). */
  private readonly constants = new Map<string, proto.ITensorProto>();

  constructor(
    root: proto.IGraphProto,
    private readonly file: string,
  ) {
    this.visit(root, undefined);
  }

  private visit(graph: proto.IGraphProto, parent: Scope | undefined): void {
    const scope: Scope = { graph, parent, producers: new Map() };
    this.scopes.push(scope);
    for (const init of graph.initializer ?? []) if (init.name && !this.constants.has(init.name)) this.constants.set(init.name, init);
    for (const node of graph.node ?? []) {
      for (const output of node.output ?? []) scope.producers.set(output, node);
      if (node.opType === 'Constant' && node.output?.[0]) {
        const value = node.attribute?.find((a) => a.name === 'value')?.t;
        if (value && !this.constants.has(node.output[0])) this.constants.set(node.output[0], value);
      }
    }
    for (const node of graph.node ?? []) {
      for (const attribute of node.attribute ?? []) {
        if (attribute.g) this.visit(attribute.g, scope);
        for (const g of attribute.graphs ?? []) this.visit(g, scope);
      }
    }
  }

  private missing(what: string, detail = ''): Error {
    return new Error(`${this.file}: cannot find the decoder weight ${what}${detail ? ` (${detail})` : ''}; is this a Marian decoder exported by Optimum?`);
  }

  /** The producer of `name` seen from `scope` (its own graph, then the enclosing ones). */
  private producer(scope: Scope, name: string): proto.INodeProto | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const node = s.producers.get(name);
      if (node) return node;
    }
    return undefined;
  }

  /** `name` followed back through Identity/Cast nodes to the value that feeds them. */
  private source(scope: Scope, name: string): string {
    for (let hops = 0; hops < 16 && !this.constants.has(name); hops++) {
      const node = this.producer(scope, name);
      if (!node || !PASS_THROUGH.has(node.opType ?? '')) break;
      name = node.input![0]!;
    }
    return name;
  }

  /** A constant's float values, or undefined. */
  private tensor(name: string): FoundTensor | undefined {
    const t = this.constants.get(name);
    return t ? this.decode(t) : undefined;
  }

  /** A named constant that must be there, with the given element count. */
  private named(name: string, dims: number[]): Float32Array {
    const t = this.tensor(name);
    if (!t) throw this.missing(name);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== expected) throw new Error(`${this.file}: ${name} has shape [${t.dims.join(', ')}], expected [${dims.join(', ')}]`);
    return t.data;
  }

  /**
   * A matrix read as [rows, cols] from a node input: a constant of that shape, or a Transpose of a [cols, rows]
   * constant.
   */
  private matrix(scope: Scope, name: string, transposed = false): FoundTensor | undefined {
    const source = this.source(scope, name);
    const direct = this.tensor(source);
    if (direct) {
      if (direct.dims.length !== 2) return undefined;
      return transposed ? transpose(direct) : direct;
    }
    const node = this.producer(scope, source);
    if (node?.opType === 'Transpose') {
      const perm = node.attribute?.find((a) => a.name === 'perm')?.ints?.map(Number);
      if (perm && !(perm[0] === 1 && perm[1] === 0)) return undefined;
      return this.matrix(scope, node.input![0]!, !transposed);
    }
    return undefined;
  }

  /** Per value (after Identity/Cast), the nodes of any graph that read it: built on first use. */
  private readers?: Map<string, Array<{ node: proto.INodeProto; scope: Scope; slot: number }>>;

  /** Nodes of the given types, in any graph, that take `name` as an input (after Identity/Cast). */
  private consumers(name: string, opTypes: readonly string[]): Array<{ node: proto.INodeProto; scope: Scope; slot: number }> {
    if (!this.readers) {
      this.readers = new Map();
      for (const scope of this.scopes) {
        for (const node of scope.graph.node ?? []) {
          (node.input ?? []).forEach((input, slot) => {
            if (!input) return;
            const source = this.source(scope, input);
            let list = this.readers!.get(source);
            if (!list) this.readers!.set(source, (list = []));
            list.push({ node, scope, slot });
          });
        }
      }
    }
    return (this.readers.get(name) ?? []).filter(({ node }) => opTypes.includes(node.opType ?? ''));
  }

  /** The [in, out] weight of the MatMul (or Gemm) whose output is added to `biasName`, checked against `outDim`. */
  private weightBeside(biasName: string, outDim: number, inDim: number | undefined, what: string): Float32Array {
    let found: FoundTensor | undefined;
    for (const { node, scope, slot } of this.consumers(biasName, ['Add', 'Gemm'])) {
      if (node.opType === 'Gemm') {
        if (slot !== 2) continue;
        const attr = (key: string) => Number(node.attribute?.find((a) => a.name === key)?.i ?? 0);
        const alpha = node.attribute?.find((a) => a.name === 'alpha')?.f ?? 1;
        const beta = node.attribute?.find((a) => a.name === 'beta')?.f ?? 1;
        if (attr('transA') !== 0 || alpha !== 1 || beta !== 1) continue;
        found = this.matrix(scope, node.input![1]!, attr('transB') === 1);
      } else {
        const other = node.input![1 - slot];
        if (other === undefined) continue;
        const matmul = this.producer(scope, this.source(scope, other));
        if (matmul?.opType !== 'MatMul') continue;
        found = this.matrix(scope, matmul.input![1]!);
      }
      if (found && found.dims[1] === outDim && (inDim === undefined || found.dims[0] === inDim)) break;
      found = undefined;
    }
    if (!found) throw this.missing(`${what} (the MatMul feeding the Add with ${biasName})`, `an [${inDim ?? 'in'}, ${outDim}] matrix`);
    return found.data;
  }

  linear(module: string, inDim: number | undefined, outDim?: number): Linear {
    const biasName = `${module}.bias`;
    const bias = this.tensor(biasName);
    if (!bias) throw this.missing(biasName);
    if (bias.dims.length !== 1 || (outDim !== undefined && bias.data.length !== outDim)) {
      throw new Error(`${this.file}: ${biasName} has shape [${bias.dims.join(', ')}], expected [${outDim ?? 'out'}]`);
    }
    const out = bias.data.length;
    const weight = this.weightBeside(biasName, out, inDim, `${module}.weight`);
    return { weight, bias: bias.data, inFeatures: weight.length / out, outFeatures: out };
  }

  layerNorm(module: string, d: number): LayerNorm {
    const weight = this.named(`${module}.weight`, [d]);
    const bias = this.named(`${module}.bias`, [d]);
    let epsilon = 1e-5;
    for (const { node } of this.consumers(`${module}.weight`, ['LayerNormalization'])) {
      const attr = node.attribute?.find((a) => a.name === 'epsilon');
      if (attr?.f !== undefined && attr.f !== null) epsilon = attr.f;
      break;
    }
    return { weight, bias, epsilon };
  }

  tokenEmbedding(vocabSize: number, d: number): FoundTensor {
    for (const name of ['model.decoder.embed_tokens.weight', 'model.shared.weight']) {
      const t = this.tensor(name);
      if (t) {
        if (t.dims.length !== 2 || t.dims[0] !== vocabSize || t.dims[1] !== d) throw new Error(`${this.file}: ${name} has shape [${t.dims.join(', ')}], expected [${vocabSize}, ${d}]`);
        return t;
      }
    }
    // Unnamed: the [vocab, d] table a Gather reads with indices that come from input_ids.
    for (const scope of this.scopes) {
      for (const node of scope.graph.node ?? []) {
        if (node.opType !== 'Gather' || !this.derivesFrom(scope, node.input?.[1] ?? '', 'input_ids')) continue;
        const t = this.tensor(this.source(scope, node.input![0]!));
        if (t && t.dims.length === 2 && t.dims[0] === vocabSize && t.dims[1] === d) return t;
      }
    }
    throw this.missing('model.decoder.embed_tokens.weight', `or model.shared.weight, or a [${vocabSize}, ${d}] table gathered with input_ids`);
  }

  private derivesFrom(scope: Scope, name: string, input: string): boolean {
    for (let hops = 0; hops < 8; hops++) {
      if (name === input) return true;
      const node = this.producer(scope, name);
      if (!node || !['Identity', 'Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten'].includes(node.opType ?? '')) return false;
      name = node.input![0]!;
    }
    return false;
  }

  positionTable(d: number, maxPositions: number): { data: Float32Array; rows: number } {
    const name = 'model.decoder.embed_positions.weight';
    const t = this.tensor(name);
    if (!t) throw this.missing(name);
    if (t.dims.length !== 2 || t.dims[1] !== d || t.dims[0]! < 1) throw new Error(`${this.file}: ${name} has shape [${t.dims.join(', ')}], expected [${maxPositions}, ${d}]`);
    // A table longer than max_position_embeddings is used up to it; a shorter one bounds the positions.
    const rows = Math.min(t.dims[0]!, maxPositions);
    return { data: rows === t.dims[0] ? t.data : t.data.slice(0, rows * d), rows };
  }

  outputProjection(d: number, vocabSize: number): { weight: Float32Array; bias: Float32Array } {
    const name = 'final_logits_bias';
    const bias = this.tensor(name);
    if (!bias) throw this.missing(name);
    if (bias.data.length !== vocabSize) throw new Error(`${this.file}: ${name} has shape [${bias.dims.join(', ')}], expected [1, ${vocabSize}]`);
    const weight = this.weightBeside(name, vocabSize, d, 'lm_head.weight');
    return { weight, bias: bias.data };
  }

  /** A tensor's values as float32 (a copy, aligned and owned: the protobuf's bytes are not). */
  private decode(t: proto.ITensorProto): FoundTensor {
    const name = t.name ?? '?';
    const dims = (t.dims ?? []).map(Number);
    const count = dims.reduce((a, b) => a * b, 1);
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw new Error(`${this.file}: ${name} is stored as external data, which is not supported: export the decoder in one file`);
    }
    const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
    let data: Float32Array;
    if (t.dataType === onnx.TensorProto.DataType.FLOAT) {
      if (raw) {
        data = new Float32Array(count);
        new Uint8Array(data.buffer).set(raw.subarray(0, count * 4));
        if (raw.length !== count * 4) throw new Error(`${this.file}: ${name} holds ${raw.length} bytes for ${count} floats`);
      } else {
        data = Float32Array.from(t.floatData ?? []);
      }
    } else if (t.dataType === onnx.TensorProto.DataType.FLOAT16) {
      if (raw) {
        const bits = new Uint16Array(count);
        new Uint8Array(bits.buffer).set(raw.subarray(0, count * 2));
        data = float16Values(bits);
      } else {
        // int32_data holds the bit patterns.
        data = float16Values(t.int32Data ?? []);
      }
    } else {
      throw new Error(`${this.file}: ${name} has ONNX data type ${t.dataType}; only float32 and float16 weights are supported (quantized decoders are not)`);
    }
    if (data.length !== count) throw new Error(`${this.file}: ${name} holds ${data.length} values for shape [${dims.join(', ')}]`);
    return { data, dims };
  }
}

function transpose(t: FoundTensor): FoundTensor {
  const [rows, cols] = t.dims as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return { data: out, dims: [cols, rows] };
}
