// A task head used while the backbone is fine-tuned: one dense layer (logits = x W + b) whose input gradient
// flows back into the backbone. Small enough (512 x a few labels) to run in plain TypeScript; the heads that ship
// are retrained on the finished backbone by the project's head trainers (src/training/heads.ts).
import { gaussian, type Rng } from '../random.js';

export class LinearHead {
  /** [inputSize, outputs], row-major. */
  readonly w: Float32Array;
  readonly b: Float32Array;

  constructor(
    readonly inputSize: number,
    readonly outputs: number,
    rng: Rng,
  ) {
    const normal = gaussian(rng);
    const scale = Math.sqrt(1 / inputSize);
    this.w = Float32Array.from({ length: inputSize * outputs }, () => normal() * scale);
    this.b = new Float32Array(outputs);
  }

  /** x: [rows, inputSize] -> logits [rows, outputs]. */
  forward(x: Float32Array, rows: number): Float32Array {
    const { inputSize: d, outputs: k, w, b } = this;
    const logits = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < k; c++) logits[r * k + c] = b[c]!;
      for (let i = 0; i < d; i++) {
        const xi = x[r * d + i]!;
        if (xi === 0) continue;
        for (let c = 0; c < k; c++) logits[r * k + c]! += xi * w[i * k + c]!;
      }
    }
    return logits;
  }

  /** Gradients of the weights and of the input, from dLoss/dlogits. Rows whose dLogits are all zero add nothing. */
  backward(x: Float32Array, rows: number, dLogits: Float32Array): { dW: Float32Array; dB: Float32Array; dX: Float32Array } {
    const { inputSize: d, outputs: k, w } = this;
    const dW = new Float32Array(d * k);
    const dB = new Float32Array(k);
    const dX = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      let any = false;
      for (let c = 0; c < k; c++) if (dLogits[r * k + c] !== 0) any = true;
      if (!any) continue;
      for (let c = 0; c < k; c++) dB[c]! += dLogits[r * k + c]!;
      for (let i = 0; i < d; i++) {
        const xi = x[r * d + i]!;
        let sum = 0;
        for (let c = 0; c < k; c++) {
          const g = dLogits[r * k + c]!;
          dW[i * k + c]! += xi * g;
          sum += w[i * k + c]! * g;
        }
        dX[r * d + i] = sum;
      }
    }
    return { dW, dB, dX };
  }
}
