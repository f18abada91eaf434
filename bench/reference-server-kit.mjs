/**
 * What the transformers.js baseline servers (bench/hf-reference-server.mjs, bench/translate-reference-server.mjs)
 * share: loading @huggingface/transformers from the test-only package tests/reference with remote models off, and a
 * plain node:http JSON endpoint that takes { texts: string[], ... } at one path.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A function that prints `<name>: <message>` and exits 1. */
export function failer(name) {
  return (message) => {
    console.error(`${name}: ${message}`);
    process.exit(1);
  };
}

/** The ESM entry of @huggingface/transformers as installed in tests/reference (not resolvable from bench/). */
function transformersEntry(fail) {
  const referenceDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'reference');
  let main;
  try {
    main = createRequire(join(referenceDir, 'package.json')).resolve('@huggingface/transformers');
  } catch {
    fail(`@huggingface/transformers is not installed in ${referenceDir}: run \`npm run reference:install\``);
  }
  for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
    if (pkg.name !== '@huggingface/transformers') continue;
    const esm = pkg.exports?.node?.import?.default;
    return esm ? join(dir, esm) : main;
  }
  return main;
}

/** transformers.js's `pipeline`, reading model folders by absolute path only (no Hub, no file cache). */
export async function loadPipeline(fail) {
  const { env, pipeline } = await import(pathToFileURL(transformersEntry(fail)).href);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/';
  env.useFSCache = false;
  env.useBrowserCache = false;
  return pipeline;
}

function send(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function readJson(req, maxBodyBytes) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > maxBodyBytes) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('body is not JSON'), { status: 400 });
  }
}

/**
 * POST `path` with { texts: string[], ... }: `answer(texts, body)` resolves with the JSON to send, or throws an Error
 * with a `status`. Prints `listening on http://HOST:PORT` once listening; SIGINT and SIGTERM close it.
 */
export function serveTexts({ path, host, port, maxBodyBytes, answer }) {
  const server = createServer(async (req, res) => {
    if (req.url !== path) return send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return send(res, 405, { error: 'POST only' });
    try {
      const body = await readJson(req, maxBodyBytes);
      const texts = body?.texts;
      if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
        return send(res, 400, { error: 'texts must be a non-empty array of strings' });
      }
      send(res, 200, await answer(texts, body));
    } catch (error) {
      if (!res.headersSent) send(res, error.status ?? 500, { error: error.message });
    }
  });
  server.listen(Number(port), host, () => {
    console.log(`listening on http://${host}:${server.address().port}`);
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    });
  }
}
