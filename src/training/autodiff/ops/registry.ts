// The gradient rule of each supported op type, by domain ('' is ai.onnx).
import * as elementwise from './elementwise.js';
import { gather } from './gather.js';
import { gemm, matmul } from './matmul.js';
import { layerNormalization, logSoftmax, softmax } from './normalization.js';
import { reduceMean, reduceSum } from './reduce.js';
import type { GradientRule } from './rule.js';
import * as shape from './shape.js';
import * as unary from './unary.js';

const onnxRules: Record<string, GradientRule> = {
  Add: elementwise.add,
  Sub: elementwise.sub,
  Mul: elementwise.mul,
  Div: elementwise.div,
  Pow: elementwise.pow,
  Sum: elementwise.sum,
  Max: elementwise.max,
  Min: elementwise.min,
  Where: elementwise.where,
  Identity: unary.identity,
  Neg: unary.neg,
  Relu: unary.relu,
  LeakyRelu: unary.leakyRelu,
  Tanh: unary.tanh,
  Sigmoid: unary.sigmoid,
  Exp: unary.exp,
  Log: unary.log,
  Sqrt: unary.sqrt,
  Reciprocal: unary.reciprocal,
  Abs: unary.abs,
  Sin: unary.sin,
  Cos: unary.cos,
  Erf: unary.erf,
  Gelu: unary.gelu,
  Clip: unary.clip,
  Cast: unary.cast,
  Dropout: unary.dropout,
  Floor: unary.zero,
  Ceil: unary.zero,
  Round: unary.zero,
  Sign: unary.zero,
  MatMul: matmul,
  Gemm: gemm,
  LayerNormalization: layerNormalization,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  ReduceSum: reduceSum,
  ReduceMean: reduceMean,
  Reshape: shape.reshape,
  Flatten: shape.reshape,
  Squeeze: shape.reshape,
  Unsqueeze: shape.reshape,
  Transpose: shape.transpose,
  Expand: shape.expand,
  Split: shape.split,
  Concat: shape.concat,
  Slice: shape.slice,
  Gather: gather,
};

const microsoftRules: Record<string, GradientRule> = {
  Gelu: unary.gelu,
};

export function gradientRule(domain: string, opType: string): GradientRule | undefined {
  if (domain === '' || domain === 'ai.onnx') return Object.hasOwn(onnxRules, opType) ? onnxRules[opType] : undefined;
  if (domain === 'com.microsoft') return Object.hasOwn(microsoftRules, opType) ? microsoftRules[opType] : undefined;
  return undefined;
}

/** Every op type with a rule, for documentation and error messages. */
export function supportedOps(): string[] {
  return [...Object.keys(onnxRules), ...Object.keys(microsoftRules).map((op) => `com.microsoft.${op}`)].sort();
}
