// LayerNormalization, Softmax, LogSoftmax.
import { intAttribute } from '../model-graph.js';
import type { GradientRule } from './rule.js';

/** Axes [axis, rank): the normalised (or soft-maxed) trailing axes; negative when the rank is not needed. */
function trailingAxes(axis: number, rank: number | undefined): number[] | undefined {
  if (axis < 0) return Array.from({ length: -axis }, (_, i) => axis + i);
  if (rank === undefined) return undefined;
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/**
 * y = xhat * scale + bias with xhat = (x - mean) * invstd over the trailing axes. The node is asked for its optional
 * Mean and InvStdDev outputs (ONNX LayerNormalization-17 has them), so nothing is recomputed:
 *   dbias = sum dy, dscale = sum dy * xhat (over the leading axes),
 *   dx = invstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * scale.
 */
export const layerNormalization: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [x, scale, bias] = node.inputs as [string, string, string | undefined];
  const y = node.outputs[0]!;
  const axes = trailingAxes(intAttribute(node, 'axis', -1), b.rankOf(x));
  if (!axes) throw b.unsupported(node, 'a non-negative axis needs the input rank, which the graph does not tell');
  const [, mean, invStd] = b.extendOutputs(node, 3) as [string, string, string];
  const xhat = b.op('Mul', [b.op('Sub', [x, mean]), invStd]);
  let dx: string | undefined;
  if (needs[0]) {
    const g = b.op('Mul', [dy, scale]);
    const m1 = b.reduceMean(g, axes, true);
    const m2 = b.reduceMean(b.op('Mul', [g, xhat]), axes, true);
    dx = b.op('Mul', [b.op('Sub', [b.op('Sub', [g, m1]), b.op('Mul', [xhat, m2])]), invStd]);
  }
  const dScale = needs[1] ? b.unbroadcast(b.op('Mul', [dy, xhat]), scale, y) : undefined;
  const dBias = bias && needs[2] ? b.unbroadcast(dy, bias, y) : undefined;
  return [dx, dScale, dBias];
};

/** Softmax axis: one axis from opset 13; before, the input was flattened from `axis` on (default 1). */
function softmaxAxes(opset: number, axis: number | undefined, rank: number | undefined): number[] | undefined {
  if (opset >= 13) return [axis ?? -1];
  return trailingAxes(axis ?? 1, rank);
}

/** dx = y * (dy - sum(dy * y)) over the softmax axis. */
export const softmax: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const y = node.outputs[0]!;
  const axes = softmaxAxes(b.opset, node.proto.attribute?.some((a) => a.name === 'axis') ? intAttribute(node, 'axis', -1) : undefined, b.rankOf(y));
  if (!axes) throw b.unsupported(node, 'the input rank is needed for this opset');
  return [b.op('Mul', [y, b.op('Sub', [dy, b.reduceSum(b.op('Mul', [dy, y]), axes, true)])])];
};

/** dx = dy - exp(y) * sum(dy) over the axis. */
export const logSoftmax: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const y = node.outputs[0]!;
  const axes = softmaxAxes(b.opset, node.proto.attribute?.some((a) => a.name === 'axis') ? intAttribute(node, 'axis', -1) : undefined, b.rankOf(y));
  if (!axes) throw b.unsupported(node, 'the input rank is needed for this opset');
  return [b.op('Sub', [dy, b.op('Mul', [b.op('Exp', [y]), b.reduceSum(dy, axes, true)])])];
};
