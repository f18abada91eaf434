#!/usr/bin/env node
/**
 * Writes the USE-lite model bundle files into a folder:
 *   node dist/src/convert/cli.js <outDir> [modelDir]
 * -> <outDir>/backbone.onnx and <outDir>/tokenizer.json; prints their sha256 as JSON.
 */
import { join } from 'node:path';
import { convertUseLite, defaultUseLiteModelDir } from './convert-use-lite.js';
import { writeUseLiteTokenizerJson } from './write-tokenizer-json.js';

async function main(argv: string[]): Promise<void> {
  const [outDir, modelDir = defaultUseLiteModelDir()] = argv;
  if (!outDir) {
    process.stderr.write('usage: cli.js <outDir> [modelDir]\n');
    process.exitCode = 2;
    return;
  }
  const backbone = await convertUseLite({ modelDir, outFile: join(outDir, 'backbone.onnx') });
  const tokenizer = await writeUseLiteTokenizerJson({ modelDir, outFile: join(outDir, 'tokenizer.json') });
  const { tfOps: _tfOps, ...summary } = backbone;
  process.stdout.write(`${JSON.stringify({ backbone: summary, tokenizer }, null, 2)}\n`);
}

await main(process.argv.slice(2));
