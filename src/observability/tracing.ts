/*
 * OpenTelemetry traces for one server: a tracer provider, a BatchSpanProcessor and the OTLP/HTTP exporter.
 * They exist only when an endpoint is configured (readTracingConfig); a server without one has no Tracing
 * at all, so a request costs nothing more than an `undefined` check in a few places, and the SDK is not
 * even loaded (it is imported here on first use).
 *
 * Spans are parented explicitly, never through a global context manager or provider: one process may run
 * several servers (tests, a host program with its own OpenTelemetry set-up), and Apollo's hooks cannot wrap
 * execution in a context anyway. The HTTP server span is written in the request handler rather than by
 * @opentelemetry/instrumentation-http, which patches node:http and, for ES modules, needs loader hooks
 * registered before the program starts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import type { BasicTracerProvider, Sampler } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_ERROR_TYPE,
} from '@opentelemetry/semantic-conventions';
import { spanNow } from './clock.js';
import { httpRouteOf } from './http-route.js';
import { RequestTrace } from './request-trace.js';
import { parentContextOf } from './trace-context.js';
import type { TracingConfig } from './tracing-config.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Methods named in spans as they are; any other becomes _OTHER (semantic conventions: unbounded values would explode span names). */
const knownMethods = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

export class Tracing {
  /** The trace of each request in flight, by its node:http request. */
  private readonly requests = new WeakMap<IncomingMessage, RequestTrace>();

  private constructor(
    private readonly provider: BasicTracerProvider,
    readonly tracer: Tracer,
  ) {}

  static async start(config: TracingConfig, service: { version: string }): Promise<Tracing> {
    const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
    // OTEL_BSP_* (queue size, batch size, delay) and OTEL_EXPORTER_OTLP_TIMEOUT are read by the SDK itself.
    const exporter = new OTLPTraceExporter({ url: config.url, headers: config.headers });
    const provider = new sdk.BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: service.version }),
      sampler: samplerOf(sdk, config),
      spanProcessors: [new sdk.BatchSpanProcessor(exporter)],
    });
    return new Tracing(provider, provider.getTracer('polyhead', service.version));
  }

  /** The handler with an HTTP server span around each request (the root of the request's trace, or a child of the caller's). */
  traceHttp(handler: Handler): Handler {
    return (req, res) => {
      const method = knownMethods.has(req.method ?? '') ? req.method! : '_OTHER';
      const path = (req.url ?? '/').split('?', 1)[0]!;
      const span = this.tracer.startSpan(
        method,
        {
          kind: SpanKind.SERVER,
          startTime: spanNow(),
          attributes: { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: path, [ATTR_URL_SCHEME]: 'http', [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion },
        },
        parentContextOf(req.headers),
      );
      // A trace the sampler dropped gets no child spans either: nothing more is done for it.
      if (span.isRecording()) {
        this.requests.set(req, new RequestTrace(this.tracer, span));
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          endHttpSpan(span, method, path, req, res);
        };
        res.once('finish', end);
        res.once('close', end);
      }
      handler(req, res);
    };
  }

  /** The request's trace, if it is being traced. */
  traceOf(req: IncomingMessage): RequestTrace | undefined {
    return this.requests.get(req);
  }

  /** Exports what is left and stops the exporter (the server's last step when it closes). */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

function endHttpSpan(span: Span, method: string, path: string, req: IncomingMessage, res: ServerResponse): void {
  // POST /graphql skips express's router (app.ts), which names the other routes.
  const route = httpRouteOf(req) ?? (path === '/graphql' ? '/graphql' : undefined);
  if (route) {
    span.setAttribute(ATTR_HTTP_ROUTE, route);
    span.updateName(`${method} ${route}`);
  }
  if (!res.writableFinished) {
    // The connection closed before the answer was sent (the client left, or a socket error).
    span.setAttribute(ATTR_ERROR_TYPE, 'connection_closed');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'the connection closed before the response was sent' });
  } else {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
    // Server spans are errors for 5xx only: a 4xx is the client's mistake, answered correctly.
    if (res.statusCode >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end(spanNow());
}

function samplerOf(sdk: typeof import('@opentelemetry/sdk-trace-base'), config: TracingConfig): Sampler {
  const ratio = new sdk.TraceIdRatioBasedSampler(config.ratio);
  switch (config.sampler) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: ratio });
  }
}
