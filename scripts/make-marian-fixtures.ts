// Writes random-weight Marian (opus-mt) translation folders (tests/helpers/marian-fixtures.ts) in the layout Optimum
// exports and transformers.js reads, one sub-folder per kind: nothing is downloaded.
//
//   npm run fixtures:marian -- --out DIR [--kind K ...] [--layout merged|unmerged|both] [--seed N] [--empty-encoder-present]
//
// Without --kind only marian-tiny is written. opus-mt-shape (opus-mt-en-de's shape: 6+6 layers, d_model 512,
// 58,101 pieces) is for benchmarks: about 0.5 GB with --layout merged and 1.2 GB with both; keep it out of git.
// --empty-encoder-present makes the merged decoder's cache branch output Optimum's empty present.*.encoder constants.
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MARIAN_FIXTURE_KINDS, writeMarianFixture, type MarianFixtureKind, type MarianLayout } from '../tests/helpers/marian-fixtures.js';

const USAGE = `usage: make-marian-fixtures --out DIR [--kind K ...] [--layout merged|unmerged|both] [--seed N] [--empty-encoder-present]
kinds: ${MARIAN_FIXTURE_KINDS.join(', ')} (default: marian-tiny)`;

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
    layout: { type: 'string' },
    seed: { type: 'string' },
    'empty-encoder-present': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.out) fail('--out is required');
const kinds = (values.kind ?? ['marian-tiny']) as MarianFixtureKind[];
for (const kind of kinds) if (!MARIAN_FIXTURE_KINDS.includes(kind)) fail(`unknown kind '${kind}'`);
const layout = (values.layout ?? 'both') as MarianLayout;
if (!['merged', 'unmerged', 'both'].includes(layout)) fail(`--layout must be merged, unmerged or both, not '${layout}'`);
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && !Number.isInteger(seed)) fail(`--seed must be an integer, not '${values.seed}'`);

const out = resolve(values.out);
for (const kind of kinds) {
  const dir = join(out, kind);
  const start = performance.now();
  const info = await writeMarianFixture(kind, dir, {
    layout,
    ...(seed === undefined ? {} : { seed }),
    ...(values['empty-encoder-present'] ? { cacheBranchEncoderPresent: 'empty' as const } : {}),
  });
  const ms = performance.now() - start;
  const mb = folderBytes(dir) / 2 ** 20;
  const lengths = [...info.calibration.lengths].sort((a, b) => a - b);
  console.log(
    `${kind.padEnd(14)} layout ${layout.padEnd(8)} vocab ${String(info.vocabSize).padStart(6)}  ${mb.toFixed(1).padStart(7)} MiB  ${ms.toFixed(0).padStart(6)} ms  ` +
      `eos bias ${info.calibration.eosBias.toFixed(3)}, greedy lengths ${lengths[0]}-${lengths.at(-1)} (median ${lengths[lengths.length >> 1]}) on ${info.calibration.texts} Brown sentences  ${dir}`,
  );
}
