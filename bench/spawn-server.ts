// A server process for a benchmark (Polyhead's dist/src/main.js, or a baseline server), ready once it says so.
import { spawn, type ChildProcess } from 'node:child_process';

/** Spawns `node argv...` and resolves with its URL once `pattern` (one capture: the URL) shows on its stdout. */
export async function spawnServer(argv: string[], env: NodeJS.ProcessEnv, pattern: RegExp) {
  const child: ChildProcess = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = pattern.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}: ${out}`)));
  });
  child.stdout!.resume(); // keep draining its log
  const stop = () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM'))));
  return { url, stop, pid: child.pid! };
}
