// Gather on a value that is not a row-gathered parameter (those become 'rows' gradients, see gradient-graph.ts):
// the gradient is scattered back with ScatterND(reduction='add'), which sums repeated indices.
import { intAttribute } from '../model-graph.js';
import type { GradientRule } from './rule.js';

export const gather: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const [data, indices] = node.inputs as [string, string];
  if (b.opset < 16) throw b.unsupported(node, 'needs opset 16 (ScatterND with reduction) for the gradient of Gather on a computed value');
  const r = b.rankOf(data);
  const q = b.rankOf(indices);
  if (r === undefined || q === undefined) throw b.unsupported(node, 'the ranks of data and indices must be known');
  const axis = ((intAttribute(node, 'axis', 0) % r) + r) % r;
  // Normalised int64 indices (Gather allows negative ones).
  const shape = b.shape(data);
  const extent = b.op('Gather', [shape, b.intScalar(axis)]);
  const idx = b.op('Cast', [indices], { to: 7 });
  const positive = b.op('Where', [b.op('Less', [idx, b.intScalar(0)]), b.op('Add', [idx, extent]), idx]);
  // Bring the indexed axes to the front: dy [d0..d(a-1), I..., d(a+1)..] -> [I..., d0..d(a-1), d(a+1)..].
  const toFront = [...Array.from({ length: q }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: r - 1 - axis }, (_, i) => axis + q + i)];
  const dyFront = toFront.every((p, i) => p === i) ? dy : b.op('Transpose', [dy], { perm: toFront });
  // The data with its gathered axis first: [d(a), d0..d(a-1), d(a+1)..].
  const dataOrder = [axis, ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: r - 1 - axis }, (_, i) => axis + 1 + i)];
  const zeros = b.op('ConstantOfShape', [axis === 0 ? shape : b.op('Gather', [shape, b.ints(dataOrder)])]);
  const scattered = b.op('ScatterND', [zeros, b.unsqueeze(positive, [-1]), dyFront], { reduction: 'add' });
  if (axis === 0) return [scattered];
  const back = new Array<number>(r);
  dataOrder.forEach((p, i) => (back[p] = i));
  return [b.op('Transpose', [scattered], { perm: back })];
};
