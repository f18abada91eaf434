// `npm start`: run the server with settings from the environment until SIGTERM or SIGINT.
// graphql-js chooses its type checks once, when it loads: in development mode it adds a cross-realm
// instanceof check that costs a few per cent of every request's CPU. Unless told otherwise, run as
// production (Polyhead's own development switch is NODE_ENV=development, see config.ts).
process.env.NODE_ENV ??= 'production';
const { readConfig } = await import('./config.js');
const { startPolyhead } = await import('./server/start.js');

const config = readConfig();
const cluster = (await import('node:cluster')).default;
if (config.workers > 1 && cluster.isPrimary) {
  // The primary of POLYHEAD_WORKERS server processes: forks, relays, restarts; serves nothing itself.
  if (!config.databaseUrl) {
    console.error(`polyhead failed to start: POLYHEAD_WORKERS=${config.workers} needs DATABASE_URL (PostgreSQL): the embedded PGlite database belongs to one process`);
    process.exit(1);
  }
  const { runClusterPrimary } = await import('./server/cluster.js');
  const log = config.logLevel === 'silent' ? () => {} : (line: string) => console.log(line);
  process.exit(await runClusterPrimary(config.workers, log));
}
try {
  const server = await startPolyhead(config);
  const stop = async (signal: string) => {
    const since = Date.now();
    await server.close();
    if (config.logLevel !== 'silent') console.log(`polyhead stopped on ${signal} after draining for ${Date.now() - since} ms`);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
} catch (error) {
  console.error(`polyhead failed to start: ${(error as Error).message}`);
  process.exit(1);
}
