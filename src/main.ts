// `npm start`: run the server with settings from the environment until SIGTERM or SIGINT.
import { readConfig } from './config.js';
import { startPolyhead } from './server/start.js';

const config = readConfig();
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
