// AdamW (Loshchilov & Hutter): Adam with bias correction and decoupled weight decay, on Float32Array
// parameters. Moments are kept in float64 so long runs do not drift with float32 rounding.

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (applied as p -= lr * weightDecay * p), only to tensors registered with decay. */
  weightDecay?: number;
}

interface Slot {
  param: Float32Array;
  m: Float64Array;
  v: Float64Array;
  decay: boolean;
}

export class AdamW {
  private readonly slots = new Map<string, Slot>();
  private step = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  lr: number;

  constructor(options: AdamOptions) {
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    if (!(this.lr > 0)) throw new Error(`learning rate must be > 0, got ${this.lr}`);
    if (this.weightDecay < 0) throw new Error(`weight decay must be >= 0, got ${this.weightDecay}`);
  }

  /** Registers a parameter tensor under a name (biases usually without decay). */
  add(name: string, param: Float32Array, decay: boolean): void {
    this.slots.set(name, { param, m: new Float64Array(param.length), v: new Float64Array(param.length), decay });
  }

  /** Points a registered name at a new tensor of the same size, keeping its moments. */
  rebind(name: string, param: Float32Array): void {
    const slot = this.slots.get(name);
    if (!slot || slot.param.length !== param.length) throw new Error(`AdamW.rebind: no parameter "${name}" of size ${param.length}`);
    slot.param = param;
  }

  /** One update with the given gradients (by parameter name); every registered tensor needs a gradient. */
  update(gradients: Record<string, Float32Array>): void {
    this.step++;
    const { beta1, beta2, epsilon, lr } = this;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    for (const [name, slot] of this.slots) {
      const grad = gradients[name];
      if (!grad || grad.length !== slot.param.length) throw new Error(`AdamW.update: gradient for "${name}" missing or of the wrong size`);
      const { param, m, v } = slot;
      const decay = slot.decay ? lr * this.weightDecay : 0;
      for (let i = 0; i < param.length; i++) {
        const g = grad[i]!;
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * g);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * g * g);
        param[i] = param[i]! - lr * (mi / correction1) / (Math.sqrt(vi / correction2) + epsilon) - decay * param[i]!;
      }
    }
  }
}
