// Counts GraphQL requests and errors by code, and adds timing to a response's extensions when the client
// sends `x-polyhead-timing: 1`.
import type { ApolloServerPlugin } from '@apollo/server';
import { toPolyheadError } from '../errors.js';
import type { RequestContext } from '../resolvers/context.js';
import type { PolyheadMetrics } from './metrics.js';

export const timingHeader = 'x-polyhead-timing';

export function observabilityPlugin(metrics: PolyheadMetrics): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart({ request }) {
      const started = performance.now();
      const wantsTiming = ['1', 'true'].includes(request.http?.headers.get(timingHeader) ?? '');
      return {
        async didResolveOperation({ operation }) {
          metrics.requests.inc({ operation: operation?.operation ?? 'unknown' });
        },
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            const code = toPolyheadError(error.originalError)?.code ?? (error.extensions?.code as string | undefined) ?? 'INTERNAL_SERVER_ERROR';
            metrics.errors.inc({ code });
          }
        },
        async willSendResponse({ response, contextValue }) {
          if (!wantsTiming || response.body.kind !== 'single') return;
          response.body.singleResult.extensions = {
            ...response.body.singleResult.extensions,
            timing: { totalMs: round(performance.now() - started), inferenceMs: round(contextValue.timing?.inferenceMs ?? 0) },
          };
        },
      };
    },
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
