// MatMul and Gemm. A product with a 2-D right operand (every dense layer) is differentiated as 2-D Gemms over the
// flattened leading axes: the weight gradient comes out as [K, N] directly (no per-batch products summed
// afterwards), and both products use Gemm's transpose flags instead of materialising transposed copies.
import { floatAttribute, intAttribute } from '../model-graph.js';
import type { GradientRule } from './rule.js';

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

export const matmul: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [a, w] = node.inputs as [string, string];
  const y = node.outputs[0]!;
  const ra = b.rankOf(a);
  const rb = b.rankOf(w);
  if (ra === undefined || rb === undefined) throw b.unsupported(node, 'the ranks of both operands must be known from the graph');
  if (ra < 2 || rb < 2) throw b.unsupported(node, 'products with a 1-D operand are not supported');
  if (rb === 2) {
    // y[..., M, N] = a[..., M, K] w[K, N]
    const dy2 = ra === 2 ? dy : b.op('Flatten', [dy], { axis: ra - 1 });
    const da = needs[0] ? b.op('Gemm', [dy2, w], { transB: 1 }) : undefined;
    const a2 = ra === 2 ? a : b.op('Flatten', [a], { axis: ra - 1 });
    const dw = needs[1] ? b.op('Gemm', [a2, dy2], { transA: 1 }) : undefined;
    return [da && ra !== 2 ? b.reshapeLike(da, a) : da, dw];
  }
  const da = needs[0] ? b.unbroadcast(b.op('MatMul', [dy, b.op('Transpose', [w], { perm: swapLastTwo(rb) })]), a, y) : undefined;
  const dw = needs[1] ? b.unbroadcast(b.op('MatMul', [b.op('Transpose', [a], { perm: swapLastTwo(ra) }), dy]), w, y) : undefined;
  return [da, dw];
};

/** y = alpha A' B' + beta C with A' = transA ? A^T : A (and B' likewise). */
export const gemm: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [a, w, c] = node.inputs as [string, string, string | undefined];
  const alpha = floatAttribute(node, 'alpha', 1);
  const beta = floatAttribute(node, 'beta', 1);
  const ta = intAttribute(node, 'transA', 0) === 1;
  const tb = intAttribute(node, 'transB', 0) === 1;
  const scaled = (flags: Record<string, number>) => (alpha === 1 ? flags : { ...flags, alpha: { float: alpha } });
  let da: string | undefined;
  if (needs[0]) {
    da = ta
      ? b.op('Gemm', [w, dy], scaled(tb ? { transA: 1, transB: 1 } : { transB: 1 }))
      : b.op('Gemm', [dy, w], scaled(tb ? {} : { transB: 1 }));
  }
  let dw: string | undefined;
  if (needs[1]) {
    dw = tb
      ? b.op('Gemm', [dy, a], scaled(ta ? { transA: 1, transB: 1 } : { transA: 1 }))
      : b.op('Gemm', [a, dy], scaled(ta ? {} : { transA: 1 }));
  }
  const dc = c && needs[2] ? b.unbroadcast(beta === 1 ? dy : b.op('Mul', [dy, b.scalar(beta)]), c, node.outputs[0]!) : undefined;
  return [da, dw, dc];
};
