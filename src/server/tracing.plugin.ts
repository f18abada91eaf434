// graphql.parse, graphql.validate and graphql.execute spans under a traced request's HTTP span; the engine's
// spans then go under graphql.execute. Installed only when tracing is on. (A document Apollo has cached is
// neither parsed nor validated again, so those two spans appear only the first time.)
import type { ApolloServerPlugin } from '@apollo/server';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { toPolyheadError } from '../errors.js';
import type { RequestContext } from '../resolvers/context.js';
import { spanNow } from '../observability/clock.js';

// The semantic conventions' GraphQL attributes are still "incubating", which libraries are asked not to import.
const OPERATION_TYPE = 'graphql.operation.type';
const OPERATION_NAME = 'graphql.operation.name';

export function tracingPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart({ contextValue }) {
      const trace = contextValue.trace;
      if (!trace) return;
      return {
        async parsingDidStart() {
          const span = trace.startChild('graphql.parse');
          return async (error) => endSpan(span, error ? [error] : undefined);
        },
        async validationDidStart() {
          const span = trace.startChild('graphql.validate');
          return async (errors) => endSpan(span, errors);
        },
        async executionDidStart({ operation, operationName }) {
          const span = trace.startChild('graphql.execute', { [OPERATION_TYPE]: operation.operation, ...(operationName ? { [OPERATION_NAME]: operationName } : {}) });
          trace.nestEngineWorkUnder(span);
          return { executionDidEnd: async (error) => endSpan(span, error ? [error] : undefined) };
        },
        async didEncounterErrors({ errors }) {
          // Field errors leave the answer a 200: the codes say on the request's span what went wrong.
          const codes = errors.map((error) => toPolyheadError(error.originalError)?.code ?? (error.extensions?.code as string | undefined) ?? 'INTERNAL_SERVER_ERROR');
          trace.span.setAttribute('polyhead.graphql.error_codes', [...new Set(codes)]);
        },
      };
    },
  };
}

function endSpan(span: Span, errors: ReadonlyArray<Error> | undefined): void {
  if (errors?.length) span.setStatus({ code: SpanStatusCode.ERROR, message: errors[0]!.message });
  span.end(spanNow());
}
