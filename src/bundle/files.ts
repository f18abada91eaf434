// Reading a bundle folder safely: every file named by the manifest must be a regular file inside it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, isAbsolute } from 'node:path';

export interface HashedFile {
  path: string;
  sha256: string;
  sizeBytes: number;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Resolves `file` inside `root` (both real paths); throws when it is missing, not a file, or a link out of the folder. */
export async function resolveInside(root: string, file: string): Promise<string> {
  const full = join(root, file);
  try {
    await lstat(full);
  } catch {
    throw new Error(`${file}: no such file in the bundle`);
  }
  const real = await realpath(full);
  const rel = relative(root, real);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${file}: points outside the bundle folder`);
  if (!(await stat(real)).isFile()) throw new Error(`${file}: not a regular file`);
  return real;
}

export async function hashBundleFiles(root: string, files: string[]): Promise<HashedFile[]> {
  return Promise.all(
    files.map(async (path) => {
      const real = await resolveInside(root, path);
      const [sha256, info] = await Promise.all([sha256File(real), stat(real)]);
      return { path, sha256, sizeBytes: info.size };
    }),
  );
}

/**
 * The real path of `path` when it lies below one of `roots` (after resolving every symlink, so a link
 * cannot lead out); throws otherwise. Guards what a remote caller may make the server read.
 */
export async function resolveUnderRoots(path: string, roots: readonly string[]): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new Error(`bundle folder not found: ${path}`);
  }
  for (const root of roots) {
    const realRoot = await realpath(root).catch(() => undefined);
    if (!realRoot) continue;
    const rel = relative(realRoot, real);
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return real;
  }
  throw new OutsideRootsError(`${path} is outside the folders bundles may be imported from (POLYHEAD_BUNDLE_ROOTS)`);
}

export class OutsideRootsError extends Error {}

/**
 * Removes temporary entries (`name.tmp-<pid>`, `name.<pid>.tmp`) that a process killed mid-write left in
 * `dir`, when that process is gone. Final names are only ever created by rename, so they are never partial.
 */
export async function removeStaleTemporaries(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const name of entries) {
    const pid = Number(/\.tmp-(\d+)$/.exec(name)?.[1] ?? /\.(\d+)\.tmp$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !isProcessAlive(pid)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An empty temporary folder for a bundle about to be written to `target` (inside `bundlesDir`), named for this
 * process so that removeStaleTemporaries clears it if the process dies; renamed to `target` when complete.
 */
export async function stagingFolder(bundlesDir: string, target: string): Promise<string> {
  await removeStaleTemporaries(bundlesDir);
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  return tmp;
}

/** Puts `files` of `fromDir` into `toDir`: each a hard link (free for a 28 MB backbone) or, across file systems, a copy. */
export async function linkFiles(fromDir: string, toDir: string, files: readonly string[]): Promise<void> {
  for (const file of files) {
    await mkdir(dirname(join(toDir, file)), { recursive: true });
    await link(join(fromDir, file), join(toDir, file)).catch(() => copyFile(join(fromDir, file), join(toDir, file)));
  }
}
