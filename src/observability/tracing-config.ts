// Tracing settings, from the standard OpenTelemetry environment variables, read once at start. Tracing is on
// only when an OTLP endpoint is set; the rest take the specification's defaults.

export const samplerNames = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof samplerNames)[number];

export interface TracingConfig {
  /**
   * Where spans are sent (OTLP over HTTP, JSON bodies): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
   * OTEL_EXPORTER_OTLP_ENDPOINT with "/v1/traces" appended.
   */
  url: string;
  /** OTEL_EXPORTER_OTLP_TRACES_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS: "key=value,..." (values percent-decoded). Default none. */
  headers: Record<string, string>;
  /** OTEL_SERVICE_NAME, default "polyhead". */
  serviceName: string;
  /** OTEL_TRACES_SAMPLER, default parentbased_always_on. */
  sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG: the share of traces the *traceidratio samplers keep, 0 to 1. Default 1. */
  ratio: number;
}

/**
 * The tracing settings, or undefined when tracing is off: no endpoint, OTEL_TRACES_EXPORTER=none or
 * OTEL_SDK_DISABLED=true. Throws, naming the variable, for a value Polyhead cannot honour.
 */
export function readTracingConfig(env: NodeJS.ProcessEnv): TracingConfig | undefined {
  if (lower(env.OTEL_SDK_DISABLED) === 'true') return undefined;
  const exporter = lower(env.OTEL_TRACES_EXPORTER) || 'otlp';
  if (exporter === 'none') return undefined;
  if (exporter !== 'otlp') throw new Error(`OTEL_TRACES_EXPORTER must be otlp or none, got "${env.OTEL_TRACES_EXPORTER}" (Polyhead exports spans over OTLP/HTTP)`);
  const url = tracesUrl(env);
  if (!url) return undefined;
  const protocolVariable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = lower(env[protocolVariable]);
  // The exporter installed sends JSON. http/protobuf is accepted too: an OTLP/HTTP receiver takes either
  // encoding on the same path, told apart by content type. gRPC is another port and another transport.
  if (protocol && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    throw new Error(`${protocolVariable} must be http/json or http/protobuf, got "${env[protocolVariable]}" (Polyhead exports spans over OTLP/HTTP; gRPC is not supported)`);
  }
  const sampler = lower(env.OTEL_TRACES_SAMPLER) || 'parentbased_always_on';
  if (!(samplerNames as readonly string[]).includes(sampler)) throw new Error(`OTEL_TRACES_SAMPLER must be one of ${samplerNames.join(', ')}, got "${env.OTEL_TRACES_SAMPLER}"`);
  const rawRatio = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = rawRatio && sampler.endsWith('traceidratio') ? Number(rawRatio) : 1;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, got "${rawRatio}"`);
  const headersVariable = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ? 'OTEL_EXPORTER_OTLP_TRACES_HEADERS' : 'OTEL_EXPORTER_OTLP_HEADERS';
  return {
    url,
    headers: parseHeaders(headersVariable, env[headersVariable]),
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'polyhead',
    sampler: sampler as SamplerName,
    ratio,
  };
}

function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  const signal = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const variable = signal ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  // The signal-specific endpoint is the full URL; the general one is a base that the signal's path extends.
  const url = signal || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${variable} must be an http(s) URL, got "${signal || base}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`${variable} must be an http(s) URL, got "${signal || base}"`);
  return parsed.href;
}

/** "key=value,key2=value2" as the OpenTelemetry specification writes headers (W3C baggage form, values percent-encoded). */
function parseHeaders(variable: string, raw: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const entry of (raw ?? '').split(',')) {
    if (!entry.trim()) continue;
    const equals = entry.indexOf('=');
    const key = equals > 0 ? entry.slice(0, equals).trim() : '';
    if (!key) throw new Error(`${variable}: "${entry.trim()}" is not key=value`);
    try {
      headers[key] = decodeURIComponent(entry.slice(equals + 1).trim());
    } catch {
      throw new Error(`${variable}: the value of "${key}" is not percent-encoded correctly`);
    }
  }
  return headers;
}

const lower = (value: string | undefined) => value?.trim().toLowerCase() ?? '';
