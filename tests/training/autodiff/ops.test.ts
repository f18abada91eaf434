// Every gradient rule against central finite differences, on tiny graphs whose operands are trainable initializers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { OnnxGraphBuilder, floatAttr } from '../../../src/onnx/graph-builder.js';
import { DifferentiableGraph, UnsupportedGradientError } from '../../../src/training/autodiff/index.js';
import { mulberry32 } from '../../helpers/hf-fixtures.js';
import { checkModel, describe, uniform, type Feeds } from './finite-differences.js';

const MODES = ['stored', 'recomputed'] as const;

interface Case {
  name: string;
  opset?: number;
  extraOpsets?: Record<string, number>;
  /** Builds the graph on `g` with `w(name, dims, low, high)` for trainable initializers; returns the output names. */
  build: (g: OnnxGraphBuilder, w: (name: string, dims: number[], low?: number, high?: number) => string) => string[];
  feeds?: () => Feeds;
  step?: number;
}

function modelOf(c: Case): { bytes: Uint8Array; outputs: string[] } {
  const g = new OnnxGraphBuilder({ name: c.name, opset: c.opset ?? 17, ...(c.extraOpsets ? { extraOpsets: c.extraOpsets } : {}) });
  const random = mulberry32(c.name.length * 7919 + 11);
  const w = (name: string, dims: number[], low = -1, high = 1) => g.initializer(name, uniform(dims.reduce((a, b) => a * b, 1), random, low, high), dims);
  const outputs = c.build(g, w);
  for (const o of outputs) g.output(o, 'float32', []);
  return { bytes: withoutOutputShapes(g.toBytes()), outputs };
}

/** The builder needs output dims; these graphs declare none (rank and sizes come from the nodes). */
function withoutOutputShapes(bytes: Uint8Array): Uint8Array {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(bytes);
  for (const output of model.graph!.output ?? []) delete output.type!.tensorType!.shape;
  return onnx.ModelProto.encode(model).finish();
}

const CASES: Case[] = [
  {
    name: 'Add, Sub, Mul, Div with broadcasting on both sides',
    build: (g, w) => {
      const y1 = g.op('Add', [w('a', [2, 3, 4]), w('b', [4])]);
      const y2 = g.op('Sub', [w('c', [3, 1]), y1]);
      const y3 = g.op('Mul', [y2, w('d', [2, 1, 4])]);
      return [g.op('Div', [y3, w('e', [1], 1, 2)], { output: 'y' })];
    },
  },
  {
    name: 'a value used by several nodes, and a node reading one value twice',
    build: (g, w) => {
      const a = w('a', [3, 4]);
      return [g.op('Add', [g.op('Mul', [a, a]), g.op('Tanh', [a])], { output: 'y' }), g.op('Sub', [a, w('b', [4])], { output: 'z' })];
    },
  },
  {
    name: 'shapes only known at run time (dynamic broadcast reduction)',
    build: (g, w) => {
      const q = w('q', [2, 3]);
      const v = g.op('Reshape', [q, g.op('Shape', [q])]); // static shape unknown: [null, null]
      return [g.op('Mul', [g.op('Add', [v, w('p', [2, 1])]), w('r', [3])], { output: 'y' })];
    },
  },
  {
    name: 'MatMul: dense layer (3-D x 2-D), attention (4-D x 4-D), broadcast batch (2-D x 3-D)',
    build: (g, w) => [
      g.op('MatMul', [w('x', [2, 3, 4]), w('w', [4, 5])], { output: 'dense' }),
      g.op('MatMul', [w('q', [2, 2, 3, 4]), w('k', [2, 2, 4, 3])], { output: 'attention' }),
      g.op('MatMul', [w('l', [3, 4]), w('r', [2, 4, 2])], { output: 'batched' }),
    ],
  },
  {
    name: 'Gemm with transposes, alpha, beta and a broadcast C',
    build: (g, w) => [
      g.op('Gemm', [w('a', [3, 4]), w('b', [4, 2]), w('c', [2])], { output: 'plain' }),
      g.op('Gemm', [w('at', [4, 3]), w('bt', [2, 4]), w('c2', [3, 1])], { output: 'both', attrs: { transA: 1, transB: 1, alpha: floatAttr(0.5), beta: floatAttr(2) } }),
      g.op('Gemm', [w('at2', [4, 3]), w('b2', [4, 2])], { output: 'transA', attrs: { transA: 1 } }),
      g.op('Gemm', [w('a3', [3, 4]), w('bt3', [2, 4])], { output: 'transB', attrs: { transB: 1 } }),
    ],
  },
  {
    name: 'LayerNormalization over the last axis and over two axes',
    build: (g, w) => [
      g.op('LayerNormalization', [w('x', [2, 3, 5]), w('scale', [5], 0.5, 1.5), w('bias', [5])], { output: 'last', attrs: { axis: -1, epsilon: floatAttr(1e-5) } }),
      g.op('LayerNormalization', [w('x2', [2, 3, 4]), w('scale2', [3, 4], 0.5, 1.5), w('bias2', [3, 4])], { output: 'two', attrs: { axis: 1, epsilon: floatAttr(1e-5) } }),
    ],
  },
  {
    name: 'Softmax and LogSoftmax',
    build: (g, w) => [
      g.op('Softmax', [w('x', [2, 3, 4], -2, 2)], { output: 'last', attrs: { axis: -1 } }),
      g.op('Softmax', [w('x2', [2, 3, 4], -2, 2)], { output: 'middle', attrs: { axis: 1 } }),
      g.op('LogSoftmax', [w('x3', [3, 4], -2, 2)], { output: 'log', attrs: { axis: -1 } }),
    ],
  },
  {
    name: 'unary ops',
    build: (g, w) => {
      const x = w('x', [7], -2, 2);
      const positive = w('p', [7], 0.5, 2);
      const away = w('r', [7], 0.3, 1); // kept away from Relu/Abs kinks
      const negAway = g.op('Neg', [w('r2', [7], 0.3, 1)]);
      return [
        g.op('Tanh', [x], { output: 'tanh' }),
        g.op('Sigmoid', [x], { output: 'sigmoid' }),
        g.op('Erf', [x], { output: 'erf' }),
        g.op('Exp', [x], { output: 'exp' }),
        g.op('Sin', [x], { output: 'sin' }),
        g.op('Cos', [x], { output: 'cos' }),
        g.op('Sqrt', [positive], { output: 'sqrt' }),
        g.op('Log', [positive], { output: 'log' }),
        g.op('Reciprocal', [positive], { output: 'reciprocal' }),
        g.op('Relu', [g.op('Concat', [away, negAway], { attrs: { axis: 0 } })], { output: 'relu' }),
        g.op('LeakyRelu', [g.op('Concat', [away, negAway], { attrs: { axis: 0 } })], { output: 'leaky', attrs: { alpha: floatAttr(0.1) } }),
        g.op('Abs', [negAway], { output: 'abs' }),
        g.op('Identity', [g.op('Cast', [x], { attrs: { to: 1 } })], { output: 'identity' }),
        g.op('Gelu', [x], { output: 'gelu', domain: 'com.microsoft' }),
      ];
    },
    extraOpsets: { 'com.microsoft': 1 },
  },
  {
    name: 'Gelu of opset 20, exact and tanh-approximated',
    opset: 20,
    build: (g, w) => [
      g.op('Gelu', [w('x', [6], -2, 2)], { output: 'exact' }),
      g.op('Gelu', [w('x2', [6], -2, 2)], { output: 'tanh', attrs: { approximate: 'tanh' } }),
    ],
  },
  {
    name: 'Pow (constant 2 and a trainable exponent), Max, Min, Where, Clip',
    build: (g, w) => {
      const x = w('x', [6], 0.5, 2);
      const two = g.floats('two', [2], []);
      const mask = g.initializer('mask', Uint8Array.of(1, 0, 1, 1, 0, 0), [6]);
      const boolMask = g.op('Cast', [mask], { attrs: { to: 9 } });
      return [
        g.op('Pow', [x, two], { output: 'square' }),
        g.op('Pow', [w('base', [6], 0.5, 2), w('exponent', [1], 0.5, 1.5)], { output: 'power' }),
        // Operands at least 0.3 apart: a step never swaps which one wins.
        g.op('Max', [g.floats('m1', [0.1, -0.5, 0.9, 0.3, -0.2, 0.7], [6]), g.op('Neg', [g.floats('m2', [-0.4, 0.9, -0.2, -0.6, -0.5, 0.1], [6])])], { output: 'max' }),
        g.op('Min', [w('n1', [2, 3]), w('n2', [3])], { output: 'min' }),
        g.op('Where', [boolMask, w('wx', [6]), w('wy', [1])], { output: 'where' }),
        g.op('Clip', [w('c', [6], -2, 2), g.floats('low', [-0.9], []), g.floats('high', [0.9], [])], { output: 'clip' }),
      ];
    },
  },
  {
    name: 'ReduceSum and ReduceMean, kept and dropped axes (opset 17: ReduceMean axes as attribute)',
    build: (g, w) => [
      g.op('ReduceSum', [w('x', [2, 3, 4]), g.int64s('axes', [1])], { output: 'sum_keep', attrs: { keepdims: 1 } }),
      g.op('ReduceSum', [w('x2', [2, 3, 4]), g.int64s('axes2', [0, -1])], { output: 'sum_drop', attrs: { keepdims: 0 } }),
      g.op('ReduceSum', [w('x3', [2, 3])], { output: 'sum_all', attrs: { keepdims: 0 } }),
      g.op('ReduceMean', [w('x4', [2, 3, 4])], { output: 'mean', attrs: { axes: [-1], keepdims: 0 } }),
    ],
  },
  {
    name: 'ReduceMean with axes as an input (opset 18)',
    opset: 18,
    build: (g, w) => [g.op('ReduceMean', [w('x', [2, 3, 4]), g.int64s('axes', [1, 2])], { output: 'mean', attrs: { keepdims: 1 } })],
  },
  {
    name: 'Reshape, Transpose, Unsqueeze, Squeeze, Flatten, Expand',
    build: (g, w) => [
      g.op('Transpose', [g.op('Reshape', [w('x', [2, 6]), g.int64s('shape', [2, 3, 2])])], { output: 'transposed', attrs: { perm: [2, 0, 1] } }),
      g.op('Squeeze', [g.op('Unsqueeze', [w('u', [3]), g.int64s('axes', [0, 2])]), g.int64s('axes0', [0])], { output: 'squeezed' }),
      g.op('Flatten', [w('f', [2, 2, 3])], { output: 'flat', attrs: { axis: 2 } }),
      g.op('Expand', [w('e', [3, 1]), g.int64s('to', [2, 3, 4])], { output: 'expanded' }),
      g.op('Transpose', [w('t', [2, 3])], { output: 'reversed' }),
    ],
  },
  {
    name: 'Split (one part unused), Concat (with a constant part), Slice',
    build: (g, w) => {
      const [first, , third] = g.node('Split', [w('x', [2, 7]), g.int64s('split', [2, 3, 2])], { outputs: 3, attrs: { axis: 1 } }) as [string, string, string];
      return [
        g.op('Add', [first, third], { output: 'split_sum' }),
        g.op('Concat', [w('a', [2, 2]), g.floats('constant', [1, 2, 3, 4, 5, 6], [2, 3]), w('b', [2, 1])], { output: 'concat', attrs: { axis: -1 } }),
        g.op('Slice', [w('s', [3, 5]), g.int64s('starts', [-4, 1]), g.int64s('ends', [100, 3]), g.int64s('axes', [1, 0])], { output: 'slice' }),
      ];
    },
  },
  {
    name: 'Gather: an embedding table (rows, repeated ids), a computed value on axis 1, and a table also used densely',
    opset: 17,
    build: (g, w) => {
      const ids = g.int64s('ids', [3, 1, 3, 0, -1, 3], [2, 3]);
      const table = w('table', [5, 4]);
      const hidden = g.op('Tanh', [w('h', [2, 3, 4])]);
      const tied = w('tied', [5, 2]);
      return [
        g.op('Gather', [table, ids], { output: 'embedded' }),
        g.op('Gather', [hidden, g.int64s('first', [0], [])], { output: 'first_token', attrs: { axis: 1 } }),
        g.op('Gather', [hidden, g.int64s('pair', [2, -3], [2])], { output: 'pair_out', attrs: { axis: 2 } }),
        g.op('Add', [g.op('Gather', [tied, g.int64s('tied_ids', [4, 4, 0], [3])]), g.op('ReduceSum', [tied, g.int64s('axes', [0])], { attrs: { keepdims: 0 } })], { output: 'tied_out' }),
      ];
    },
  },
  {
    name: 'non-differentiable paths (Shape, Cast to int, comparisons, ConstantOfShape, Range, Equal) are skipped',
    build: (g, w) => {
      const x = g.floats('x', [0.2, 0.9, 0.3, 0.8, 0.35, 0.95], [2, 3]); // away from the 0.6 threshold
      const positive = g.op('Cast', [g.op('Greater', [x, g.floats('threshold', [0.6], [])])], { attrs: { to: 1 } });
      const count = g.op('Cast', [g.op('Cast', [g.op('Mul', [x, g.floats('nothing', [0], [])])], { attrs: { to: 7 } })], { attrs: { to: 1 } });
      const zeros = g.op('ConstantOfShape', [g.op('Shape', [x])]);
      const range = g.op('Cast', [g.op('Range', [g.int64s('zero', [0], []), g.op('Gather', [g.op('Shape', [x]), g.int64s('one', [1], [])]), g.int64s('step', [1], [])])], { attrs: { to: 1 } });
      const same = g.op('Cast', [g.op('Equal', [x, x])], { attrs: { to: 1 } });
      return [g.op('Add', [g.op('Mul', [g.op('Mul', [x, positive]), g.op('Add', [count, same])]), g.op('Add', [zeros, range])], { output: 'y' })];
    },
  },
];

for (const c of CASES) {
  for (const mode of MODES) {
    test(`${c.name} (${mode})`, async () => {
      const { bytes, outputs } = modelOf(c);
      const { bad, checked, graph } = await checkModel(bytes, outputs, c.feeds?.() ?? {}, { mode, step: c.step });
      await graph.release();
      assert.ok(checked > 0);
      assert.deepEqual(bad, [], describe(bad));
    });
  }
}

test('an embedding table read only through Gather gets a rows gradient: unique ids ascending, repeated ids summed', async () => {
  const g = new OnnxGraphBuilder({ name: 'rows' });
  const table = g.initializer('table', Float32Array.from({ length: 12 }, (_, i) => i / 10), [6, 2]);
  g.input('ids', 'int64', ['n']);
  g.op('Gather', [table, 'ids'], { output: 'out' });
  g.output('out', 'float32', ['n', 2]);
  const graph = await DifferentiableGraph.create(g.toBytes(), { outputs: ['out'], trainable: () => true });
  await graph.forward({ ids: new ort.Tensor('int64', BigInt64Array.from([4n, 1n, 4n, -1n]), [4]) });
  const gradient = graph.backward({ out: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) });
  const result = (await gradient).get('table')!;
  assert.equal(result.kind, 'rows');
  if (result.kind !== 'rows') return;
  assert.deepEqual([...result.rows], [1, 4, 5]);
  assert.deepEqual([...result.values], [3, 4, 1 + 5, 2 + 6, 7, 8]);
  await graph.release();
});

test('an op on a differentiable path without a rule is an error naming the op and the node', async () => {
  const g = new OnnxGraphBuilder({ name: 'unsupported' });
  const x = g.initializer('x', Float32Array.of(1, 2, 3), [3]);
  g.op('Softplus', [g.op('Tanh', [x])], { output: 'y', name: 'my_softplus' });
  g.output('y', 'float32', [3]);
  await assert.rejects(
    DifferentiableGraph.create(g.toBytes(), { outputs: ['y'], trainable: () => true }),
    (error: Error) => error instanceof UnsupportedGradientError && /my_softplus/.test(error.message) && /Softplus/.test(error.message),
  );
  // The same op off the differentiable path (on a frozen initializer) is fine.
  const frozen = await DifferentiableGraph.create(g.toBytes(), { outputs: ['y'], trainable: () => false });
  assert.equal(frozen.params.length, 0);
  await frozen.release();
});

test('the same feeds and parameters give the same gradients bit for bit (two runs, two instances)', async () => {
  const { bytes, outputs } = modelOf(CASES.find((c) => c.name.startsWith('LayerNormalization'))!);
  const seeds = { last: uniform(30, mulberry32(3)), two: uniform(24, mulberry32(4)) };
  const run = async () => {
    const graph = await DifferentiableGraph.create(bytes, { outputs, trainable: () => true });
    await graph.forward({});
    const first = await graph.backward(seeds);
    await graph.forward({});
    const second = await graph.backward(seeds);
    await graph.release();
    return [first, second];
  };
  const [a, b] = await run();
  const [c] = await run();
  for (const other of [b!, c!]) {
    for (const [name, gradient] of a!) {
      assert.equal(gradient.kind, 'dense');
      const o = other.get(name)!;
      if (gradient.kind === 'dense' && o.kind === 'dense') assert.ok(Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength).equals(Buffer.from(gradient.data.buffer, gradient.data.byteOffset, gradient.data.byteLength)), name);
    }
  }
});

test('a missing seed counts as zero; a seed of the wrong size or an unknown output is an error', async () => {
  const { bytes, outputs } = modelOf(CASES[1]!);
  const graph = await DifferentiableGraph.create(bytes, { outputs, trainable: () => true });
  await graph.forward({});
  const onlyY = await graph.backward({ y: new Float32Array(12).fill(1) });
  const both = await graph.backward({ y: new Float32Array(12).fill(1), z: new Float32Array(12) });
  const b = onlyY.get('b')!;
  assert.ok(b.kind === 'dense' && b.data.every((v) => v === 0));
  for (const [name, gradient] of onlyY) {
    const other = both.get(name)!;
    if (gradient.kind === 'dense' && other.kind === 'dense') assert.deepEqual([...gradient.data], [...other.data]);
  }
  await assert.rejects(graph.backward({ y: new Float32Array(3) }), /12/);
  await assert.rejects(graph.backward({ nope: new Float32Array(3) }), /not one of the outputs/);
  await graph.release();
});

test('a float16 value on a differentiable path is refused (float32 graphs only)', async () => {
  const g = new OnnxGraphBuilder({ name: 'fp16-path' });
  const x = g.initializer('x', Float32Array.of(1, 2, 3), [3]);
  g.op('Cast', [g.op('Relu', [g.op('Cast', [x], { attrs: { to: 10 }, name: 'to_half' })])], { output: 'y', attrs: { to: 1 } });
  g.output('y', 'float32', [3]);
  await assert.rejects(DifferentiableGraph.create(g.toBytes(), { outputs: ['y'], trainable: () => true }), /float32/);
});
