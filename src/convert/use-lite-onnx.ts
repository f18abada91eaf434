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
 */
import { OnnxGraphBuilder, floatAttr } from '../onnx/graph-builder.js';
import type { Dense, LayerNormParams, TransformerLayer, UseLiteArchitecture } from './use-lite-architecture.js';

export function buildUseLiteOnnx(arch: UseLiteArchitecture): Uint8Array {
  const g = new OnnxGraphBuilder({
    name: 'use-lite-backbone',
    opset: 17,
    docString: 'Universal Sentence Encoder Lite (Cer et al. 2018), converted from TF.js by Polyhead',
  });
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
  const embedded = g.op('Gather', [g.initializer('embeddings', table, [arch.vocabSize, arch.embeddingSize]), ids]);
  const scaledTime = g.op('Mul', [
    g.op('Unsqueeze', [g.op('Cast', [positions], { attrs: { to: 1 } }), axisOne]),
    g.floats('inverse_timescales', arch.inverseTimescales, [1, arch.inverseTimescales.length]),
  ]);
  const timing = g.op('Concat', [g.op('Sin', [scaledTime]), g.op('Cos', [scaledTime])], { attrs: { axis: 1 } });
  let hidden = g.op('Add', [embedded, timing], { output: 'layer_0_input' });

  arch.layers.forEach((layer, i) => {
    hidden = emitLayer(g, layer, `layer_${i}`, hidden, paddingBias, arch.layerNormEpsilon);
  });

  // Zero padded positions (TF leaves them unspecified); pooling needs this product anyway.
  const tokenStates = g.op('Mul', [hidden, g.op('Unsqueeze', [validFloat, axisLast])], { output: 'token_states' });
  const summed = g.op('ReduceSum', [tokenStates, axisOne], { attrs: { keepdims: 0 } });
  const counts = g.op('Max', [g.op('ReduceSum', [validFloat, axisOne], { attrs: { keepdims: 1 } }), g.floats('one_f', [1], [])]);
  const mean = g.op('Div', [summed, counts], { output: 'mean_pooled' });
  const tanh = g.op('Tanh', [dense(g, mean, arch.poolingDense, 'pooling_dense')]);
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
  layer: TransformerLayer,
  name: string,
  input: string,
  paddingBias: string,
  epsilon: number,
): string {
  const attentionSize = layer.heads * layer.headSize;
  const normed = layerNorm(g, input, layer.attentionNorm, `${name}_attention_norm`, epsilon);
  const qkv = dense(g, normed, scaleQueries(layer.qkv, attentionSize, layer.queryScale), `${name}_qkv`);
  const [q, k, v] = g.node('Split', [qkv, g.int64s(`${name}_qkv_split`, [attentionSize, attentionSize, attentionSize])], {
    outputs: 3,
    attrs: { axis: -1 },
  }) as [string, string, string];
  const headsShape = g.int64s(`${name}_heads_shape`, [0, 0, layer.heads, layer.headSize]);
  const splitHeads = (x: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [x, headsShape])], { attrs: { perm } });
  const queries = splitHeads(q, [0, 2, 1, 3]); // [batch, heads, tokens, headSize]
  const keysT = splitHeads(k, [0, 2, 3, 1]); // [batch, heads, headSize, tokens]
  const values = splitHeads(v, [0, 2, 1, 3]);
  const logits = g.op('Add', [g.op('MatMul', [queries, keysT]), paddingBias]);
  const weights = g.op('Softmax', [logits], { attrs: { axis: -1 } });
  const context = g.op('Transpose', [g.op('MatMul', [weights, values])], { attrs: { perm: [0, 2, 1, 3] } });
  const combined = g.op('Reshape', [context, g.int64s(`${name}_combine_shape`, [0, 0, attentionSize])]);
  const attention = dense(g, combined, layer.attentionOutput, `${name}_attention_output`);
  const residual = layer.residualProjection ? dense(g, input, layer.residualProjection, `${name}_residual`) : input;
  const afterAttention = g.op('Add', [attention, residual], { output: `${name}_attention_add` });

  const ffnNormed = layerNorm(g, afterAttention, layer.ffnNorm, `${name}_ffn_norm`, epsilon);
  const ffnHidden = g.op('Relu', [dense(g, ffnNormed, layer.ffnIn, `${name}_ffn_in`)]);
  const ffn = dense(g, ffnHidden, layer.ffnOut, `${name}_ffn_out`);
  return g.op('Add', [ffn, afterAttention], { output: `${name}_output` });
}

function dense(g: OnnxGraphBuilder, x: string, params: Dense, name: string): string {
  const weight = g.initializer(`${name}.weight`, params.weight, [params.inSize, params.outSize]);
  const bias = g.initializer(`${name}.bias`, params.bias, [params.outSize]);
  return g.op('Add', [g.op('MatMul', [x, weight]), bias], { output: name });
}

function layerNorm(g: OnnxGraphBuilder, x: string, params: LayerNormParams, name: string, epsilon: number): string {
  const scale = g.initializer(`${name}.scale`, params.scale, [params.scale.length]);
  const bias = g.initializer(`${name}.bias`, params.bias, [params.bias.length]);
  return g.op('LayerNormalization', [x, scale, bias], { output: name, attrs: { axis: -1, epsilon: floatAttr(epsilon) } });
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
