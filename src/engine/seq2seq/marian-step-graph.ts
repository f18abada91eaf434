// Polyhead's own Marian decoder graphs, built from the weights of the user's decoder file (marian-weights.ts).
//
// Optimum's decoder takes no decoder attention mask and derives positions from the past length, so every row of a
// batch must sit at the same length. The STEP graph here takes each row's position and a mask of its valid past
// instead, so that rows at different lengths (a request that joined at this step next to one at position 17) share
// one run: continuous batching.
//
// Step graph (B rows, P past positions: the longest row's; S source positions: the longest source's;
// H heads, Dh head_dim, d = H * Dh, V vocabulary; every name with {i} exists for each layer i):
//   inputs   input_ids  int64 [B]            the token each row feeds
//            positions  int64 [B]            where it sits (= how many past positions of the row are valid)
//            self_mask  float [B, P]         1 where row r has a past key/value at that position, else 0
//            past_key_{i}, past_value_{i}    float [B, H, P, Dh]  the rows' self-attention caches (any values where masked)
//            cross_key_{i}, cross_value_{i}  float [B, H, S, Dh]  from the cross graph, per row's source
//            cross_mask float [B, S]         1 on row r's source positions
//   outputs  logits     float [B, V]
//            new_key_{i}, new_value_{i}      float [B, H, 1, Dh]  this token's self-attention key/value, to append
// Row r's token attends to its valid past positions and to itself (its own key is computed in the graph and always
// present, so a row with no valid past works; P must still be >= 1: feed one masked position). Causality is implicit:
// only the past is there. The past is read in place (no Concat of past and new): scores against the past and
// against the new key are computed apart, softmaxed together, and the two halves of the weighted sum added.
//
// Cross graph: encoder_hidden_states float [B, S, d] -> cross_key_{i}, cross_value_{i} float [B, H, S, Dh], once per
// request (the cross-attention k/v projections of the encoder's output).
//
// Maths, as MarianDecoderLayer (post-norm): x = LN(x + SelfAttn(x)); x = LN(x + CrossAttn(x)); x = LN(x + fc2(act(fc1(x))));
// queries scaled by Dh^-0.5 after their bias; masked positions get float32's lowest as additive bias (as Hugging Face);
// embeddings: embed_tokens (pre-scaled by sqrt(d) when scale_embedding) + embed_positions[position];
// logits = x @ lm_head + final_logits_bias.
import { OnnxGraphBuilder, floatAttr } from '../../onnx/graph-builder.js';
import type { Attention, LayerNorm, Linear, MarianDecoderWeights } from './marian-weights.js';

const FLOAT32_LOWEST = -3.4028234663852886e38;
const INT64_MAX = 9223372036854775807n;

export const stepInputNames = (layers: number) => ({
  inputIds: 'input_ids',
  positions: 'positions',
  selfMask: 'self_mask',
  crossMask: 'cross_mask',
  pastKey: Array.from({ length: layers }, (_, i) => `past_key_${i}`),
  pastValue: Array.from({ length: layers }, (_, i) => `past_value_${i}`),
  crossKey: Array.from({ length: layers }, (_, i) => `cross_key_${i}`),
  crossValue: Array.from({ length: layers }, (_, i) => `cross_value_${i}`),
});

export const stepOutputNames = (layers: number) => ({
  logits: 'logits',
  newKey: Array.from({ length: layers }, (_, i) => `new_key_${i}`),
  newValue: Array.from({ length: layers }, (_, i) => `new_value_${i}`),
});

/** Small helpers over the builder: constants by value, linear layers, LayerNorm. */
class Graph {
  readonly g: OnnxGraphBuilder;
  private readonly constants = new Map<string, string>();

  constructor(name: string) {
    this.g = new OnnxGraphBuilder({ name, opset: 17, producerName: 'polyhead' });
  }

  op(type: string, inputs: string[], attrs?: Record<string, number | number[] | ReturnType<typeof floatAttr>>, output?: string): string {
    return this.g.op(type, inputs, { ...(attrs ? { attrs } : {}), ...(output ? { output } : {}) });
  }

  scalar(value: number): string {
    return this.constant(`f:${value}`, (name) => this.g.floats(name, [value], []));
  }

  ints(values: Array<number | bigint>): string {
    return this.constant(`i:${values.join(',')}`, (name) => this.g.initializer(name, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]));
  }

  private constant(key: string, make: (name: string) => string): string {
    let name = this.constants.get(key);
    if (!name) this.constants.set(key, (name = make(`const_${this.constants.size}`)));
    return name;
  }

  weights(name: string, data: Float32Array, dims: number[]): string {
    return this.g.initializer(name, data, dims);
  }

  /** x @ W + b, as the original: Add(bias, MatMul(x, W)). */
  linear(x: string, linear: Linear, name: string): string {
    const w = this.weights(`${name}.weight`, linear.weight, [linear.inFeatures, linear.outFeatures]);
    const b = this.weights(`${name}.bias`, linear.bias, [linear.outFeatures]);
    return this.op('Add', [b, this.op('MatMul', [x, w])]);
  }

  layerNorm(x: string, norm: LayerNorm, name: string): string {
    const w = this.weights(`${name}.weight`, norm.weight, [norm.weight.length]);
    const b = this.weights(`${name}.bias`, norm.bias, [norm.bias.length]);
    return this.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: floatAttr(norm.epsilon) });
  }

  /** [B, n] float mask (1 valid) -> additive bias [B, 1, 1, n]: 0 where valid, float32's lowest elsewhere. */
  additiveMask(mask: string): string {
    const bias = this.op('Mul', [this.op('Sub', [this.scalar(1), mask]), this.scalar(FLOAT32_LOWEST)]);
    return this.op('Unsqueeze', [bias, this.ints([1, 2])]);
  }

  activation(x: string, kind: MarianDecoderWeights['activation']): string {
    if (kind === 'swish') return this.op('Mul', [x, this.op('Sigmoid', [x])]);
    if (kind === 'relu') return this.op('Relu', [x]);
    // gelu (erf form, as torch's default): 0.5 x (1 + erf(x / sqrt 2))
    const erf = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)])]);
    return this.op('Mul', [this.op('Mul', [x, this.scalar(0.5)]), this.op('Add', [erf, this.scalar(1)])]);
  }
}

/** The step graph's serialized model (see the module comment). The weights become its initializers. */
export function buildMarianStepGraph(weights: MarianDecoderWeights): Uint8Array {
  const { dModel: d, heads: H, headDim: Dh, vocabSize: V, layers } = weights;
  const names = { in: stepInputNames(layers.length), out: stepOutputNames(layers.length) };
  const c = new Graph('polyhead-marian-step');
  const g = c.g;
  g.input(names.in.inputIds, 'int64', ['rows']);
  g.input(names.in.positions, 'int64', ['rows']);
  g.input(names.in.selfMask, 'float32', ['rows', 'past']);
  layers.forEach((_, i) => {
    g.input(names.in.pastKey[i]!, 'float32', ['rows', H, 'past', Dh]);
    g.input(names.in.pastValue[i]!, 'float32', ['rows', H, 'past', Dh]);
  });
  layers.forEach((_, i) => {
    g.input(names.in.crossKey[i]!, 'float32', ['rows', H, 'source', Dh]);
    g.input(names.in.crossValue[i]!, 'float32', ['rows', H, 'source', Dh]);
  });
  g.input(names.in.crossMask, 'float32', ['rows', 'source']);

  const embedTokens = c.weights('embed_tokens', weights.embedTokens, [V, d]);
  const embedPositions = c.weights('embed_positions', weights.embedPositions, [weights.maxPositions, d]);
  let x = c.op('Add', [c.op('Gather', [embedTokens, names.in.inputIds]), c.op('Gather', [embedPositions, names.in.positions])]);
  const selfBias = c.additiveMask(names.in.selfMask);
  const crossBias = c.additiveMask(names.in.crossMask);
  const scale = c.scalar(Math.fround(1 / Math.sqrt(Dh)));
  const oneToken = c.ints([0, H, 1, Dh]); // [B, d] -> [B, H, 1, Dh]
  const merged = c.ints([0, d]); // [B, H, 1, Dh] -> [B, d]
  const kT = [0, 1, 3, 2];

  const query = (h: string, attention: Attention, name: string) => c.op('Reshape', [c.op('Mul', [c.linear(h, attention.q, `${name}.q_proj`), scale]), oneToken]);

  layers.forEach((layer, i) => {
    const prefix = `layers.${i}`;
    // Self-attention over [the row's past, its own new key].
    const self = `${prefix}.self_attn`;
    const q = query(x, layer.selfAttn, self);
    const newKey = c.op('Reshape', [c.linear(x, layer.selfAttn.k, `${self}.k_proj`), oneToken], undefined, names.out.newKey[i]);
    const newValue = c.op('Reshape', [c.linear(x, layer.selfAttn.v, `${self}.v_proj`), oneToken], undefined, names.out.newValue[i]);
    const pastScores = c.op('Add', [c.op('MatMul', [q, c.op('Transpose', [names.in.pastKey[i]!], { perm: kT })]), selfBias]);
    const ownScore = c.op('ReduceSum', [c.op('Mul', [q, newKey]), c.ints([3])], { keepdims: 1 });
    const probs = c.op('Softmax', [c.op('Concat', [pastScores, ownScore], { axis: 3 })], { axis: -1 });
    const pastProbs = c.op('Slice', [probs, c.ints([0]), c.ints([-1]), c.ints([3])]);
    const ownProb = c.op('Slice', [probs, c.ints([-1]), c.ints([INT64_MAX]), c.ints([3])]);
    const context = c.op('Add', [c.op('MatMul', [pastProbs, names.in.pastValue[i]!]), c.op('Mul', [ownProb, newValue])]);
    const attended = c.linear(c.op('Reshape', [context, merged]), layer.selfAttn.out, `${self}.out_proj`);
    x = c.layerNorm(c.op('Add', [x, attended]), layer.selfAttnLayerNorm, `${prefix}.self_attn_layer_norm`);

    // Cross-attention over the row's source.
    const cross = `${prefix}.encoder_attn`;
    const cq = query(x, layer.crossAttn, cross);
    const crossScores = c.op('Add', [c.op('MatMul', [cq, c.op('Transpose', [names.in.crossKey[i]!], { perm: kT })]), crossBias]);
    const crossProbs = c.op('Softmax', [crossScores], { axis: -1 });
    const crossContext = c.op('Reshape', [c.op('MatMul', [crossProbs, names.in.crossValue[i]!]), merged]);
    const crossAttended = c.linear(crossContext, layer.crossAttn.out, `${cross}.out_proj`);
    x = c.layerNorm(c.op('Add', [x, crossAttended]), layer.crossAttnLayerNorm, `${prefix}.encoder_attn_layer_norm`);

    const inner = c.activation(c.linear(x, layer.fc1, `${prefix}.fc1`), weights.activation);
    x = c.layerNorm(c.op('Add', [x, c.linear(inner, layer.fc2, `${prefix}.fc2`)]), layer.finalLayerNorm, `${prefix}.final_layer_norm`);
  });

  const head = c.weights('lm_head.weight', weights.outputProjection, [d, V]);
  const bias = c.weights('final_logits_bias', weights.finalLogitsBias, [V]);
  c.op('Add', [c.op('MatMul', [x, head]), bias], undefined, names.out.logits);
  g.output(names.out.logits, 'float32', ['rows', V]);
  layers.forEach((_, i) => {
    g.output(names.out.newKey[i]!, 'float32', ['rows', H, 1, Dh]);
    g.output(names.out.newValue[i]!, 'float32', ['rows', H, 1, Dh]);
  });
  return g.toBytes();
}

/** The cross graph's serialized model: encoder_hidden_states [B, S, d] -> cross_key_{i}, cross_value_{i} [B, H, S, Dh]. */
export function buildMarianCrossGraph(weights: MarianDecoderWeights): Uint8Array {
  const { dModel: d, heads: H, headDim: Dh, layers } = weights;
  const names = stepInputNames(layers.length);
  const c = new Graph('polyhead-marian-cross');
  const states = c.g.input('encoder_hidden_states', 'float32', ['rows', 'source', d]);
  const split = c.ints([0, 0, H, Dh]);
  layers.forEach((layer, i) => {
    const module = `layers.${i}.encoder_attn`;
    const heads = (linear: Linear, name: string, output: string) =>
      c.op('Transpose', [c.op('Reshape', [c.linear(states, linear, `${module}.${name}`), split])], { perm: [0, 2, 1, 3] }, output);
    heads(layer.crossAttn.k, 'k_proj', names.crossKey[i]!);
    heads(layer.crossAttn.v, 'v_proj', names.crossValue[i]!);
  });
  layers.forEach((_, i) => {
    c.g.output(names.crossKey[i]!, 'float32', ['rows', H, 'source', Dh]);
    c.g.output(names.crossValue[i]!, 'float32', ['rows', H, 'source', Dh]);
  });
  return c.g.toBytes();
}
