// ReduceSum and ReduceMean: the gradient is the (scaled) upstream gradient expanded back over the reduced axes.
import { intAttribute, intsAttribute } from '../model-graph.js';
import type { RuleContext, GradientRule } from './rule.js';

function reduceGradient({ node, b, dOut: [dy], needs }: RuleContext, mean: boolean): Array<string | undefined> {
  if (!dy || !needs[0]) return [];
  const x = node.inputs[0]!;
  const y = node.outputs[0]!;
  const axesAsInput = node.opType === 'ReduceSum' ? b.opset >= 13 : b.opset >= 18;
  const axesInput = axesAsInput ? node.inputs[1] || undefined : undefined;
  const axesAttr = axesAsInput ? undefined : intsAttribute(node, 'axes');
  const constantAxes = axesInput ? b.graph.constantValues(axesInput) : axesAttr;
  const noAxes = constantAxes?.length === 0 || (axesInput === undefined && (axesAttr === undefined || axesAttr.length === 0));
  if (noAxes && intAttribute(node, 'noop_with_empty_axes', 0) === 1) return [dy];
  let grad = dy;
  if (mean) {
    const count = b.op('Div', [b.op('Cast', [b.op('Size', [x])], { to: 1 }), b.op('Cast', [b.op('Size', [y])], { to: 1 })]);
    grad = b.op('Div', [grad, count]);
  }
  if (intAttribute(node, 'keepdims', 1) === 0 && !noAxes) {
    grad = b.unsqueeze(grad, constantAxes ?? axesInput!);
  }
  // With every axis reduced, dy is a scalar (keepdims 0) or all ones (keepdims 1): Expand handles both.
  return [b.op('Expand', [grad, b.shape(x)])];
}

export const reduceSum: GradientRule = (context) => reduceGradient(context, false);
export const reduceMean: GradientRule = (context) => reduceGradient(context, true);
