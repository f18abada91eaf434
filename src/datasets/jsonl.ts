// JSON Lines: one JSON value per line, UTF-8, "\n" line ends. Blank lines are ignored on read.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Parses JSONL text; errors name the 1-based line that failed. */
export function parseJsonl<T = unknown>(text: string): T[] {
  const items: T[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    try {
      items.push(JSON.parse(line) as T);
    } catch (error) {
      throw new Error(`JSONL line ${index + 1}: ${(error as Error).message}`);
    }
  }
  return items;
}

/** Serialises items as JSONL (a trailing newline after the last item). */
export function toJsonl(items: readonly unknown[]): string {
  return items.map((item) => JSON.stringify(item)).join('\n') + (items.length > 0 ? '\n' : '');
}

export async function readJsonl<T = unknown>(path: string): Promise<T[]> {
  return parseJsonl<T>(await readFile(path, 'utf8'));
}

/** Writes items as JSONL, creating the parent folder if needed. */
export async function writeJsonl(path: string, items: readonly unknown[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, toJsonl(items), 'utf8');
}
