// Trained head weights -> ONNX files in the engine's head contract (DESIGN.md, src/engine/heads/):
//   classifier:        pooled float32 [n, D]            -> logits [n, L]
//   token classifier:  token_states float32 [n, T, D]   -> logits [n, T, L]
// The graph computes what model.ts computes: standardise, first dense layer (for a token head: on the
// zero-padded sequence, then the window's blocks shifted and summed), ReLU, second dense layer.
import { OnnxGraphBuilder } from '../onnx/graph-builder.js';
import { firstLayerSize, type HeadWeights } from './model.js';

const INT64_MAX = Number.MAX_SAFE_INTEGER;

export interface ExportOptions {
  /** Graph name and doc string stored in the file. */
  name?: string;
  description?: string;
  /**
   * Classifier only: the logits are divided by this temperature inside the graph (temperature scaling,
   * src/evaluation/calibration.ts), so the engine's softmax serves calibrated scores; argmax is unchanged.
   * Default 1: no division, the graph as before.
   */
  temperature?: number;
}

function standardiseAndFirstLayer(g: OnnxGraphBuilder, input: string, w: HeadWeights): string {
  const standardised = g.op('Mul', [g.op('Sub', [input, g.initializer('feature_mean', w.mean, [w.inputSize])]), g.initializer('feature_inv_std', w.invStd, [w.inputSize])], {
    output: 'standardised',
  });
  const span = 2 * w.window + 1;
  return g.op('MatMul', [standardised, g.initializer('dense1.weight', w.w1, [w.inputSize, span * firstLayerSize(w)])], { output: 'dense1_windowed' });
}

function outputLayers(g: OnnxGraphBuilder, z1: string, w: HeadWeights, temperature = 1): string {
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`export: temperature must be a positive number, got ${temperature}`);
  const scaled = temperature !== 1;
  const output = scaled ? 'uncalibrated_logits' : 'logits';
  let logits: string;
  if (w.hidden === 0) logits = g.op('Identity', [z1], { output });
  else {
    const h = g.op('Relu', [z1], { output: 'hidden' });
    const product = g.op('MatMul', [h, g.initializer('dense2.weight', w.w2, [w.hidden, w.numLabels])]);
    logits = g.op('Add', [product, g.initializer('dense2.bias', w.b2, [w.numLabels])], { output });
  }
  return scaled ? g.op('Div', [logits, g.initializer('temperature', Float32Array.of(temperature), [])], { output: 'logits' }) : logits;
}

export function exportClassifierOnnx(w: HeadWeights, options: ExportOptions = {}): Uint8Array {
  if (w.window !== 0) throw new Error('exportClassifierOnnx: a sentence classifier has no token window');
  const g = new OnnxGraphBuilder({ name: options.name ?? 'classification-head', opset: 17, docString: options.description ?? '' });
  g.input('pooled', 'float32', ['batch', w.inputSize]);
  const a = standardiseAndFirstLayer(g, 'pooled', w);
  const z1 = g.op('Add', [a, g.initializer('dense1.bias', w.b1, [w.b1.length])], { output: 'dense1' });
  outputLayers(g, z1, w, options.temperature);
  g.output('logits', 'float32', ['batch', w.numLabels]);
  return g.toBytes();
}

export function exportTokenClassifierOnnx(w: HeadWeights, options: ExportOptions = {}): Uint8Array {
  const g = new OnnxGraphBuilder({ name: options.name ?? 'token-classification-head', opset: 17, docString: options.description ?? '' });
  g.input('token_states', 'float32', ['batch', 'tokens', w.inputSize]);
  const pad = w.window;
  const out1 = firstLayerSize(w);
  const span = 2 * pad + 1;
  let padded = 'token_states';
  if (pad > 0) {
    padded = g.op('Pad', ['token_states', g.int64s('pads', [0, pad, 0, 0, pad, 0])], { output: 'padded', attrs: { mode: 'constant' } });
  }
  const a = standardiseAndFirstLayer(g, padded, w);
  // Block k of position t + k (padded index) is the contribution of token t + k - w to position t.
  let sum: string | undefined;
  for (let k = 0; k < span; k++) {
    const endRow = k === span - 1 ? INT64_MAX : -(span - 1 - k);
    const block = g.op('Slice', [a, g.int64s(`slice${k}_starts`, [k, k * out1]), g.int64s(`slice${k}_ends`, [endRow, (k + 1) * out1]), g.int64s(`slice${k}_axes`, [1, 2])], {
      output: `window_block_${k}`,
    });
    sum = sum === undefined ? block : g.op('Add', [sum, block]);
  }
  const z1 = g.op('Add', [sum!, g.initializer('dense1.bias', w.b1, [w.b1.length])], { output: 'dense1' });
  outputLayers(g, z1, w);
  g.output('logits', 'float32', ['batch', 'tokens', w.numLabels]);
  return g.toBytes();
}
