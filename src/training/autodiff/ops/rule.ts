// The shape of a gradient rule: given one forward node and the gradients of its outputs, emit the gradients of
// the inputs that need one.
import type { GradientBuilder } from '../builder.js';
import type { GraphNode } from '../model-graph.js';

export interface RuleContext {
  node: GraphNode;
  b: GradientBuilder;
  /** Gradient of each output of the node; undefined where it is zero (no path to a seeded output). */
  dOut: Array<string | undefined>;
  /** Whether input i needs a gradient (it is float, depends on a parameter and reaches a seeded output). */
  needs: boolean[];
}

/** Returns the gradient of each input (undefined: none or zero); indices match the node's inputs. */
export type GradientRule = (context: RuleContext) => Array<string | undefined>;
