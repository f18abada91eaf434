// Pang & Lee sentence polarity (v1.0 subset: 2,000 positive + 2,000 negative movie-review sentences),
// as shipped in Debian's python3-pattern test corpora.
//
// Its licence ("for personal use") forbids redistribution, so the project never commits it: the loader
// fetches the Debian package at build/test time and caches a JSONL in a gitignored folder.
//
// File names: the corpora README says `polarity-en-pang&lee1.csv` holds the 4,000 sentences, but the
// names are swapped: `pang&lee1` has 1,500 full reviews and `pang&lee2` the 4,000 sentences (checked
// on 2.6+git20180818-4). The loader checks the counts, so a future swap back fails loudly.
//
// Format (checked): UTF-8 with BOM, two quoted columns `"label","text"`, label "1" = positive and
// "-1" = negative, quotes doubled inside fields, each text ending in " \n" inside its quotes.
// The text is the original's: lower-cased and tokenised (" , ", "it's", "( ... )"); `detokenizePangLee`
// makes it closer to natural text if a trainer wants that (the raw text is what is cached).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseCsv } from './csv.js';
import { readJsonl, writeJsonl } from './jsonl.js';

export { splitDataset } from './split.js';

const run = promisify(execFile);

export type SentimentLabel = 'negative' | 'positive';

export interface SentimentExample {
  text: string;
  label: SentimentLabel;
}

export const DEBIAN_PACKAGE = 'python3-pattern';
/** Inside the package. */
export const CORPORA_DIR = 'usr/share/doc/python3-pattern/test/corpora';
export const SENTENCES_FILE = 'polarity-en-pang&lee2.csv';
export const EXPECTED_PER_LABEL = 2000;
export const DEFAULT_CACHE_DIR = '.cache/datasets';

const CACHE_FILE = 'pang-lee-sentence-polarity.jsonl';
const CACHE_META_FILE = 'pang-lee-sentence-polarity.meta.json';

/** What the registry records about this dataset. `source` gets the Debian version actually used. */
export const PANG_LEE_METADATA = {
  name: 'pang-lee-sentence-polarity',
  source: 'Debian python3-pattern 2.6+git20180818-4 test corpora; Pang & Lee 2005 (sentence polarity v1.0 subset)',
  file: `${CORPORA_DIR}/${SENTENCES_FILE}`,
  // Verbatim from test/corpora/README.txt in the package (the package's copyright file covers the code only).
  license: "The corpora are meant for personal use, they are not part of the module's BSD license.",
  redistributable: false,
  citation:
    'Bo Pang and Lillian Lee. Seeing stars: Exploiting class relationships for sentiment categorization with respect to rating scales. ACL 2005.',
  labels: ['negative', 'positive'] as const,
  size: 2 * EXPECTED_PER_LABEL,
  language: 'en',
  domain: 'movie reviews',
} as const;

export interface PangLeeCacheMeta {
  debianVersion: string;
  source: string;
  csvSha256: string;
  count: number;
}

/** Raised when the Debian package cannot be fetched (no apt, no mirror): callers may skip, not fail. */
export class PangLeeFetchError extends Error {
  override name = 'PangLeeFetchError';
}

const LABELS: Record<string, SentimentLabel> = { '1': 'positive', '-1': 'negative' };

/** Parses the corpus CSV into examples and checks it is the 2,000/2,000 sentence file. */
export function parsePangLeeCsv(csvText: string, { expectedPerLabel = EXPECTED_PER_LABEL } = {}): SentimentExample[] {
  const examples: SentimentExample[] = [];
  for (const [index, row] of parseCsv(csvText).entries()) {
    if (row.length === 1 && row[0] === '') continue;
    if (row.length !== 2) throw new Error(`Pang & Lee CSV row ${index + 1}: ${row.length} columns, expected 2`);
    const label = LABELS[row[0]!.trim()];
    if (!label) throw new Error(`Pang & Lee CSV row ${index + 1}: unknown label ${JSON.stringify(row[0])}`);
    const text = row[1]!.trim();
    if (text === '') throw new Error(`Pang & Lee CSV row ${index + 1}: empty text`);
    examples.push({ text, label });
  }
  const positives = examples.filter((e) => e.label === 'positive').length;
  const negatives = examples.length - positives;
  if (expectedPerLabel > 0 && (positives !== expectedPerLabel || negatives !== expectedPerLabel)) {
    throw new Error(
      `Pang & Lee CSV: ${positives} positive / ${negatives} negative, expected ${expectedPerLabel} each ` +
        '(the corpora README swaps the two pang&lee file names: is this the sentence file?)',
    );
  }
  return examples;
}

/**
 * Light, reversible-in-spirit clean-up of the tokenised corpus text: joins punctuation to words,
 * tightens brackets and quotes, capitalises the first letter. It does not restore original casing.
 */
export function detokenizePangLee(text: string): string {
  let out = text
    .replace(/\s+/g, ' ')
    .replace(/ ([,.;:!?%])/g, '$1')
    .replace(/\( /g, '(')
    .replace(/ \)/g, ')')
    .replace(/" ([^"]*?) "/g, '"$1"')
    .replace(/ (n't|'s|'re|'ve|'ll|'d|'m)\b/g, '$1')
    .trim();
  out = out.replace(/^([^a-z]*)([a-z])/, (_m, before: string, letter: string) => before + letter.toUpperCase());
  return out;
}

async function downloadDeb(workDir: string): Promise<string> {
  const download = () => run('apt-get', ['download', DEBIAN_PACKAGE], { cwd: workDir, maxBuffer: 16 << 20 });
  try {
    await download();
  } catch (firstError) {
    // A stale or empty package list is the usual cause; only root may refresh it.
    if (process.getuid?.() !== 0) {
      throw new PangLeeFetchError(`apt-get download ${DEBIAN_PACKAGE} failed: ${(firstError as Error).message}`);
    }
    try {
      await run('apt-get', ['update'], { maxBuffer: 16 << 20 });
      await download();
    } catch (error) {
      throw new PangLeeFetchError(`apt-get download ${DEBIAN_PACKAGE} failed (also after apt-get update): ${(error as Error).message}`);
    }
  }
  const deb = (await readdir(workDir)).find((name) => name.startsWith(`${DEBIAN_PACKAGE}_`) && name.endsWith('.deb'));
  if (!deb) throw new PangLeeFetchError(`apt-get download ${DEBIAN_PACKAGE} left no .deb file`);
  return join(workDir, deb);
}

/** Fetches the .deb with apt-get download (no root needed), unpacks it with dpkg -x, returns the CSV and version. */
export async function fetchPangLeeCsv(): Promise<{ csvText: string; debianVersion: string }> {
  const workDir = await mkdtemp(join(tmpdir(), 'polyhead-pang-lee-'));
  try {
    const debPath = await downloadDeb(workDir);
    let debianVersion: string;
    try {
      debianVersion = (await run('dpkg-deb', ['-f', debPath, 'Version'])).stdout.trim();
      await run('dpkg', ['-x', debPath, join(workDir, 'root')], { maxBuffer: 16 << 20 });
    } catch (error) {
      throw new PangLeeFetchError(`could not unpack ${debPath} with dpkg: ${(error as Error).message}`);
    }
    const csvText = await readFile(join(workDir, 'root', CORPORA_DIR, SENTENCES_FILE), 'utf8');
    return { csvText, debianVersion };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Reads the CSV from an installed python3-pattern, when there is one (saves the download). */
async function readInstalledCsv(): Promise<{ csvText: string; debianVersion: string } | undefined> {
  const path = join('/', CORPORA_DIR, SENTENCES_FILE);
  if (!existsSync(path)) return undefined;
  let debianVersion = 'installed';
  try {
    debianVersion = (await run('dpkg-query', ['-W', '-f=${Version}', DEBIAN_PACKAGE])).stdout.trim() || debianVersion;
  } catch {
    // Not registered with dpkg (copied by hand): keep 'installed'.
  }
  return { csvText: await readFile(path, 'utf8'), debianVersion };
}

export function pangLeeSource(debianVersion: string): string {
  return `Debian python3-pattern ${debianVersion} test corpora; Pang & Lee 2005 (sentence polarity v1.0 subset)`;
}

/**
 * The 4,000 labelled sentences, in corpus order (2,000 positive then 2,000 negative).
 * Order of preference: the JSONL cache in `cacheDir`; an installed python3-pattern; apt-get download.
 * Throws PangLeeFetchError when the package cannot be fetched.
 */
export async function loadPangLeeSentences(cacheDir: string = DEFAULT_CACHE_DIR): Promise<SentimentExample[]> {
  const cachePath = resolve(cacheDir, CACHE_FILE);
  const metaPath = resolve(cacheDir, CACHE_META_FILE);
  if (existsSync(cachePath) && existsSync(metaPath)) {
    const cached = await readJsonl<SentimentExample>(cachePath);
    if (cached.length === 2 * EXPECTED_PER_LABEL) return cached;
  }
  const fetched = (await readInstalledCsv()) ?? (await fetchPangLeeCsv());
  const examples = parsePangLeeCsv(fetched.csvText);
  const meta: PangLeeCacheMeta = {
    debianVersion: fetched.debianVersion,
    source: pangLeeSource(fetched.debianVersion),
    csvSha256: createHash('sha256').update(fetched.csvText).digest('hex'),
    count: examples.length,
  };
  await mkdir(resolve(cacheDir), { recursive: true });
  // Write then rename, so a concurrent or interrupted run never sees a half-written cache.
  const partial = `.partial-${process.pid}`;
  await writeJsonl(cachePath + partial, examples);
  await writeFile(metaPath + partial, JSON.stringify(meta, null, 2) + '\n', 'utf8');
  await rename(cachePath + partial, cachePath);
  await rename(metaPath + partial, metaPath);
  return examples;
}

/** The cache's provenance record (Debian version, CSV sha256), once `loadPangLeeSentences` has run. */
export async function readPangLeeCacheMeta(cacheDir: string = DEFAULT_CACHE_DIR): Promise<PangLeeCacheMeta | undefined> {
  const metaPath = resolve(cacheDir, CACHE_META_FILE);
  if (!existsSync(metaPath)) return undefined;
  return JSON.parse(await readFile(metaPath, 'utf8')) as PangLeeCacheMeta;
}
