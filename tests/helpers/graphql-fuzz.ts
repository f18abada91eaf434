// The GraphQL fuzzer shared by tests/fuzz (a short run) and scripts/fuzz.ts (the full one). fast-check
// generates requests of three kinds: real documents (from the README and the tests) mutated token by token,
// documents generated from the schema's field names with random arguments, and hostile HTTP requests
// (random JSON bodies, batches, wrong content types, raw bytes, oversized bodies). The oracle: the server
// always answers (never crashes), never with a 5xx, every GraphQL error carries extensions.code, and a valid
// request sent every few cases keeps succeeding.
import fc from 'fast-check';

export interface FuzzRequest {
  kind: string;
  method: 'POST' | 'GET';
  contentType?: string;
  /** The raw body; for GET the query string (without "?"). */
  body: string | Uint8Array;
  /** Send Apollo's CSRF preflight header (default true); without it GET and "simple" content types are refused. */
  preflight?: boolean;
}

export interface FuzzStats {
  sent: number;
  byKind: Record<string, number>;
  statuses: Record<string, number>;
  codes: Record<string, number>;
  validChecks: number;
  failures: string[];
  ms: number;
}

// Real documents: what the README and the tests send.
export const seedDocuments: Array<{ query: string; variables?: Record<string, unknown> }> = [
  { query: '{ analyze(texts: ["Maria Lopez loved the new Pixar film she saw in Madrid."]) { text tokenCount truncated sentiment { label score scores { label score } } entities { text label start end score } embedding classify(head: "sentiment") { label } } }' },
  { query: 'query($texts: [String!]!) { sentiment(texts: $texts) { label score } }', variables: { texts: ['I loved it', 'I hated it'] } },
  { query: 'query($texts: [String!]!, $n: Boolean) { embed(texts: $texts, normalize: $n) }', variables: { texts: ['a cat'], n: false } },
  { query: '{ entities(texts: ["Apple opened an office in Berlin."]) { text label start end score } }' },
  { query: '{ similarity(query: "a cat on a mat", candidates: ["a dog", "a kitten on a rug"]) }' },
  { query: '{ server { version database defaultModel device queueDepth batchesRun meanBatchSize loadedModels { name version heads provider } } }' },
  { query: '{ models(first: 10, task: CLASSIFICATION) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name version { version backbone { name architecture pretrainedSource { name citation } } heads { name task labels trainingData { name license } evaluations { metric value split } } } } } } }' },
  { query: 'query($name: String!) { model(name: $name) { name versions { version files { path sha256 sizeBytes } aliases } } }', variables: { name: 'default' } },
  { query: '{ datasets { name source license size } backbones { name version heads { name } } }' },
  { query: 'query A { a: sentiment(texts: ["x"]) { label } b: sentiment(texts: ["y"]) { ...F } } fragment F on Classification { label score }' },
  { query: 'mutation { setAlias(model: "default", alias: "production", version: "1.2.0") { version } }' },
  { query: 'mutation($p: String!) { importBundle(path: $p) { created } }', variables: { p: '../../etc' } },
  { query: 'query($id: ID!) { trainingJob(id: $id) { status phase } }', variables: { id: 'nope' } },
  { query: '{ __schema { types { name fields { name } } } }' },
];

const fieldNames = ['analyze', 'sentiment', 'entities', 'embed', 'similarity', 'models', 'model', 'server', 'datasets', 'backbones', 'edges', 'node', 'name', 'versions', 'version', 'heads', 'backbone', 'label', 'score', 'scores', 'text', 'classify', 'embedding', 'trainingData', 'evaluations', 'files', '__typename', '__schema', 'importBundle', 'setAlias', 'loadModel', 'trainHead', 'nope'];
const argNames = ['texts', 'text', 'model', 'first', 'after', 'task', 'search', 'name', 'head', 'normalize', 'query', 'candidates', 'ref', 'path', 'id'];

/** Strings that have broken servers: lone surrogates, NUL, bidi controls, huge, mixed scripts, escapes. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\ud800', 'a\udc00b', '\u0000', 'x\u0000y', '\u202e\u2066evil', '🙂👍🏽', 'Привет мир こんにちは مرحبا', '\\', '"', '\\u', '${x}', '\r\n', '', ' ', '\t'),
  fc.integer({ min: 1_000, max: 120_000 }).map((n) => 'a'.repeat(n)),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
);

const nastyInt = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 2147483647, 2147483648, -2147483649, 9007199254740993, 1e21),
  fc.double({ noNaN: false }).map((d) => (Number.isFinite(d) ? d : 1e308)),
);

/** A GraphQL literal of any kind, valid or not. */
const literal: fc.Arbitrary<string> = fc.oneof(
  nastyInt.map(String),
  fc.constantFrom('99999999999999999999999', '-0', '1e400', '0x10', '.5', 'true', 'null', 'CLASSIFICATION', '$texts', '$nope', '[]', '[[["x"]]]', '{a: 1}'),
  nastyString.map((s) => JSON.stringify(s)),
  fc.array(nastyString, { maxLength: 5 }).map((list) => `[${list.map((s) => JSON.stringify(s)).join(', ')}]`),
  fc.integer({ min: 200, max: 400 }).map((n) => `[${Array.from({ length: n }, (_, i) => `"t${i}"`).join(',')}]`),
  fc.constant('"""block\nstring"""'),
);

const tokenPattern = /"""[\s\S]*?"""|"(?:[^"\\]|\\.)*"|\.\.\.|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[A-Za-z_$][A-Za-z0-9_]*|[{}()[\]:!@=,|&]|\s+|./g;
const tokensOf = (query: string) => query.match(tokenPattern) ?? [];
const extraToken = fc.oneof(fc.constantFrom('{', '}', '(', ')', '[', ']', ':', '!', '$', '...', '@skip(if: true)', '@include(if: $x)', 'fragment', 'on', 'query', 'mutation', 'subscription', '\u0000', '#', '"'), fc.constantFrom(...fieldNames), literal);

type Edit = { op: 'delete' | 'duplicate' | 'swap' | 'insert' | 'replaceLiteral'; at: number; other: number; token: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  op: fc.constantFrom('delete', 'duplicate', 'swap', 'insert', 'replaceLiteral'),
  at: fc.nat(),
  other: fc.nat(),
  token: fc.oneof(extraToken, literal),
});

function applyEdits(query: string, edits: Edit[]): string {
  const tokens = tokensOf(query);
  for (const e of edits) {
    if (tokens.length === 0) break;
    const i = e.at % tokens.length;
    const j = e.other % tokens.length;
    if (e.op === 'delete') tokens.splice(i, 1);
    else if (e.op === 'duplicate') tokens.splice(i, 0, tokens[i]!);
    else if (e.op === 'swap') [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
    else if (e.op === 'insert') tokens.splice(i, 0, ` ${e.token} `);
    else {
      const literals = tokens.map((t, k) => (/^(?:"|-?\d)/.test(t) ? k : -1)).filter((k) => k >= 0);
      if (literals.length) tokens[literals[i % literals.length]!] = e.token;
    }
  }
  return tokens.join('');
}

/** Variables: right names with wrong or hostile values, and random JSON. */
const variables: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.record({ texts: fc.oneof(fc.array(nastyString, { maxLength: 8 }), fc.jsonValue(), fc.constant([null]), fc.constant(5), fc.array(fc.constant('t'), { minLength: 257, maxLength: 300 })) }, { requiredKeys: [] }),
  fc.dictionary(fc.constantFrom(...argNames, 'n', 'p', 'id', 'x'), fc.oneof(fc.jsonValue({ maxDepth: 3 }), nastyString, nastyInt)),
  fc.jsonValue({ maxDepth: 4 }),
);

const seedMutation: fc.Arbitrary<FuzzRequest> = fc
  .tuple(fc.constantFrom(...seedDocuments), fc.array(edit, { minLength: 0, maxLength: 6 }), fc.oneof(fc.constant('seed' as const), variables))
  .map(([seed, edits, vars]) => ({
    kind: edits.length ? 'mutated' : 'seed',
    method: 'POST',
    contentType: 'application/json',
    body: JSON.stringify({ query: applyEdits(seed.query, edits), variables: vars === 'seed' ? seed.variables : vars }),
  }));

/** Random selection sets over real field names with random arguments, some deep, some alias-heavy. */
const selection: fc.Memo<string> = fc.memo((depth) => {
  const args = fc.array(fc.tuple(fc.constantFrom(...argNames), literal), { maxLength: 3 }).map((list) => (list.length ? `(${list.map(([n, v]) => `${n}: ${v}`).join(', ')})` : ''));
  const field = fc.tuple(fc.option(fc.constantFrom('a', 'b', 'x1', '_'), { nil: undefined }), fc.constantFrom(...fieldNames), args, depth > 1 ? fc.option(selection(depth - 1), { nil: undefined }) : fc.constant(undefined));
  return fc.array(field, { minLength: 1, maxLength: 4 }).map((fields) => `{ ${fields.map(([alias, name, a, sub]) => `${alias ? `${alias}: ` : ''}${name}${a}${sub ? ` ${sub}` : ''}`).join(' ')} }`);
});

const generated: fc.Arbitrary<FuzzRequest> = fc
  .tuple(fc.constantFrom('', 'query ', 'mutation ', 'query Q($texts: [String!]!) ', 'subscription '), selection(5), variables)
  .map(([head, body, vars]) => ({ kind: 'generated', method: 'POST', contentType: 'application/json', body: JSON.stringify({ query: head + body, variables: vars }) }));

const deep: fc.Arbitrary<FuzzRequest> = fc
  .tuple(fc.integer({ min: 10, max: 3000 }), fc.constantFrom('deep-fields', 'deep-lists', 'aliases', 'fragments'))
  .map(([n, shape]) => {
    let query: string;
    if (shape === 'deep-fields') query = `${'{ models { edges { node { versions { backbone { heads { version '.repeat(Math.ceil(n / 100))}{ version }${' } } } } } }'.repeat(Math.ceil(n / 100))} }`;
    else if (shape === 'deep-lists') query = `{ sentiment(texts: ${'['.repeat(n)}"x"${']'.repeat(n)}) { label } }`;
    else if (shape === 'aliases') query = `{ ${Array.from({ length: n % 400 }, (_, i) => `a${i}: server { version }`).join(' ')} }`;
    else query = `query { ...F0 } ${Array.from({ length: n % 200 }, (_, i) => `fragment F${i} on Query { server { version } ...F${i + 1} }`).join(' ')} fragment F${n % 200} on Query { __typename }`;
    return { kind: shape, method: 'POST' as const, contentType: 'application/json', body: JSON.stringify({ query }) };
  });

const http: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ kind: 'random-json', method: 'POST' as const, contentType: 'application/json', body: JSON.stringify(v) ?? 'null' })),
  fc.array(fc.constantFrom(...seedDocuments), { minLength: 0, maxLength: 5 }).map((docs) => ({ kind: 'batch', method: 'POST' as const, contentType: 'application/json', body: JSON.stringify(docs) })),
  fc
    .tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/graphql', 'application/json; charset=latin1', 'application/xml', ''), fc.constantFrom(...seedDocuments), fc.boolean())
    .map(([type, doc, preflight]) => ({ kind: 'content-type', method: 'POST' as const, contentType: type || undefined, body: JSON.stringify(doc), preflight })),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'raw-bytes', method: 'POST' as const, contentType: 'application/json', body: bytes })),
  fc.string({ maxLength: 80 }).map((s) => ({ kind: 'broken-json', method: 'POST' as const, contentType: 'application/json', body: `{"query": "{ server { version } }", ${s}` })),
  fc.tuple(fc.constantFrom(...seedDocuments), variables, fc.boolean()).map(([doc, vars, preflight]) => ({
    kind: 'get',
    method: 'GET' as const,
    preflight,
    body: new URLSearchParams({ query: doc.query, ...(vars === undefined ? {} : { variables: JSON.stringify(vars) }) }).toString(),
  })),
  fc.constant({ kind: 'oversized', method: 'POST' as const, contentType: 'application/json', body: JSON.stringify({ query: '{ server { version } }', variables: { pad: 'x'.repeat(5 * 1024 * 1024) } }) }),
);

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { arbitrary: seedMutation, weight: 5 },
  { arbitrary: generated, weight: 3 },
  { arbitrary: deep, weight: 1 },
  { arbitrary: http, weight: 2 },
);

const validCheck = { query: '{ sentiment(texts: ["The fuzzer has not broken me."]) { label } }' };

/** Sends one request; throws when the server does not answer (crash, hang) or breaks the oracle. */
async function send(url: string, request: FuzzRequest, stats: FuzzStats, timeoutMs: number): Promise<void> {
  const target = request.method === 'GET' ? `${url}?${request.body}` : url;
  let response: Response;
  try {
    response = await fetch(target, {
      method: request.method,
      // Apollo's CSRF prevention wants a preflight-forcing header on GET and on "simple" content types.
      headers: { ...(request.contentType ? { 'content-type': request.contentType } : {}), ...(request.preflight === false ? {} : { 'apollo-require-preflight': 'true' }), accept: 'application/json' },
      body: request.method === 'POST' ? (request.body as string | Uint8Array<ArrayBuffer>) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new Error(`no answer to a ${request.kind} request: ${(error as Error).message} (cause: ${String((error as { cause?: unknown }).cause)})`);
  }
  const text = await response.text();
  stats.statuses[response.status] = (stats.statuses[response.status] ?? 0) + 1;
  if (response.status >= 500) throw new Error(`${response.status} for a ${request.kind} request: ${text.slice(0, 300)}`);
  // By design, not ours: node's HTTP parser refuses a request line and headers over 16 KiB (a GET with a
  // long query string) with 431 and no body, before any application code runs.
  if (response.status === 431 && text === '') return;
  let json: { errors?: Array<{ extensions?: { code?: unknown } }> };
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${response.status} with a body that is not JSON for a ${request.kind} request: ${text.slice(0, 200)}`);
  }
  for (const error of json.errors ?? []) {
    const code = error.extensions?.code;
    if (typeof code !== 'string') throw new Error(`an error without extensions.code for a ${request.kind} request: ${JSON.stringify(error).slice(0, 300)}`);
    stats.codes[code] = (stats.codes[code] ?? 0) + 1;
  }
  if (response.status !== 200 && !json.errors?.length) throw new Error(`${response.status} without errors for a ${request.kind} request`);
}

async function checkValid(url: string, stats: FuzzStats, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(validCheck), signal: AbortSignal.timeout(timeoutMs) });
  const json = (await response.json()) as { data?: { sentiment?: Array<{ label: string }> }; errors?: unknown };
  if (response.status !== 200 || json.errors || !json.data?.sentiment?.[0]?.label) throw new Error(`a valid request failed after ${stats.sent} fuzz requests: ${response.status} ${JSON.stringify(json).slice(0, 300)}`);
  stats.validChecks++;
}

export interface FuzzOptions {
  url: string;
  runs: number;
  seed?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** A valid request is checked after every this many fuzz requests (default 25). */
  checkEvery?: number;
  timeoutMs?: number;
  onProgress?: (stats: FuzzStats) => void;
}

/** Runs the fuzzer; resolves with the counts. Failures are collected (fast-check shrinks each to a small case). */
export async function fuzzGraphQL(options: FuzzOptions): Promise<FuzzStats & { seed: number; counterexample?: FuzzRequest }> {
  const stats: FuzzStats = { sent: 0, byKind: {}, statuses: {}, codes: {}, validChecks: 0, failures: [], ms: 0 };
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const checkEvery = options.checkEvery ?? 25;
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const concurrency = options.concurrency ?? 4;
  let failed: FuzzRequest | undefined;
  // fast-check runs one property at a time: a batch of `concurrency` requests per run keeps the server busy.
  const result = await fc.check(
    fc.asyncProperty(fc.array(fuzzRequest, { minLength: concurrency, maxLength: concurrency }), async (requests) => {
      await Promise.all(
        requests.map(async (request) => {
          stats.sent++;
          stats.byKind[request.kind] = (stats.byKind[request.kind] ?? 0) + 1;
          try {
            await send(options.url, request, stats, timeoutMs);
          } catch (error) {
            failed = request;
            throw error;
          }
        }),
      );
      if (Math.floor(stats.sent / checkEvery) !== Math.floor((stats.sent - requests.length) / checkEvery)) await checkValid(options.url, stats, timeoutMs);
      if (stats.sent % 500 < requests.length) options.onProgress?.(stats);
    }),
    { numRuns: Math.ceil(options.runs / concurrency), seed, endOnFailure: false, maxSkipsPerRun: 0 },
  );
  await checkValid(options.url, stats, timeoutMs);
  stats.ms = Date.now() - started;
  if (result.failed) stats.failures.push(`${String(result.errorInstance)} (seed ${seed}, path ${result.counterexamplePath})`);
  return { ...stats, seed, counterexample: failed };
}

export function formatStats(stats: FuzzStats): string {
  const sorted = (record: Record<string, number>) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  return [
    `requests sent: ${stats.sent} in ${(stats.ms / 1000).toFixed(1)} s (${stats.validChecks} valid-request checks in between)`,
    `by kind: ${sorted(stats.byKind)}`,
    `HTTP status: ${sorted(stats.statuses)}`,
    `error codes: ${sorted(stats.codes)}`,
    `failures: ${stats.failures.length ? stats.failures.join('\n  ') : 'none'}`,
  ].join('\n');
}
