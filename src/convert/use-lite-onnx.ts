/**
 * Emits the USE-lite backbone as an ONNX graph (opset 17) from its architecture description.
 *
 * Inputs (dynamic batch and tokens; ids are int64 as in Hugging Face exports, so a tokenizer's
 * output can be fed as is; ORT's Gather takes int64 indices natively):
 *   input_ids      int64 [batch, tokens]   padded positions may hold any valid id (0 is fine)
 *   attention_mask int64 [batch, tokens]   1 = real token, 0 = padding; real tokens first
 * Outputs:
 *   token_states   float32 [batch, tokens, 512]  last layer's FFN residual add; 0 at padding and at
 *                                               positions >= maxTokens (128), which the model ignores
 *   pooled         float32 [batch, 512]          the sentence embedding: mean over real tokens,
 *                                               dense + tanh, L2-normalised (the reference output)
 *
 * The TF graph computes only on real tokens (gather, compute, scatter). Here everything is dense:
 * padded keys get the same -1e9 attention bias as in TF, so padded positions never change the
 * real positions' states, and pooling masks them out.
 *
 * `precision: 'fp16'` (for the CUDA execution provider; fp32 stays the CPU path) emits the same graph
 * with float16 weights and float16 compute for the embedding lookup, every transformer MatMul, bias,
 * ReLU and residual add. Kept in float32, with Casts around them: LayerNormalization (mean/variance),
 * the attention logits + padding bias (-1e9 is -Infinity in fp16, and a row of only padded keys would
 * turn the softmax into NaN) + Softmax, the timing signal, the masking and mean pooling, the pooling
 * dense + tanh and the L2 normalisation. Inputs and outputs are the same names and types as fp32
 * (int64 ids and mask in, float32 token_states and pooled out). The fp32 bytes do not change.
 */
import { OnnxGraphBuilder, floatAttr } from '../onnx/graph-builder.js';
import type { Dense, LayerNormParams, TransformerLayer, UseLiteArchitecture } from './use-lite-architecture.js';

export type UseLitePrecision = 'fp32' | 'fp16';

export interface UseLiteOnnxOptions {
  /** fp32 (default; the CPU path) or fp16 (for CUDA; see above). */
  precision?: UseLitePrecision;
}

/** How tensors of the transformer body are stored and computed: identity helpers in fp32. */
interface Precision {
  fp16: boolean;
  /** A weight in the compute precision. */
  weight(name: string, data: Float32Array, dims: readonly number[]): string;
  /** float32 -> compute precision. */
  toCompute(x: string): string;
  /** compute precision -> float32. */
  toFloat(x: string): string;
}

const FLOAT = 1;
const FLOAT16 = 10;

function precisionOf(g: OnnxGraphBuilder, fp16: boolean): Precision {
  return fp16
    ? {
        fp16,
        weight: (name, data, dims) => g.float16s(name, data, dims),
        toCompute: (x) => g.op('Cast', [x], { attrs: { to: FLOAT16 } }),
        toFloat: (x) => g.op('Cast', [x], { attrs: { to: FLOAT } }),
      }
    : { fp16, weight: (name, data, dims) => g.initializer(name, data, dims), toCompute: (x) => x, toFloat: (x) => x };
}

export function buildUseLiteOnnx(arch: UseLiteArchitecture, options: UseLiteOnnxOptions = {}): Uint8Array {
  const fp16 = options.precision === 'fp16';
  const g = new OnnxGraphBuilder({
    name: fp16 ? 'use-lite-backbone-fp16' : 'use-lite-backbone',
    opset: 17,
    docString: `Universal Sentence Encoder Lite (Cer et al. 2018), converted from TF.js by Polyhead${fp16 ? ' (float16 weights and compute; LayerNorm, softmax and pooling in float32)' : ''}`,
  });
  const p = precisionOf(g, fp16);
  const f32 = precisionOf(g, false);
  const ids = g.input('input_ids', 'int64', ['batch', 'tokens']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'tokens']);

  const axisOne = g.int64s('axes_1', [1]);
  const axisLast = g.int64s('axes_last', [-1]);

  // Positions 0..tokens-1; the model ignores positions >= maxTokens (TF: ClipToMaxLength).
  const tokenCount = g.op('Squeeze', [g.op('Shape', [ids], { attrs: { start: 1, end: 2 } })]);
  const positions = g.op('Range', [g.int64s('zero', [0], []), tokenCount, g.int64s('one', [1], [])], { output: 'positions' });
  const inRange = g.op('Less', [positions, g.int64s('max_tokens', [arch.maxTokens], [])]);
  const valid = g.op('And', [g.op('Cast', [mask], { attrs: { to: 9 /* BOOL */ } }), inRange], { output: 'valid' });
  const validFloat = g.op('Cast', [valid], { attrs: { to: 1 /* FLOAT */ }, output: 'valid_float' });
  // [batch, 1, 1, tokens]: paddingBias (-1e9) where the key is padding, 0 elsewhere (TF: attention_bias_ignore_padding).
  const paddingBias = g.op('Unsqueeze', [
    g.op('Mul', [g.op('Cast', [g.op('Not', [valid])], { attrs: { to: 1 } }), g.floats('padding_bias', [arch.paddingBias], [])]),
    g.int64s('axes_1_2', [1, 2]),
  ], { output: 'attention_bias' });

  // Token embeddings + sinusoid timing signal [tokens, embeddingSize] (sin half, then cos half).
  // The multiplier (2) is folded into the table: exact, as it is a power of two.
  const table = arch.embeddings.map((x) => x * arch.embeddingMultiplier);
  const embedded = g.op('Gather', [p.weight('embeddings', table, [arch.vocabSize, arch.embeddingSize]), ids]);
  const scaledTime = g.op('Mul', [
    g.op('Unsqueeze', [g.op('Cast', [positions], { attrs: { to: 1 } }), axisOne]),
    g.floats('inverse_timescales', arch.inverseTimescales, [1, arch.inverseTimescales.length]),
  ]);
  const timing = g.op('Concat', [g.op('Sin', [scaledTime]), g.op('Cos', [scaledTime])], { attrs: { axis: 1 } });
  let hidden = g.op('Add', [embedded, p.toCompute(timing)], { output: 'layer_0_input' });

  arch.layers.forEach((layer, i) => {
    hidden = emitLayer(g, p, layer, `layer_${i}`, hidden, paddingBias, arch.layerNormEpsilon);
  });

  // Zero padded positions (TF leaves them unspecified); pooling needs this product anyway.
  const tokenStates = g.op('Mul', [p.toFloat(hidden), g.op('Unsqueeze', [validFloat, axisLast])], { output: 'token_states' });
  const summed = g.op('ReduceSum', [tokenStates, axisOne], { attrs: { keepdims: 0 } });
  const counts = g.op('Max', [g.op('ReduceSum', [validFloat, axisOne], { attrs: { keepdims: 1 } }), g.floats('one_f', [1], [])]);
  const mean = g.op('Div', [summed, counts], { output: 'mean_pooled' });
  const tanh = g.op('Tanh', [dense(g, f32, mean, arch.poolingDense, 'pooling_dense')]);
  const squaredNorm = g.op('ReduceSum', [g.op('Mul', [tanh, tanh]), axisOne], { attrs: { keepdims: 1 } });
  const norm = g.op('Sqrt', [g.op('Max', [squaredNorm, g.floats('l2_epsilon', [arch.l2Epsilon], [])])]);
  g.op('Div', [tanh, norm], { output: 'pooled' });

  g.output('token_states', 'float32', ['batch', 'tokens', arch.hiddenSize]);
  g.output('pooled', 'float32', ['batch', arch.hiddenSize]);
  return g.toBytes();
}

/** Pre-norm transformer layer: x + MHA(LN(x)) (x projected when widening), then + FFN(LN(.)). */
function emitLayer(
  g: OnnxGraphBuilder,
  p: Precision,
  layer: TransformerLayer,
  name: string,
  input: string,
  paddingBias: string,
  epsilon: number,
): string {
  const attentionSize = layer.heads * layer.headSize;
  const normed = layerNorm(g, p, input, layer.attentionNorm, `${name}_attention_norm`, epsilon);
  const qkv = dense(g, p, normed, scaleQueries(layer.qkv, attentionSize, layer.queryScale), `${name}_qkv`);
  const [q, k, v] = g.node('Split', [qkv, g.int64s(`${name}_qkv_split`, [attentionSize, attentionSize, attentionSize])], {
    outputs: 3,
    attrs: { axis: -1 },
  }) as [string, string, string];
  const headsShape = g.int64s(`${name}_heads_shape`, [0, 0, layer.heads, layer.headSize]);
  const splitHeads = (x: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [x, headsShape])], { attrs: { perm } });
  const queries = splitHeads(q, [0, 2, 1, 3]); // [batch, heads, tokens, headSize]
  const keysT = splitHeads(k, [0, 2, 3, 1]); // [batch, heads, headSize, tokens]
  const values = splitHeads(v, [0, 2, 1, 3]);
  // Logits + padding bias and the softmax stay float32 (p.toFloat / p.toCompute are no-ops in fp32).
  const logits = g.op('Add', [p.toFloat(g.op('MatMul', [queries, keysT])), paddingBias]);
  const weights = g.op('Softmax', [logits], { attrs: { axis: -1 } });
  const context = g.op('Transpose', [g.op('MatMul', [p.toCompute(weights), values])], { attrs: { perm: [0, 2, 1, 3] } });
  const combined = g.op('Reshape', [context, g.int64s(`${name}_combine_shape`, [0, 0, attentionSize])]);
  const attention = dense(g, p, combined, layer.attentionOutput, `${name}_attention_output`);
  const residual = layer.residualProjection ? dense(g, p, input, layer.residualProjection, `${name}_residual`) : input;
  const afterAttention = g.op('Add', [attention, residual], { output: `${name}_attention_add` });

  const ffnNormed = layerNorm(g, p, afterAttention, layer.ffnNorm, `${name}_ffn_norm`, epsilon);
  const ffnHidden = g.op('Relu', [dense(g, p, ffnNormed, layer.ffnIn, `${name}_ffn_in`)]);
  const ffn = dense(g, p, ffnHidden, layer.ffnOut, `${name}_ffn_out`);
  return g.op('Add', [ffn, afterAttention], { output: `${name}_output` });
}

function dense(g: OnnxGraphBuilder, p: Precision, x: string, params: Dense, name: string): string {
  const weight = p.weight(`${name}.weight`, params.weight, [params.inSize, params.outSize]);
  const bias = p.weight(`${name}.bias`, params.bias, [params.outSize]);
  return g.op('Add', [g.op('MatMul', [x, weight]), bias], { output: name });
}

/** LayerNormalization in float32 (scale and bias too); in fp16 its input and output are Cast. */
function layerNorm(g: OnnxGraphBuilder, p: Precision, x: string, params: LayerNormParams, name: string, epsilon: number): string {
  const scale = g.initializer(`${name}.scale`, params.scale, [params.scale.length]);
  const bias = g.initializer(`${name}.bias`, params.bias, [params.bias.length]);
  const normed = g.op('LayerNormalization', [p.toFloat(x), scale, bias], { output: p.fp16 ? `${name}_fp32` : name, attrs: { axis: -1, epsilon: floatAttr(epsilon) } });
  return p.fp16 ? g.op('Cast', [normed], { output: name, attrs: { to: FLOAT16 } }) : normed;
}

/** Folds the query scaling into the q columns of the fused qkv projection: (xW + b)s = x(Ws) + bs. */
function scaleQueries(qkv: Dense, attentionSize: number, scale: number): Dense {
  const weight = qkv.weight.slice();
  const bias = qkv.bias.slice();
  for (let row = 0; row < qkv.inSize; row++) {
    for (let col = 0; col < attentionSize; col++) weight[row * qkv.outSize + col]! *= scale;
  }
  for (let col = 0; col < attentionSize; col++) bias[col]! *= scale;
  return { ...qkv, weight, bias };
}
