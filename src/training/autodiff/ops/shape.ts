// Ops that only move values: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Split, Concat, Slice.
import { intAttribute, intsAttribute } from '../model-graph.js';
import type { GradientRule } from './rule.js';

/** Reshape, Flatten, Squeeze, Unsqueeze: the gradient takes the input's shape back. */
export const reshape: GradientRule = ({ node, b, dOut: [dy], needs }) => (dy && needs[0] ? [b.reshapeLike(dy, node.inputs[0]!)] : []);

export const transpose: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const perm = intsAttribute(node, 'perm');
  if (!perm) return [b.op('Transpose', [dy])]; // the default reverses the axes: its own inverse
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return [b.op('Transpose', [dy], { perm: inverse })];
};

export const expand: GradientRule = ({ node, b, dOut: [dy], needs }) => (dy && needs[0] ? [b.unbroadcast(dy, node.inputs[0]!, node.outputs[0]!)] : []);

/** Split: the outputs' gradients concatenated (zeros for outputs that got none). */
export const split: GradientRule = ({ node, b, dOut, needs }) => {
  if (!needs[0]) return [];
  const parts = node.outputs.map((output, i) => dOut[i] ?? b.zerosLike(output));
  return [b.op('Concat', parts, { axis: intAttribute(node, 'axis', 0) })];
};

/** Concat: the gradient split at the inputs' sizes along the axis. */
export const concat: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const axis = intAttribute(node, 'axis', 0);
  const sizes = node.inputs.map((input) => {
    const shape = b.shapeOf(input);
    const rank = shape?.length;
    const d = shape && rank !== undefined ? shape[axis < 0 ? axis + rank : axis] : undefined;
    return typeof d === 'number' ? d : undefined;
  });
  const splitSizes = sizes.every((s) => s !== undefined)
    ? b.ints(sizes as number[])
    : b.op('Concat', node.inputs.map((input) => b.op('Gather', [b.shape(input), b.ints([axis])])), { axis: 0 });
  const parts = b.node('Split', [dy, splitSizes], { axis }, node.inputs.length);
  return parts.map((part, i) => (needs[i] ? part : undefined));
};

/**
 * Slice with unit steps: the gradient is dy padded with zeros back to the input's extent. The begin padding of a
 * sliced axis is its start clamped to [0, d] (negative starts count from the end), the end padding d minus the
 * clamped end.
 */
export const slice: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const [x, starts, ends, axesName, stepsName] = node.inputs as [string, string, string, string | undefined, string | undefined];
  if (b.opset < 10) throw b.unsupported(node, 'Slice before opset 10 (attributes) is not supported');
  const rank = b.rankOf(x);
  if (rank === undefined) throw b.unsupported(node, 'the input rank must be known');
  const steps = stepsName ? b.graph.constantValues(stepsName) : undefined;
  if (stepsName && (!steps || steps.some((s) => s !== 1))) throw b.unsupported(node, 'only constant unit steps are supported');
  const count = b.graph.shapes.get(starts)?.[0];
  const axes = axesName ? b.graph.constantValues(axesName) : typeof count === 'number' ? Array.from({ length: count }, (_, i) => i) : undefined;
  if (!axes) throw b.unsupported(node, 'the sliced axes must be constant');
  const shape = b.shape(x);
  const zero = b.ints([0]);
  const begins: string[] = Array.from({ length: rank }, () => zero);
  const finals: string[] = Array.from({ length: rank }, () => zero);
  const clamp = (value: string, d: string) => {
    const wrapped = b.op('Where', [b.op('Less', [value, zero]), b.op('Add', [value, d]), value]);
    return b.op('Min', [b.op('Max', [wrapped, zero]), d]);
  };
  axes.forEach((a, j) => {
    const axis = a < 0 ? a + rank : a;
    const d = b.op('Gather', [shape, b.ints([axis])]);
    const pick = (name: string) => b.op('Cast', [b.op('Gather', [name, b.ints([j])])], { to: 7 });
    const start = clamp(pick(starts), d);
    const end = b.op('Max', [clamp(pick(ends), d), start]);
    begins[axis] = start;
    finals[axis] = b.op('Sub', [d, end]);
  });
  const pads = b.op('Concat', [...begins, ...finals], { axis: 0 });
  return [b.op('Pad', [dy, pads])];
};
