// Which heads a GraphQL selection asks for, read from the query before anything runs: only those heads run,
// and a field selected twice (aliases, fragments) counts once.
import { getArgumentValues } from 'graphql/execution/values.js';
import { Kind, type FieldNode, type FragmentDefinitionNode, type GraphQLObjectType, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/** Field name of TextAnalysis -> the head it needs (null = the backbone's embedding, no head). */
const headOfField: Record<string, string | null> = { sentiment: 'sentiment', entities: 'entities', embedding: null };

/** The fields of a selection set with its fragments expanded (a fragment cycle is followed once). */
export function collectFields(
  fragments: Record<string, FragmentDefinitionNode>,
  selectionSet: SelectionSetNode | undefined,
  into: FieldNode[] = [],
  seen: ReadonlySet<string> = new Set(),
): FieldNode[] {
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD) into.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) collectFields(fragments, selection.selectionSet, into, seen);
    else if (!seen.has(selection.name.value)) {
      collectFields(fragments, fragments[selection.name.value]?.selectionSet, into, new Set([...seen, selection.name.value]));
    }
  }
  return into;
}

/** The heads the sub-selection of the current field (a TextAnalysis list) needs. */
export function headsSelected(info: GraphQLResolveInfo): string[] {
  const heads = new Set<string>();
  const type = info.schema.getType('TextAnalysis') as GraphQLObjectType;
  for (const node of info.fieldNodes) {
    for (const field of collectFields(info.fragments, node.selectionSet)) {
      const name = field.name.value;
      if (name === 'classify') {
        const args = getArgumentValues(type.getFields().classify!, field, info.variableValues);
        heads.add(String(args.head));
      } else if (headOfField[name]) heads.add(headOfField[name]!);
    }
  }
  return [...heads];
}
