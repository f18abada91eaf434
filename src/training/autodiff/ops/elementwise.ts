// Broadcasting arithmetic: Add, Sub, Mul, Div, Pow, Sum, Max, Min, Where. Each operand's gradient is reduced
// back to its own shape (GradientBuilder.unbroadcast).
import { DataType } from '../model-graph.js';
import type { GradientRule } from './rule.js';

export const add: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  return node.inputs.map((x, i) => (needs[i] ? b.unbroadcast(dy, x, node.outputs[0]!) : undefined));
};

/** Sum is n-ary Add. */
export const sum = add;

export const sub: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [x, y] = node.inputs as [string, string];
  const out = node.outputs[0]!;
  return [needs[0] ? b.unbroadcast(dy, x, out) : undefined, needs[1] ? b.unbroadcast(b.op('Neg', [dy]), y, out) : undefined];
};

export const mul: GradientRule = ({ node, b, dOut: [dy], needs }) => {
  if (!dy) return [];
  const [x, y] = node.inputs as [string, string];
  const out = node.outputs[0]!;
  return [
    needs[0] ? b.unbroadcast(b.op('Mul', [dy, y]), x, out) : undefined,
    needs[1] ? b.unbroadcast(b.op('Mul', [dy, x]), y, out) : undefined,
  ];
};

/** z = x / y: dx = dz / y, dy = -dz * z / y. */
export const div: GradientRule = ({ node, b, dOut: [dz], needs }) => {
  if (!dz) return [];
  const [x, y] = node.inputs as [string, string];
  const z = node.outputs[0]!;
  return [
    needs[0] ? b.unbroadcast(b.op('Div', [dz, y]), x, z) : undefined,
    needs[1] ? b.unbroadcast(b.op('Neg', [b.op('Mul', [dz, b.op('Div', [z, y])])]), y, z) : undefined,
  ];
};

/** z = x ^ e: dx = dz * e * x^(e-1), de = dz * z * ln(x). */
export const pow: GradientRule = ({ node, b, dOut: [dz], needs }) => {
  if (!dz) return [];
  const [x, e] = node.inputs as [string, string];
  const z = node.outputs[0]!;
  const exponent = b.graph.constantValues(e);
  let dx: string | undefined;
  if (needs[0]) {
    const ef = b.dtypeOf(e) === DataType.FLOAT ? e : b.op('Cast', [e], { to: DataType.FLOAT });
    // Pow(x, 2) (decomposed layer norms and variances): dx = 2x dz, without a Pow.
    const slope =
      exponent?.length === 1 && exponent[0] === 2
        ? b.op('Mul', [x, b.scalar(2)])
        : b.op('Mul', [ef, b.op('Pow', [x, b.op('Sub', [ef, b.scalar(1)])])]);
    dx = b.unbroadcast(b.op('Mul', [dz, slope]), x, z);
  }
  const de = needs[1] ? b.unbroadcast(b.op('Mul', [dz, b.op('Mul', [z, b.op('Log', [x])])]), e, z) : undefined;
  return [dx, de];
};

/**
 * Max and Min route the gradient to the first operand that attains the result (ties do not split it), the
 * convention of a two-way select.
 */
function extremum(): GradientRule {
  return ({ node, b, dOut: [dy], needs }) => {
    if (!dy) return [];
    const out = node.outputs[0]!;
    const zero = b.scalar(0);
    let taken: string | undefined;
    return node.inputs.map((x, i) => {
      const attains = b.op('Equal', [x, out]);
      const mine = taken ? b.op('And', [attains, b.op('Not', [taken])]) : attains;
      taken = taken ? b.op('Or', [taken, mine]) : mine;
      return needs[i] ? b.unbroadcast(b.op('Where', [mine, dy, zero]), x, out) : undefined;
    });
  };
}

export const max = extremum();
export const min = extremum();

/** Where(condition, x, y): the condition is not differentiable. */
export const where: GradientRule = ({ node, b, dOut: [dz], needs }) => {
  if (!dz) return [];
  const [condition, x, y] = node.inputs as [string, string, string];
  const z = node.outputs[0]!;
  const zero = b.scalar(0);
  return [
    undefined,
    needs[1] ? b.unbroadcast(b.op('Where', [condition, dz, zero]), x, z) : undefined,
    needs[2] ? b.unbroadcast(b.op('Where', [condition, zero, dz]), y, z) : undefined,
  ];
};
