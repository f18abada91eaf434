// Starts the example app backend: POLYHEAD_URL (default http://localhost:4000/graphql), POLYHEAD_API_KEY
// (optional), PORT (default 3000), HOST (default 127.0.0.1).
import { startAppBackend } from './service.js';

const backend = await startAppBackend({
  polyhead: { url: process.env.POLYHEAD_URL ?? 'http://localhost:4000/graphql', apiKey: process.env.POLYHEAD_API_KEY || undefined },
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? '127.0.0.1',
});
console.log(`app backend ready at ${backend.url} (POST /review, GET /models)`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void backend.close().then(() => process.exit(0)));
