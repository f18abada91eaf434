// The route template a request was answered by (http.route on its server span), for handlers outside
// express's router, which records its own in req.route. Costs one property write when tracing is off.
import type { IncomingMessage } from 'node:http';

const ROUTE = Symbol('polyhead.httpRoute');

type Routed = IncomingMessage & { [ROUTE]?: string; route?: { path?: unknown } };

/** Names the route that answers `req`, e.g. "/v1/models/{model}" (a template, never the raw path: spans group by it). */
export function setHttpRoute(req: IncomingMessage, route: string): void {
  (req as Routed)[ROUTE] = route;
}

/** The route set by setHttpRoute, else the one express matched, else undefined. */
export function httpRouteOf(req: IncomingMessage): string | undefined {
  const routed = req as Routed;
  const matched = routed.route?.path;
  return routed[ROUTE] ?? (typeof matched === 'string' ? matched : undefined);
}
