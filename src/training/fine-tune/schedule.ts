// Learning rates of a fine-tuning run: linear warm-up then linear decay to zero (as BERT's fine-tuning), and
// layer-wise decay (as ULMFiT's discriminative rates and ELECTRA's layer-wise decay): the top layer learns at the
// base rate, each layer below at `layerDecay` times the one above, the embeddings at the lowest rate.

export interface ScheduleOptions {
  baseLr: number;
  totalSteps: number;
  /** Share of the steps spent warming up, 0..1. */
  warmupFraction: number;
}

/** The rate multiplier (0..1] at step s (0-based) of the run. */
export function scheduleFactor(step: number, options: ScheduleOptions): number {
  const warmup = Math.max(1, Math.round(options.totalSteps * options.warmupFraction));
  if (step < warmup) return (step + 1) / warmup;
  const left = options.totalSteps - warmup;
  return left <= 0 ? 1 : Math.max(0.01, 1 - (step - warmup) / left);
}

/**
 * The depth of a parameter by its initializer name: layer i of n is i + 1, the embeddings (and anything before the
 * first layer) 0, what follows the last layer (pooling dense) n + 1. Names follow the backbone's conventions:
 * USE-lite's `layer_<i>_...`, Hugging Face's `encoder.layer.<i>.` or `layers.<i>.`, and `embeddings` in both.
 */
export function parameterDepth(name: string, layers: number): number {
  const layer = /(?:^|[._/])layers?[._](\d+)(?:[._/]|$)/.exec(name);
  if (layer) return Number(layer[1]) + 1;
  if (/embed/i.test(name)) return 0;
  if (/pool/i.test(name)) return layers + 1;
  // Unnamed weights (torch.onnx's onnx::MatMul_123) are trained at the top rate: their layer is unknown.
  return layers + 1;
}

/** The multiplier of a parameter's rate from its depth: layerDecay^(top - depth). */
export function layerFactor(depth: number, layers: number, layerDecay: number): number {
  return layerDecay ** Math.max(0, layers + 1 - depth);
}
