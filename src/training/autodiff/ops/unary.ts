// One-input elementwise ops. Where the slope can be computed from forward values alone it is (a mask, 1 - y^2),
// so that the backward session only multiplies.
import { floatAttribute, stringAttribute } from '../model-graph.js';
import type { GradientRule } from './rule.js';

type Slope = (b: Parameters<GradientRule>[0]['b'], x: string, y: string) => string;

/** dx = dy * slope(x, y). */
function bySlope(slope: Slope): GradientRule {
  return ({ node, b, dOut: [dy], needs }) => (dy && needs[0] ? [b.op('Mul', [dy, slope(b, node.inputs[0]!, node.outputs[0]!)])] : []);
}

export const identity: GradientRule = ({ dOut: [dy], needs }) => (needs[0] ? [dy] : []);

export const neg: GradientRule = ({ b, dOut: [dy], needs }) => (dy && needs[0] ? [b.op('Neg', [dy])] : []);

/** Relu keeps a boolean mask (a quarter of a float tensor) for the backward pass. */
export const relu: GradientRule = ({ node, b, dOut: [dy], needs }) =>
  dy && needs[0] ? [b.op('Where', [b.op('Greater', [node.inputs[0]!, b.scalar(0)]), dy, b.scalar(0)])] : [];

export const leakyRelu: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const alpha = floatAttribute(node, 'alpha', 0.01);
  return [b.op('Where', [b.op('Greater', [node.inputs[0]!, b.scalar(0)]), dy, b.op('Mul', [dy, b.scalar(alpha)])])];
};

export const tanh = bySlope((b, _x, y) => b.op('Sub', [b.scalar(1), b.op('Mul', [y, y])]));
export const sigmoid = bySlope((b, _x, y) => b.op('Mul', [y, b.op('Sub', [b.scalar(1), y])]));
export const exp = bySlope((_b, _x, y) => y);
export const sqrt = bySlope((b, _x, y) => b.op('Div', [b.scalar(0.5), y]));
export const reciprocal = bySlope((b, _x, y) => b.op('Neg', [b.op('Mul', [y, y])]));
export const abs = bySlope((b, x) => b.op('Sign', [x]));
export const sin = bySlope((b, x) => b.op('Cos', [x]));
export const cos = bySlope((b, x) => b.op('Neg', [b.op('Sin', [x])]));
export const log: GradientRule = ({ node, b, dOut: [dy], needs }) => (dy && needs[0] ? [b.op('Div', [dy, node.inputs[0]!])] : []);

/** erf'(x) = 2 / sqrt(pi) * exp(-x^2). */
export const erf = bySlope((b, x) => b.op('Mul', [b.scalar(2 / Math.sqrt(Math.PI)), b.op('Exp', [b.op('Neg', [b.op('Mul', [x, x])])])]));

/**
 * Gelu (ONNX opset 20, or com.microsoft's exact Gelu). Exact: Phi(x) + x phi(x). approximate="tanh":
 * y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3): y' = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
 */
export const gelu: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy || !needs[0]) return [];
  const x = node.inputs[0]!;
  let slope: string;
  if (stringAttribute(node, 'approximate', 'none') === 'tanh') {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = b.op('Mul', [x, x]);
    const u = b.op('Mul', [b.scalar(c), b.op('Add', [x, b.op('Mul', [b.scalar(0.044715), b.op('Mul', [x2, x])])])]);
    const t = b.op('Tanh', [u]);
    const du = b.op('Mul', [b.scalar(c), b.op('Add', [b.scalar(1), b.op('Mul', [b.scalar(3 * 0.044715), x2])])]);
    const half = b.scalar(0.5);
    slope = b.op('Add', [
      b.op('Mul', [half, b.op('Add', [b.scalar(1), t])]),
      b.op('Mul', [b.op('Mul', [half, x]), b.op('Mul', [b.op('Sub', [b.scalar(1), b.op('Mul', [t, t])]), du])]),
    ]);
  } else {
    const cdf = b.op('Mul', [b.scalar(0.5), b.op('Add', [b.scalar(1), b.op('Erf', [b.op('Mul', [x, b.scalar(Math.SQRT1_2)])])])]);
    const pdf = b.op('Mul', [b.scalar(1 / Math.sqrt(2 * Math.PI)), b.op('Exp', [b.op('Mul', [b.op('Mul', [x, x]), b.scalar(-0.5)])])]);
    slope = b.op('Add', [cdf, b.op('Mul', [x, pdf])]);
  }
  return [b.op('Mul', [dy, slope])];
};

/** Clip(x, min, max): the gradient goes to x where it lies within the bounds, to a bound where x is beyond it. */
export const clip: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [x, low, high] = node.inputs as [string, string | undefined, string | undefined];
  const y = node.outputs[0]!;
  const zero = b.scalar(0);
  const below = low ? b.op('Less', [x, low]) : undefined;
  const above = high ? b.op('Greater', [x, high]) : undefined;
  const outside = below && above ? b.op('Or', [below, above]) : (below ?? above);
  return [
    needs[0] ? (outside ? b.op('Where', [outside, zero, dy]) : dy) : undefined,
    low && below && needs[1] ? b.unbroadcast(b.op('Where', [below, dy, zero]), low, y) : undefined,
    high && above && needs[2] ? b.unbroadcast(b.op('Where', [above, dy, zero]), high, y) : undefined,
  ];
};

/** Cast between float32 values passes the gradient (casts to other float types are refused before rules run). */
export const cast = identity;

/** Dropout as exported for inference (no training_mode): identity on its first output. */
export const dropout = identity;

/** Floor, Ceil, Round, Sign: zero gradient almost everywhere. */
export const zero: GradientRule = () => [];
