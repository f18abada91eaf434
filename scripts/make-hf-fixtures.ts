// Writes random-weight Hugging Face model folders (tests/helpers/hf-fixtures.ts) for tests and benchmarks, one
// sub-folder per kind: nothing is downloaded.
//
//   npm run fixtures:hf -- --out DIR [--kind K ...] [--seed N] [--pooling mean|cls|max] [--no-normalize]
//
// Without --kind every kind is written, minilm-l6 included (its onnx/model.onnx is about 90 MB: keep it out of git).
// --pooling and --no-normalize apply to the sentence-transformers kinds (minilm-st, minilm-l6).
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HF_FIXTURE_KINDS, writeHfFixture, type HfFixtureKind, type HfFixtureOptions, type PoolingMode } from '../tests/helpers/hf-fixtures.js';

const USAGE = `usage: make-hf-fixtures --out DIR [--kind K ...] [--seed N] [--pooling mean|cls|max] [--no-normalize]
kinds: ${HF_FIXTURE_KINDS.join(', ')}`;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    total += stat.isDirectory() ? folderBytes(path) : stat.size;
  }
  return total;
}

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    kind: { type: 'string', multiple: true },
    seed: { type: 'string' },
    pooling: { type: 'string' },
    'no-normalize': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.out) fail('--out is required');
const kinds = (values.kind ?? [...HF_FIXTURE_KINDS]) as HfFixtureKind[];
for (const kind of kinds) if (!HF_FIXTURE_KINDS.includes(kind)) fail(`unknown kind '${kind}'`);
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && !Number.isInteger(seed)) fail(`--seed must be an integer, not '${values.seed}'`);
const pooling = values.pooling as PoolingMode | undefined;
if (pooling !== undefined && !['mean', 'cls', 'max'].includes(pooling)) fail(`--pooling must be mean, cls or max, not '${pooling}'`);

const out = resolve(values.out);
for (const kind of kinds) {
  const options: HfFixtureOptions = { ...(seed === undefined ? {} : { seed }) };
  if (kind === 'minilm-st' || kind === 'minilm-l6') {
    if (pooling) options.pooling = pooling;
    if (values['no-normalize']) options.normalize = false;
  }
  const dir = join(out, kind);
  const start = performance.now();
  const info = await writeHfFixture(kind, dir, options);
  const ms = performance.now() - start;
  const mb = folderBytes(dir) / 2 ** 20;
  console.log(`${kind.padEnd(16)} ${info.architecture.padEnd(36)} vocab ${String(info.vocabSize).padStart(6)}  ${mb.toFixed(1).padStart(6)} MiB  ${ms.toFixed(0).padStart(5)} ms  ${dir}`);
}
