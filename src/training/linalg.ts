// The two large matrix products of head training (features x first-layer weights, and its weight gradient),
// behind one small interface: a plain TypeScript implementation (tests, tiny problems) and one that runs
// them through onnxruntime (MLAS kernels, ~100x faster than scalar JS loops), which is what the trainers
// use by default. Both are deterministic for a fixed thread count.
import { OnnxSession, float32Tensor, type SessionOptions } from '../engine/onnx-runtime.js';
import { OnnxGraphBuilder } from '../onnx/graph-builder.js';

export interface MatMulBackend {
  readonly name: string;
  /** C[m, n] = A[m, k] * B[k, n] (row-major). */
  matmul(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Promise<Float32Array>;
  /** C[k, n] = A[m, k]^T * B[m, n] (row-major): the weight gradient of a dense layer. */
  matmulTransA(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Scalar TypeScript loops (float32 storage, float64 accumulation in the inner dot products). */
export const jsBackend: MatMulBackend = {
  name: 'js',
  async matmul(a, m, k, b, n) {
    const c = new Float32Array(m * n);
    const row = new Float64Array(n);
    for (let r = 0; r < m; r++) {
      row.fill(0);
      for (let i = 0; i < k; i++) {
        const x = a[r * k + i]!;
        if (x === 0) continue;
        const base = i * n;
        for (let j = 0; j < n; j++) row[j]! += x * b[base + j]!;
      }
      for (let j = 0; j < n; j++) c[r * n + j] = row[j]!;
    }
    return c;
  },
  async matmulTransA(a, m, k, b, n) {
    const c = new Float64Array(k * n);
    for (let r = 0; r < m; r++) {
      for (let i = 0; i < k; i++) {
        const x = a[r * k + i]!;
        if (x === 0) continue;
        const base = i * n;
        const brow = r * n;
        for (let j = 0; j < n; j++) c[base + j]! += x * b[brow + j]!;
      }
    }
    return Float32Array.from(c);
  },
  async release() {},
};

function productGraph(transA: boolean): Uint8Array {
  const g = new OnnxGraphBuilder({ name: transA ? 'matmul-trans-a' : 'matmul' });
  g.input('a', 'float32', ['m', 'k']);
  g.input('b', 'float32', [transA ? 'm' : 'k', 'n']);
  g.op('Gemm', ['a', 'b'], { output: 'c', attrs: transA ? { transA: 1 } : {} });
  g.output('c', 'float32', [transA ? 'k' : 'm', 'n']);
  return g.toBytes();
}

/**
 * Matrix products through onnxruntime (CPU). `threads` defaults to 1: training shares the machine with
 * serving, and one thread keeps results bit-identical from run to run.
 */
export async function createOnnxBackend(options: { threads?: number } = {}): Promise<MatMulBackend> {
  const session: SessionOptions = { executionProvider: 'cpu', intraOpThreads: options.threads ?? 1, graphOptimization: 'all' };
  const [plain, transposed] = await Promise.all([OnnxSession.fromBytes(productGraph(false), session), OnnxSession.fromBytes(productGraph(true), session)]);
  const run = async (s: OnnxSession, a: Float32Array, aDims: number[], b: Float32Array, bDims: number[]) =>
    (await s.run({ a: float32Tensor(a, aDims), b: float32Tensor(b, bDims) }, ['c'])).c!.data;
  return {
    name: 'onnxruntime',
    matmul: (a, m, k, b, n) => run(plain, a, [m, k], b, [k, n]),
    matmulTransA: (a, m, k, b, n) => run(transposed, a, [m, k], b, [m, n]),
    release: async () => {
      await Promise.all([plain.release(), transposed.release()]);
    },
  };
}
