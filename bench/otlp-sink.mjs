#!/usr/bin/env node
// An OTLP/HTTP traces receiver that keeps nothing, for measuring what tracing costs the server
// (docs/tracing.md): it answers every export at once and counts requests, bytes and spans.
//   node bench/otlp-sink.mjs [port]     then   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port> npm run bench
// Prints its counts on SIGINT / SIGTERM.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 4318);
const counts = { exports: 0, bytes: 0, spans: 0 };
// Counting a key is cheaper than parsing the body: every span has one "spanId" (parents are "parentSpanId").
const SPAN_ID = /"spanId":/g;

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    counts.exports++;
    counts.bytes += body.length;
    counts.spans += body.match(SPAN_ID)?.length ?? 0;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(port, '127.0.0.1', () => console.log(`otlp sink listening on http://127.0.0.1:${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.log(JSON.stringify(counts));
    server.close();
    process.exit(0);
  });
}
