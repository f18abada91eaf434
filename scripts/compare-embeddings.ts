// What fine-tuning did to the default model's sentence embedding: paraphrase ranking on data/paraphrases.jsonl for
// each version (the paraphrase ranked among paraphrase + distractors by cosine to the query, as `similarity` ranks
// candidates), and the cosine between the two versions' pooled embeddings of the same held-out Brown sentences (the
// 1,000 that fine-tuning neither trained nor validated on, src/datasets/fine-tune-data.ts).
//
//   node --import @swc-node/register/esm-register scripts/compare-embeddings.ts [--tuned DIR] [--frozen DIR] [--results FILE] [--threads N]
//
// Defaults: the frozen default bundle (1.2.0) and the shipped fine-tuned one (models/default-fine-tuned, 1.3.0, built
// from the frozen backbone and its weight delta). Embeddings are the backbone's pooled output (extractPooled), what
// `embed` and `similarity` serve. Prints a table and writes docs/results/embeddings-comparison.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureDefaultBundle, ensureFineTunedDefaultBundle } from '../src/bundle/default-bundle.js';
import { parseBundleManifest } from '../src/bundle/manifest.js';
import { brownUnlabelled } from '../src/datasets/fine-tune-data.js';
import { readJsonl } from '../src/datasets/jsonl.js';
import {
  cosineSummary,
  pairedRankDifference,
  paraphraseGroupProblems,
  paraphraseTexts,
  rankByEmbedding,
  rankByWordOverlap,
  type CosineSummary,
  type ParaphraseGroup,
  type ParaphraseRanking,
} from '../src/evaluation/paraphrase-ranking.js';
import { packageRoot } from '../src/paths.js';
import { extractPooled, loadBundleBackbone } from '../src/training/features.js';

const { values: args } = parseArgs({
  options: {
    frozen: { type: 'string' },
    tuned: { type: 'string' },
    data: { type: 'string', default: join(packageRoot, 'data', 'paraphrases.jsonl') },
    results: { type: 'string', default: join(packageRoot, 'docs', 'results', 'embeddings-comparison.json') },
    threads: { type: 'string', default: '1' },
  },
});

interface Version {
  column: 'frozen' | 'fine-tuned';
  dir: string;
  name: string;
  version: string;
  backbone: string;
}

async function describe(column: Version['column'], dir: string): Promise<Version> {
  const manifest = parseBundleManifest(await readFile(join(dir, 'bundle.json'), 'utf8'));
  return { column, dir, name: manifest.name, version: manifest.version, backbone: `${manifest.backbone.name} ${manifest.backbone.version}` };
}

/** Pooled embeddings of `texts` by the bundle in `dir`, by text. */
async function pooledOf(dir: string, texts: readonly string[]): Promise<Float32Array[]> {
  const backbone = await loadBundleBackbone(dir, { intraOpThreads: Number(args.threads) });
  try {
    return await extractPooled(backbone, texts);
  } finally {
    await backbone.release();
  }
}

async function main(): Promise<void> {
  const bundles = join(packageRoot, '.cache', 'bundles');
  const log = (line: string) => console.error(line);
  const frozenDir = args.frozen ?? (await ensureDefaultBundle(bundles, log));
  const tunedDir = args.tuned ?? (await ensureFineTunedDefaultBundle(bundles, frozenDir, log));
  if (!tunedDir) throw new Error('no fine-tuned default model is shipped (models/default-fine-tuned/bundle.json): pass --tuned DIR');
  const versions = [await describe('frozen', frozenDir), await describe('fine-tuned', tunedDir)];

  const groups = await readJsonl<ParaphraseGroup>(args.data);
  const problems = paraphraseGroupProblems(groups);
  if (problems.length) throw new Error(`${args.data}: ${problems.length} problems, first: ${problems[0]}`);
  const texts = paraphraseTexts(groups);
  const heldOut = brownUnlabelled().heldOut;

  const ranking: Record<string, ParaphraseRanking> = {};
  const pooledParaphrases: Float32Array[][] = [];
  const pooledHeldOut: Float32Array[][] = [];
  for (const v of versions) {
    const started = performance.now();
    const pooled = await pooledOf(v.dir, [...texts, ...heldOut]);
    pooledParaphrases.push(pooled.slice(0, texts.length));
    pooledHeldOut.push(pooled.slice(texts.length));
    ranking[v.column] = rankByEmbedding(groups, new Map(texts.map((t, i) => [t, pooled[i]!])));
    log(`${v.column} ${v.name} ${v.version}: ${pooled.length} texts embedded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const baseline = rankByWordOverlap(groups);
  const difference = pairedRankDifference(ranking['frozen']!.ranks, ranking['fine-tuned']!.ranks);
  const drift: Record<string, CosineSummary> = {
    brownHeldOut: cosineSummary(pooledHeldOut[0]!, pooledHeldOut[1]!),
    paraphraseSentences: cosineSummary(pooledParaphrases[0]!, pooledParaphrases[1]!),
  };

  const candidates = groups.reduce((n, g) => n + 1 + g.distractors.length, 0);
  console.log(`\nParaphrase ranking, ${groups.length} groups of data/paraphrases.jsonl (${candidates} candidates; chance MRR ${chanceMrr(groups).toFixed(3)})`);
  console.log('| ranking by | version | MRR | top-1 |');
  console.log('|---|---|---|---|');
  console.log(`| word overlap (Jaccard, baseline) | - | ${baseline.meanReciprocalRank.toFixed(3)} | ${pct(baseline.top1)} |`);
  for (const v of versions) console.log(`| pooled-embedding cosine | ${v.column} ${v.version} (${v.backbone}) | ${ranking[v.column]!.meanReciprocalRank.toFixed(3)} | ${pct(ranking[v.column]!.top1)} |`);
  console.log(
    `\nMRR fine-tuned - frozen: ${signed(difference.meanDifference)} (95% bootstrap interval over groups [${signed(difference.ci95[0])}, ${signed(difference.ci95[1])}]); ` +
      `paraphrase ranked higher in ${difference.better} groups, lower in ${difference.worse}, same in ${difference.same}`,
  );
  console.log('\nCosine between the two versions\' pooled embeddings of the same text');
  console.log('| texts | n | mean | 5th percentile | min |');
  console.log('|---|---|---|---|---|');
  for (const [name, s] of Object.entries(drift)) console.log(`| ${name === 'brownHeldOut' ? 'held-out Brown sentences' : 'paraphrase-set sentences'} | ${s.texts} | ${s.mean.toFixed(4)} | ${s.p5.toFixed(4)} | ${s.min.toFixed(4)} |`);

  const record = {
    date: new Date().toISOString(),
    command: 'npm run eval:embeddings',
    versions: versions.map(({ column, name, version, backbone }) => ({ column, name, version, backbone })),
    embedding: 'pooled output of the backbone (extractPooled), as embed / similarity serve it',
    paraphraseRanking: {
      data: relative(packageRoot, args.data),
      groups: groups.length,
      candidates,
      chanceMeanReciprocalRank: chanceMrr(groups),
      ties: 'a candidate with the paraphrase\'s exact cosine counts as ranked above it',
      wordOverlapBaseline: figures(baseline),
      frozen: figures(ranking['frozen']!),
      fineTuned: figures(ranking['fine-tuned']!),
      fineTunedMinusFrozen: difference,
      ranks: { frozen: ranking['frozen']!.ranks, fineTuned: ranking['fine-tuned']!.ranks },
    },
    embeddingCosine: {
      definition: 'cosine of the fine-tuned and the frozen pooled embedding of the same text; percentile by linear interpolation',
      brownHeldOut: { ...drift.brownHeldOut, source: 'brownUnlabelled().heldOut (src/datasets/fine-tune-data.ts)' },
      paraphraseSentences: drift.paraphraseSentences,
    },
  };
  await mkdir(dirname(args.results), { recursive: true });
  await writeFile(args.results, `${JSON.stringify(record, null, 2)}\n`);
  log(`wrote ${relative(packageRoot, args.results)}`);
}

function figures(r: ParaphraseRanking) {
  return { meanReciprocalRank: r.meanReciprocalRank, top1: r.top1 };
}

/** MRR of a ranking that puts the paraphrase at a uniformly random place. */
function chanceMrr(groups: readonly ParaphraseGroup[]): number {
  let sum = 0;
  for (const g of groups) {
    const n = g.distractors.length + 1;
    let h = 0;
    for (let k = 1; k <= n; k++) h += 1 / k;
    sum += h / n;
  }
  return sum / groups.length;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;

await main();
