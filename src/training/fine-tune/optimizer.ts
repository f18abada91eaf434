// AdamW over the backbone's parameters, with a rate multiplier per parameter (layer-wise decay). Moments are
// float32 here (the backbone has millions of weights; the head trainer's float64 moments would double the memory
// for no gain at these step counts). An embedding table's gradient arrives as rows: only those rows' moments and
// weights move, as PyTorch's SparseAdam does (lazy Adam), so a step costs the rows touched, not the whole table.
import type { Gradient, Param } from '../autodiff/index.js';

export interface BackboneAdamOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

interface Slot {
  param: Param;
  m: Float32Array;
  v: Float32Array;
  lrFactor: number;
  decay: boolean;
}

export class BackboneAdam {
  private readonly slots = new Map<string, Slot>();
  private step = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;

  constructor(params: readonly Param[], lrFactor: (param: Param) => number, options: BackboneAdamOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    for (const param of params) {
      const factor = lrFactor(param);
      if (!(factor >= 0)) throw new Error(`BackboneAdam: rate factor of ${param.name} must be >= 0, got ${factor}`);
      if (factor === 0) continue;
      // Biases and normalisation scales/shifts (1-D) are not decayed, as usual.
      this.slots.set(param.name, { param, m: new Float32Array(param.data.length), v: new Float32Array(param.data.length), lrFactor: factor, decay: param.dims.length > 1 });
    }
  }

  /** Parameters this optimizer moves (a factor of 0 freezes one). */
  get trained(): string[] {
    return [...this.slots.keys()];
  }

  /** One update at base rate `lr`; parameters without a gradient this step (not reached by the batch) stay. */
  update(gradients: ReadonlyMap<string, Gradient>, lr: number): void {
    this.step++;
    const { beta1, beta2, epsilon } = this;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (const [name, slot] of this.slots) {
      const gradient = gradients.get(name);
      if (!gradient) continue;
      const rate = lr * slot.lrFactor;
      const decay = slot.decay ? rate * this.weightDecay : 0;
      const { m, v } = slot;
      const p = slot.param.data;
      const apply = (i: number, g: number) => {
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * g);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * g * g);
        p[i] = p[i]! - (rate * (mi / c1)) / (Math.sqrt(vi / c2) + epsilon) - decay * p[i]!;
      };
      if (gradient.kind === 'dense') {
        if (gradient.data.length !== p.length) throw new Error(`BackboneAdam: gradient of ${name} has ${gradient.data.length} values for ${p.length}`);
        for (let i = 0; i < p.length; i++) apply(i, gradient.data[i]!);
      } else {
        const width = slot.param.dims.slice(1).reduce((a, b) => a * b, 1);
        gradient.rows.forEach((row, k) => {
          for (let j = 0; j < width; j++) apply(row * width + j, gradient.values[k * width + j]!);
        });
      }
    }
  }
}
