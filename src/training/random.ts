// Seeded randomness for training (on top of the dataset module's mulberry32).
import { createRng, type Rng } from '../datasets/split.js';

export { createRng, shuffle, type Rng } from '../datasets/split.js';

/** Standard normal draws (Box-Muller) from a uniform RNG. */
export function gaussian(rng: Rng): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    let u = 0;
    while (u <= Number.EPSILON) u = rng();
    const v = rng();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}

/** A child RNG for one purpose, so adding draws in one place does not shift the others. */
export function childRng(seed: string | number, purpose: string): Rng {
  return createRng(`${seed}:${purpose}`);
}
