// Pooling of token states into one sentence embedding, for encoders whose graph has no pooled output (Hugging
// Face models export `last_hidden_state` only; sentence-transformers names the mode in 1_Pooling/config.json).
// The pooling is a tiny ONNX graph that the backbone's worker thread runs right after the backbone (a chained
// run, see onnx-worker.ts): the token states never cross threads, and on CUDA they never leave the device.
import { OnnxGraphBuilder } from '../../onnx/graph-builder.js';
import type { PoolingMode } from '../../bundle/manifest.js';

/**
 * token_states float32 [n, T, d], attention_mask int64 [n, T] -> pooled float32 [n, d]:
 * - mean: the mean over the tokens the mask keeps (the count clamped at 1e-9, as sentence-transformers does);
 * - cls: the first token's state;
 * - max: the largest value per dimension over the kept tokens (masked tokens count as -1e9).
 */
export function poolingGraph(mode: PoolingMode, hidden: number): Uint8Array {
  const g = new OnnxGraphBuilder({ name: `pooling-${mode}`, opset: 17 });
  g.input('token_states', 'float32', ['batch', 'tokens', hidden]);
  g.input('attention_mask', 'int64', ['batch', 'tokens']);
  if (mode === 'cls') {
    g.op('Gather', ['token_states', g.initializer('first', new BigInt64Array([0n]), [])], { output: 'pooled', attrs: { axis: 1 } });
  } else {
    const mask = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { attrs: { to: 1 } }), g.int64s('axis2', [2])], { output: 'mask' });
    if (mode === 'mean') {
      const axis1 = g.int64s('axis1', [1]);
      const sum = g.op('ReduceSum', [g.op('Mul', ['token_states', mask]), axis1], { attrs: { keepdims: 0 } });
      const count = g.op('Max', [g.op('ReduceSum', [mask, axis1], { attrs: { keepdims: 0 } }), g.floats('min_count', [1e-9], [])]);
      g.op('Div', [sum, count], { output: 'pooled' });
    } else {
      // states where kept, -1e9 where masked: states * mask + (mask - 1) * 1e9
      const penalty = g.op('Mul', [g.op('Sub', [mask, g.floats('one', [1], [])]), g.floats('big', [1e9], [])]);
      const masked = g.op('Add', [g.op('Mul', ['token_states', mask]), penalty]);
      g.op('ReduceMax', [masked], { output: 'pooled', attrs: { axes: [1], keepdims: 0 } });
    }
  }
  g.output('pooled', 'float32', ['batch', hidden]);
  return g.toBytes();
}
