import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildTokenizerJson, type VocabEntry } from './tokenizer-json.js';
import { sha256Hex } from './convert-use-lite.js';

/** Reads vocab.json from the model folder and writes tokenizer.json; returns its path and sha256. */
export async function writeUseLiteTokenizerJson(options: { modelDir: string; outFile: string }): Promise<{ outFile: string; sha256: string }> {
  const vocab = JSON.parse(await readFile(join(options.modelDir, 'vocab.json'), 'utf8')) as VocabEntry[];
  const bytes = new TextEncoder().encode(JSON.stringify(buildTokenizerJson(vocab)));
  await mkdir(dirname(options.outFile), { recursive: true });
  await writeFile(options.outFile, bytes);
  return { outFile: options.outFile, sha256: sha256Hex(bytes) };
}
