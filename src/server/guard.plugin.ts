// Checks every operation before it executes: the read scope when the server requires it, and the
// query limits (depth, aliases, fields, cost). A refused operation runs nothing.
import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, type FragmentDefinitionNode, type GraphQLSchema } from 'graphql';
import { hasScope } from '../auth/authenticator.js';
import { PolyheadError, toGraphQLError } from '../errors.js';
import type { RequestContext } from '../resolvers/context.js';
import { checkOperation, type QueryLimits } from './query-limits.js';

export function guardPlugin(schema: GraphQLSchema, limits: QueryLimits, requireReadKey: boolean): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, request, contextValue }) {
          if (!operation) return;
          try {
            if (requireReadKey && operation.operation === 'query' && !hasScope(contextValue.principal, 'read')) {
              throw new PolyheadError('UNAUTHENTICATED', 'this server needs an API key with the "read" scope for queries');
            }
            const fragments: Record<string, FragmentDefinitionNode> = {};
            for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
            checkOperation(schema, operation, fragments, request.variables ?? {}, limits);
          } catch (error) {
            if (error instanceof PolyheadError) {
              const graphQLError = toGraphQLError(error);
              (graphQLError.extensions as Record<string, unknown>).http = { status: error.code === 'UNAUTHENTICATED' ? 401 : 400 };
              throw graphQLError;
            }
            throw error;
          }
        },
      };
    },
  };
}
