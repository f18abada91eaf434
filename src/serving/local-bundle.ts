// Where a registered version's files are on this host. Its own bundle folder when that is here and every file
// in it is the one registered (the host that imported or trained it); otherwise a folder in this host's cache,
// built from the registry's blobs (any other replica). Every file is checked by sha256 before it is used, so a
// changed folder, or a corrupt or partial cached file, is never loaded: a cached file that fails is fetched again.
//
// Cache layout: `blobs/<sha256>` holds each content once (a backbone shared by ten versions is stored once);
// `bundles/<key>/<path>` are hard links to those blobs in the layout the engine reads, one folder per content
// (key: the hash of bundle.json's and every file's sha256). Files only ever appear under their final names by
// rename, so a process killed mid-fetch leaves a temporary name, never half a file.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { removeStaleTemporaries, resolveInside, sha256File } from '../bundle/files.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { missingBlobs, readBlobToFile } from '../registry/blob-store.js';

/** What locating a version needs of its registry row. */
export interface VersionFiles {
  version: string;
  bundlePath: string;
  manifestSha256: string;
  files: ReadonlyArray<{ path: string; sha256: string }>;
}

export class LocalBundles {
  private cleaned = false;
  /**
   * Files of this host's intact bundle folders by sha256. A new version made on another replica mostly shares its
   * parent's files (the backbone, the tokenizer): those are copied from here instead of fetched from the registry,
   * which makes a head trained elsewhere servable here in well under a second.
   */
  private readonly onThisHost = new Map<string, string>();

  constructor(
    private readonly prisma: PrismaClient,
    /** POLYHEAD_CACHE_DIR. */
    readonly cacheDir: string,
  ) {}

  /** The registry's record of a version's files, for `folderOf`. */
  async filesOf(version: { id: number; version: string; bundlePath: string; manifestSha256: string }): Promise<VersionFiles> {
    const files = await this.prisma.bundleFile.findMany({ where: { versionId: version.id }, select: { path: true, sha256: true } });
    return { version: version.version, bundlePath: version.bundlePath, manifestSha256: version.manifestSha256, files };
  }

  /** A folder on this host holding exactly the version's registered files; throws (saying why) when there is none. */
  async folderOf(version: VersionFiles): Promise<string> {
    const problem = await checkFolder(version);
    if (!problem) {
      this.onThisHost.set(version.manifestSha256, join(version.bundlePath, 'bundle.json'));
      for (const file of version.files) this.onThisHost.set(file.sha256, join(version.bundlePath, file.path));
      return version.bundlePath;
    }
    const wanted = [{ path: 'bundle.json', sha256: version.manifestSha256 }, ...version.files];
    const missing = await missingBlobs(this.prisma, wanted.map((f) => f.sha256));
    if (missing.length) {
      const names = wanted.filter((f) => missing.includes(f.sha256)).map((f) => f.path);
      throw new Error(
        `its bundle folder is not usable on this host (${problem}) and the registry holds no copy of ${names.join(', ')} ` +
          '(a version registered before bundle files were kept in the registry: import its folder again to store them)',
      );
    }
    return this.fillCache(wanted);
  }

  private async fillCache(files: ReadonlyArray<{ path: string; sha256: string }>): Promise<string> {
    const blobs = join(this.cacheDir, 'blobs');
    await mkdir(blobs, { recursive: true });
    if (!this.cleaned) {
      await removeStaleTemporaries(blobs);
      this.cleaned = true;
    }
    const key = createHash('sha256')
      .update(files.map((f) => `${f.path}\0${f.sha256}`).sort().join('\n'))
      .digest('hex');
    const dir = join(this.cacheDir, 'bundles', key);
    for (const file of files) {
      const blob = await this.verifiedBlob(blobs, file.sha256);
      await placeFile(blob, file.sha256, insideFolder(dir, file.path));
    }
    return dir;
  }

  /** Blobs being verified or fetched: two loads of one version at once (a desired-state change racing an
   *  explicit loadModel) share one fetch instead of each renaming its own copy over the other's. */
  private readonly inFlight = new Map<string, Promise<string>>();

  /** `blobs/<sha256>`, checked by hash; fetched from the registry when absent or not what its name says. */
  private verifiedBlob(blobs: string, sha256: string): Promise<string> {
    const key = join(blobs, sha256);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.verifyOrFetch(blobs, sha256).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async verifyOrFetch(blobs: string, sha256: string): Promise<string> {
    const path = join(blobs, sha256);
    if ((await sha256File(path).catch(() => undefined)) === sha256) return path;
    if (await this.copyFromThisHost(sha256, path)) return path;
    await readBlobToFile(this.prisma, sha256, path);
    return path;
  }

  /** True when a file with this content was found in one of this host's bundle folders and copied to `path`. */
  private async copyFromThisHost(sha256: string, path: string): Promise<boolean> {
    const source = this.onThisHost.get(sha256);
    if (!source) return false;
    // A copy, not a link: an edit of that folder must not reach the cache. Checked again after copying.
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp-${process.pid}`;
    try {
      await copyFile(source, tmp);
      if ((await sha256File(tmp)) !== sha256) throw new Error('changed since it was checked');
      await rename(tmp, path);
      return true;
    } catch {
      this.onThisHost.delete(sha256);
      await rm(tmp, { force: true });
      return false;
    }
  }
}

/** Undefined when `bundlePath` holds the registered bundle.json and files; else what is wrong with it. */
async function checkFolder(version: VersionFiles): Promise<string | undefined> {
  try {
    const manifestSha = await sha256File(join(version.bundlePath, 'bundle.json')).catch(() => 'missing');
    if (manifestSha === 'missing') return 'the folder it was registered from is not on this host';
    if (manifestSha !== version.manifestSha256) return 'bundle.json changed on disk since it was registered';
    for (const file of version.files) {
      const sha = await sha256File(await resolveInside(version.bundlePath, file.path));
      if (sha !== file.sha256) return `${file.path} changed on disk since it was registered (sha256 ${sha.slice(0, 12)}…)`;
    }
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Makes `target` the verified blob: kept when it is already the same file (a hard link to it) or has the same
 * content (a copy, where links are not possible); otherwise replaced in one rename, so a process reading the
 * folder sees the old file or the new one, never a mix.
 */
async function placeFile(blob: string, sha256: string, target: string): Promise<void> {
  const [source, current] = await Promise.all([stat(blob), stat(target).catch(() => undefined)]);
  if (current && current.ino === source.ino && current.dev === source.dev) return;
  if (current && (await sha256File(target).catch(() => undefined)) === sha256) return;
  await mkdir(dirname(target), { recursive: true });
  await removeStaleTemporaries(dirname(target));
  // Random part: two loads in this process may place the same file at once.
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp-${process.pid}`;
  await link(blob, tmp).catch(() => copyFile(blob, tmp));
  await rename(tmp, target);
}

/** `path` (from the registry) inside `dir`; a path that would lead out is a registry fault, never followed. */
function insideFolder(dir: string, path: string): string {
  const full = join(dir, path);
  const rel = relative(dir, full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`registered file path ${JSON.stringify(path)} is not inside the bundle`);
  return full;
}
