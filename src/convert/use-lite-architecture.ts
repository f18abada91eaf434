/**
 * Reads the Universal Sentence Encoder Lite TF graph ("KonaTransformer", TF.js format) into a
 * plain description: weights and hyperparameters, found by following the graph's own wiring and
 * checked against the op types the ONNX translation knows.
 *
 * How the TF ops map to the ONNX graph (use-lite-onnx.ts):
 *
 * | TF subgraph (ops)                                                  | ONNX                                     |
 * |--------------------------------------------------------------------|------------------------------------------|
 * | Placeholder indices/values (sparse ids) + ClipToMaxLength          | inputs input_ids, attention_mask; the     |
 * |   (StridedSlice, Less, Where, Reshape, GatherV2, Max, Add, Maximum) |   clip becomes `position < 128` in the mask|
 * | SparseToDense, Greater, LogicalNot, Cast (padding mask)            | Cast, And, Not                            |
 * | GatherV2 on module/Embeddings_en (embedding_lookup)                | Gather                                    |
 * | AddTimingSignal (Cast, ExpandDims, Mul, Sin, Cos, ConcatV2)        | Range, Cast, Unsqueeze, Mul, Sin, Cos, Concat |
 * | StoreMask Where/GatherNd/ScatterNd (compute on real tokens only)   | dense compute; padded rows never reach     |
 * |                                                                    |   real rows (attention bias), so dropped  |
 * | layer_norm (Mean, Sub, Square, Mean, Add eps, Rsqrt, Mul, Mul, Add) | LayerNormalization (opset 17)            |
 * | Conv2D 1x1 + BiasAdd + Squeeze/ExpandDims (qkv, output transform)  | MatMul + Add                              |
 * | Tensordot (Shape, GatherV2, Prod, Pack, Reshape, MatMul) + BiasAdd | MatMul + Add                              |
 * | SplitV, Reshape, Transpose (split_heads / combine_heads)           | Split, Reshape, Transpose                 |
 * | Mul by 1/sqrt(head_dim)                                            | folded into the query weights and bias    |
 * | BatchMatMul, Add (attention bias), Softmax, BatchMatMul            | MatMul, Add, Softmax, MatMul              |
 * | Relu; residual Add; AdjustResidualInput dense (256 -> 512)         | Relu; Add; MatMul + Add                   |
 * | SequenceMask (Range, Less), Mul, Sum, RealDiv (mean pooling)       | Mul, ReduceSum, Max, Div                  |
 * | tanh_layer_0 MatMul + BiasAdd + Tanh                               | MatMul + Add + Tanh                       |
 * | l2_normalize (Square, Sum, Maximum, Rsqrt, Mul)                    | Mul, ReduceSum, Max, Sqrt, Div            |
 * | Shape, StridedSlice, Slice, Pack, ConcatV2, Prod (shape plumbing)  | not needed: ONNX shapes are dynamic       |
 */
import type { TfGraphModel } from './tfjs-graph-model.js';

/** Every TF op type this converter understands; any other op in model.json is an error. */
export const SUPPORTED_TF_OPS: ReadonlySet<string> = new Set([
  'Const', 'Placeholder', 'StridedSlice', 'Less', 'Where', 'Reshape', 'GatherV2', 'Max', 'Add', 'Shape',
  'Maximum', 'SparseToDense', 'Greater', 'LogicalNot', 'Cast', 'ConcatV2', 'Sum', 'Mul', 'ScatterNd',
  'ExpandDims', 'GatherNd', 'Sin', 'Cos', 'Mean', 'Sub', 'MatMul', 'Square', 'BiasAdd', 'Rsqrt', 'Conv2D',
  'Squeeze', 'SplitV', 'Pack', 'Transpose', 'BatchMatMul', 'Slice', 'Softmax', 'Prod', 'Relu', 'Range',
  'RealDiv', 'Tanh',
]);

export interface Dense {
  /** [in, out], row-major. */
  weight: Float32Array;
  bias: Float32Array;
  inSize: number;
  outSize: number;
}

export interface LayerNormParams {
  scale: Float32Array;
  bias: Float32Array;
}

export interface TransformerLayer {
  inputSize: number;
  attentionNorm: LayerNormParams;
  /** Fused q|k|v projection, [in, 3 * attentionSize]. */
  qkv: Dense;
  heads: number;
  headSize: number;
  /** Multiplies the queries before the dot product (1 / sqrt(headSize)). */
  queryScale: number;
  attentionOutput: Dense;
  /** Projects the residual when the layer widens the hidden size (layer 0: 256 -> 512). */
  residualProjection: Dense | null;
  ffnNorm: LayerNormParams;
  ffnIn: Dense;
  ffnOut: Dense;
}

export interface UseLiteArchitecture {
  vocabSize: number;
  embeddingSize: number;
  /** [vocabSize, embeddingSize]. */
  embeddings: Float32Array;
  /**
   * How many times the token embedding enters the first layer's input. TF's AddTimingSignal returns
   * embedding + timing, and the stack then adds that to the embedding again: 2 * embedding + timing.
   */
  embeddingMultiplier: number;
  /** Sinusoid frequencies of the timing signal (sin half, then cos half). */
  inverseTimescales: Float32Array;
  /** The model only reads the first `maxTokens` positions (ClipToMaxLength). */
  maxTokens: number;
  layerNormEpsilon: number;
  /** Added to attention logits of padded keys. */
  paddingBias: number;
  layers: TransformerLayer[];
  hiddenSize: number;
  /** Dense + tanh applied to the mean-pooled states. */
  poolingDense: Dense;
  /** Lower bound of the squared norm in the final L2 normalisation. */
  l2Epsilon: number;
}

const ROOT = 'module_apply_default/Encoder_en/KonaTransformer/';
const STACK = `${ROOT}Encode/TransformerStack/`;
const HIDDEN = 'module_apply_default/Encoder_en/hidden_layers/';

/** Extracts the architecture, or throws naming the first node that does not look as expected. */
export function readUseLiteArchitecture(model: TfGraphModel): UseLiteArchitecture {
  const unsupported = Object.keys(model.opHistogram()).filter((op) => !SUPPORTED_TF_OPS.has(op));
  if (unsupported.length) throw new Error(`unsupported TF ops in the graph: ${unsupported.join(', ')}`);
  model.node('indices', 'Placeholder');
  model.node('values', 'Placeholder');

  const lookup = model.node(`${ROOT}Encode/embedding_lookup`, 'GatherV2');
  const embeddingsName = lookup.input[0]!;
  const embShape = model.weights.get(embeddingsName)?.shape ?? [];
  const [vocabSize, embeddingSize] = [embShape[0]!, embShape[1]!];
  const embeddings = model.floatConst(embeddingsName, [vocabSize, embeddingSize]);

  const timingMul = model.node(`${STACK}Layer_0/AddTimingSignal/TimingSignal/mul_2`, 'Mul');
  const inverseTimescales = model.floatConst(timingMul.input[1]!, [1, embeddingSize / 2]);
  model.node(`${STACK}Layer_0/AddTimingSignal/TimingSignal/Sin`, 'Sin');
  model.node(`${STACK}Layer_0/AddTimingSignal/TimingSignal/Cos`, 'Cos');

  const embeddingMultiplier = countEmbeddingPaths(model);

  const clip = model.node(`${ROOT}ClipToMaxLength/Less`, 'Less');
  const maxTokens = model.scalar(clip.input[1]!);

  const layers: TransformerLayer[] = [];
  let layerNormEpsilon = NaN;
  let paddingBias = NaN;
  for (let i = 0; model.nodes.has(`${STACK}Layer_${i}/TransformerLayer/layer_postprocess/add`); i++) {
    const layer = `${STACK}Layer_${i}/TransformerLayer/`;
    const inputSize = i === 0 ? embeddingSize : layers[i - 1]!.ffnOut.outSize;
    const attentionNorm = readLayerNorm(model, `${layer}layer_prepostprocess/layer_norm/`, inputSize);
    const ffnNormPrefix = `${layer}FFN/layer_prepostprocess/layer_norm/`;
    const epsilon = model.scalar(model.node(`${layer}layer_prepostprocess/layer_norm/add`, 'Add').input[1]!);
    if (Number.isNaN(layerNormEpsilon)) layerNormEpsilon = epsilon;
    if (epsilon !== layerNormEpsilon) throw new Error('layer norms use different epsilons');

    const mha = `${layer}MultiheadAttention/`;
    const qkv = readConv1x1(model, `${mha}qkv_transform_single/`, inputSize);
    const splitShape = model.node(`${mha}split_heads/split_last_dimension/Reshape/shape`, 'Pack');
    const heads = model.scalar(splitShape.input[2]!);
    const headSize = model.scalar(splitShape.input[3]!);
    if (heads * headSize * 3 !== qkv.outSize) throw new Error(`layer ${i}: ${heads}x${headSize} heads do not fit qkv`);
    const queryScale = model.scalar(model.node(`${mha}mul`, 'Mul').input[1]!);
    const biasAdd = model.node(`${mha}DotProductAttention/BaseDotProductAttention/add`, 'Add');
    const biasMul = model.node(biasAdd.input[1]!.replace(/ExpandDims_1$/, 'mul'), 'Mul');
    paddingBias = model.scalar(biasMul.input[1]!);
    model.node(`${mha}DotProductAttention/BaseDotProductAttention/Softmax`, 'Softmax');
    const attentionOutput = readConv1x1(model, `${mha}output_transform_single/`, heads * headSize);

    const residualName = `${layer}AdjustResidualInput/dense/`;
    const residualProjection = model.nodes.has(`${residualName}MatMul`)
      ? readDense(model, `${residualName}MatMul`, `${residualName}BiasAdd`, inputSize)
      : null;
    const hidden = attentionOutput.outSize;
    if (!residualProjection && hidden !== inputSize) throw new Error(`layer ${i}: residual width mismatch`);

    const ffnNorm = readLayerNorm(model, ffnNormPrefix, hidden);
    const ffnIn = readDense(model, `${layer}FFN/conv1/Tensordot/MatMul`, `${layer}FFN/conv1/BiasAdd`, hidden);
    model.node(`${layer}FFN/conv1/Relu`, 'Relu');
    const ffnOut = readDense(model, `${layer}FFN/conv2/Tensordot/MatMul`, `${layer}FFN/conv2/BiasAdd`, ffnIn.outSize);
    layers.push({
      inputSize, attentionNorm, qkv, heads, headSize, queryScale, attentionOutput, residualProjection, ffnNorm, ffnIn, ffnOut,
    });
  }
  if (layers.length === 0) throw new Error('no transformer layers found');
  const hiddenSize = layers.at(-1)!.ffnOut.outSize;

  model.node(`${ROOT}div`, 'RealDiv');
  const poolingDense = readDense(model, `${HIDDEN}tanh_layer_0/MatMul`, `${HIDDEN}tanh_layer_0/BiasAdd`, hiddenSize);
  model.node(`${HIDDEN}tanh_layer_0/Tanh`, 'Tanh');
  const l2Epsilon = model.scalar(model.node(`${HIDDEN}l2_normalize/Maximum`, 'Maximum').input[1]!);

  return {
    vocabSize, embeddingSize, embeddings, embeddingMultiplier, inverseTimescales, maxTokens, layerNormEpsilon,
    paddingBias, layers, hiddenSize, poolingDense, l2Epsilon,
  };
}

/**
 * Layer_0/add = Add(scattered embeddings, Scatter(Add(Gather(scattered embeddings), timing))):
 * the embedding reaches the first layer twice. Verify that wiring rather than assume it.
 */
function countEmbeddingPaths(model: TfGraphModel): number {
  const embedded = `${ROOT}Encode/Scatter/ScatterNd`;
  const timing = `${STACK}Layer_0/AddTimingSignal/`;
  const layerInput = model.node(`${STACK}Layer_0/add`, 'Add');
  const timingAdd = model.node(`${timing}add`, 'Add');
  const gathered = model.node(timingAdd.input[0]!, 'GatherNd');
  const ok =
    layerInput.input[0] === embedded &&
    layerInput.input[1] === `${timing}Scatter/ScatterNd` &&
    gathered.input[0] === embedded &&
    timingAdd.input[1] === `${timing}TimingSignal/concat`;
  if (!ok) throw new Error('unexpected wiring of the embedding and timing signal into layer 0');
  return 2;
}

/** TF's layer_norm subgraph: the scale feeds `mul`, the bias feeds `add_1`. */
function readLayerNorm(model: TfGraphModel, prefix: string, size: number): LayerNormParams {
  model.node(`${prefix}Rsqrt`, 'Rsqrt');
  const scale = model.floatConst(model.node(`${prefix}mul`, 'Mul').input[0]!, [size]);
  const bias = model.floatConst(model.node(`${prefix}add_1`, 'Add').input[1]!, [size]);
  return { scale, bias };
}

/** A 1x1 NHWC Conv2D with stride 1 over [batch, tokens, 1, in] is a MatMul with the kernel as [in, out]. */
function readConv1x1(model: TfGraphModel, prefix: string, inSize: number): Dense {
  const conv = model.node(`${prefix}Conv2D`, 'Conv2D');
  const text = (key: string) => tfStringAttr(conv.attr[key]);
  const ints = (key: string) => ((conv.attr[key] as { list?: { i?: string[] } } | undefined)?.list?.i ?? []).join(',');
  if (text('data_format') !== 'NHWC' || text('padding') !== 'VALID' || ints('strides') !== '1,1,1,1' || ints('dilations') !== '1,1,1,1') {
    throw new Error(`${prefix}Conv2D is not a plain 1x1 convolution`);
  }
  const kernelName = conv.input[1]!;
  const outSize = model.weights.get(kernelName)?.shape[3] ?? 0;
  const weight = model.floatConst(kernelName, [1, 1, inSize, outSize]);
  const bias = model.floatConst(model.node(`${prefix}BiasAdd`, 'BiasAdd').input[1]!, [outSize]);
  return { weight, bias, inSize, outSize };
}

/** TF.js model.json stores string attributes as byte arrays (older converters: base64 strings). */
function tfStringAttr(attr: unknown): string {
  const s = (attr as { s?: number[] | string } | undefined)?.s;
  if (s === undefined) return '';
  return Array.isArray(s) ? Buffer.from(s).toString('utf8') : Buffer.from(s, 'base64').toString('utf8');
}

/** MatMul (plain or the core of a Tensordot) followed by BiasAdd. */
function readDense(model: TfGraphModel, matMulName: string, biasAddName: string, inSize: number): Dense {
  const matMul = model.node(matMulName, 'MatMul');
  const transposed = ['transpose_a', 'transpose_b'].some((k) => (matMul.attr[k] as { b?: boolean } | undefined)?.b);
  if (transposed) throw new Error(`${matMulName}: transposed MatMul is not supported`);
  const weightName = matMul.input[1]!;
  const outSize = model.weights.get(weightName)?.shape[1] ?? 0;
  const weight = model.floatConst(weightName, [inSize, outSize]);
  const bias = model.floatConst(model.node(biasAddName, 'BiasAdd').input[1]!, [outSize]);
  return { weight, bias, inSize, outSize };
}
