// Limits checked on the parsed operation before anything executes: depth, aliases, fields, and a cost
// computed from the selection (texts x selected heads for inference; registry lists by page size).
import { getArgumentValues } from 'graphql/execution/values.js';
import {
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { PolyheadError } from '../errors.js';
import { collectFields } from '../resolvers/selection.js';

export interface QueryLimits {
  /** POLYHEAD_MAX_QUERY_DEPTH, default 12: nesting of selections. */
  maxDepth: number;
  /** POLYHEAD_MAX_ALIASES, default 30: aliased fields per operation. */
  maxAliases: number;
  /** POLYHEAD_MAX_FIELDS, default 1000: fields per operation, fragments expanded. */
  maxFields: number;
  /** POLYHEAD_MAX_QUERY_COST, default 50000: see the cost units below. */
  maxCost: number;
}

export const defaultQueryLimits: QueryLimits = { maxDepth: 12, maxAliases: 30, maxFields: 1000, maxCost: 50_000 };

/**
 * Cost units: one per registry object returned; an inference field costs, per text, 20 for the backbone
 * pass plus 5 per head selected (a backbone pass costs far more than reading a row).
 */
const backbonePassCost = 20;
const headCost = 5;
const inferenceFields = new Set(['analyze', 'sentiment', 'entities', 'embed', 'similarity']);
const headFields = new Set(['sentiment', 'entities', 'classify']);
/** A translation costs, per text, an encoder pass plus one unit per 8 decoding steps of each beam it may run. */
function translationCost(args: Record<string, unknown>): number {
  const beams = typeof args.beams === 'number' ? args.beams : 1;
  const steps = typeof args.maxNewTokens === 'number' ? args.maxNewTokens : 256;
  return backbonePassCost + Math.ceil((beams * steps) / 8);
}
/** A registry list without a page size is assumed to hold this many items. */
const assumedListSize = 5;

interface Walk {
  schema: GraphQLSchema;
  fragments: Record<string, FragmentDefinitionNode>;
  variables: Record<string, unknown>;
  fields: number;
  aliases: number;
  depth: number;
}

export function checkOperation(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Record<string, FragmentDefinitionNode>, variables: Record<string, unknown>, limits: QueryLimits): { cost: number } {
  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  // Validation lets `subscription { ... }` through when the schema has no such root; execution would refuse it.
  if (!root) throw new PolyheadError('BAD_USER_INPUT', `this server has no ${operation.operation} operations`);
  const walk: Walk = { schema, fragments, variables, fields: 0, aliases: 0, depth: 0 };
  const cost = selectionCost(walk, root, operation.selectionSet, 1, new Set());
  const over = (what: string, value: number, limit: number, name: string) => {
    if (value > limit) throw new PolyheadError('BAD_USER_INPUT', `${what} ${value} is over the limit of ${limit} (${name})`, { limit, value });
  };
  over('query depth', walk.depth, limits.maxDepth, 'POLYHEAD_MAX_QUERY_DEPTH');
  over('aliases', walk.aliases, limits.maxAliases, 'POLYHEAD_MAX_ALIASES');
  over('fields', walk.fields, limits.maxFields, 'POLYHEAD_MAX_FIELDS');
  over('query cost', cost, limits.maxCost, 'POLYHEAD_MAX_QUERY_COST');
  return { cost };
}

function selectionCost(walk: Walk, type: GraphQLObjectType, set: SelectionSetNode, depth: number, visiting: Set<string>): number {
  walk.depth = Math.max(walk.depth, depth);
  let cost = 0;
  for (const selection of set.selections) {
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      const target = selection.typeCondition ? walk.schema.getType(selection.typeCondition.name.value) : type;
      if (isObjectType(target)) cost += selectionCost(walk, target, selection.selectionSet, depth, visiting);
    } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
      const name = selection.name.value;
      const fragment = walk.fragments[name];
      if (!fragment || visiting.has(name)) continue; // validation rejects cycles; never loop here
      const target = walk.schema.getType(fragment.typeCondition.name.value);
      if (isObjectType(target)) cost += selectionCost(walk, target, fragment.selectionSet, depth, new Set([...visiting, name]));
    } else {
      cost += fieldCost(walk, type, selection, depth, visiting);
    }
  }
  return cost;
}

function fieldCost(walk: Walk, parent: GraphQLObjectType, node: FieldNode, depth: number, visiting: Set<string>): number {
  walk.fields++;
  if (node.alias) walk.aliases++;
  const definition = parent.getFields()[node.name.value];
  if (!definition) return 1; // __typename and friends
  const child = getNamedType(definition.type);
  const inner = node.selectionSet && isObjectType(child) ? selectionCost(walk, child, node.selectionSet, depth + 1, visiting) : 0;
  if (node.name.value === 'translation' && parent.name === 'TextAnalysis') return translationCost(safeArguments(definition, node, walk.variables));
  if (parent === walk.schema.getQueryType() && node.name.value === 'translate') {
    const args = safeArguments(definition, node, walk.variables);
    return (Array.isArray(args.texts) ? args.texts.length : 1) * translationCost(args);
  }
  if (parent === walk.schema.getQueryType() && inferenceFields.has(node.name.value)) {
    const args = safeArguments(definition, node, walk.variables);
    const texts = Array.isArray(args.texts) ? args.texts.length : Array.isArray(args.candidates) ? args.candidates.length + 1 : 1;
    const heads = node.name.value === 'analyze' ? countHeadFields(walk, node.selectionSet) : node.name.value === 'embed' || node.name.value === 'similarity' ? 0 : 1;
    // analyze { translation(model:) } runs a translation model per text besides the backbone.
    let translations = 0;
    if (node.name.value === 'analyze' && isObjectType(child)) {
      for (const field of collectFields(walk.fragments, node.selectionSet)) {
        if (field.name.value === 'translation') translations += translationCost(safeArguments(child.getFields().translation!, field, walk.variables));
      }
    }
    return texts * (backbonePassCost + headCost * heads + translations);
  }
  if (isListType(getNullableType(definition.type))) {
    if (node.name.value === 'edges') return 1 + inner; // the connection already counted its page size
    const args = safeArguments(definition, node, walk.variables);
    const size = typeof args.first === 'number' ? args.first : assumedListSize;
    return size * (1 + inner);
  }
  if (node.name.value === 'models') {
    const args = safeArguments(definition, node, walk.variables);
    return (typeof args.first === 'number' ? args.first : 20) * (1 + inner);
  }
  return 1 + inner;
}

function countHeadFields(walk: Walk, set: SelectionSetNode | undefined): number {
  const names = new Set<string>();
  for (const field of collectFields(walk.fragments, set)) {
    if (!headFields.has(field.name.value)) continue;
    const head = field.arguments?.find((a) => a.name.value === 'head');
    names.add(head ? `classify:${head.value.kind === Kind.STRING ? head.value.value : '$'}` : field.name.value);
  }
  return names.size;
}

function safeArguments(definition: Parameters<typeof getArgumentValues>[0], node: FieldNode, variables: Record<string, unknown>): Record<string, unknown> {
  try {
    return getArgumentValues(definition, node, variables);
  } catch {
    return {}; // invalid arguments are reported by execution with their own error
  }
}
