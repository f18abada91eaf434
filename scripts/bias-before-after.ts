// The sentiment head of the default model before and after fine-tuning: the counterfactual bias probe
// (src/evaluation/bias-probe.ts: gender and ethnicity score gaps with their cluster-bootstrap 95% intervals, label-flip
// shares) and calibration (expected calibration error, 15 bins) on the Pang & Lee test split, for the frozen version
// (1.2.0) and the fine-tuned one (1.3.0).
//
//   node --import @swc-node/register/esm-register scripts/bias-before-after.ts [--tuned DIR] [--frozen DIR] [--results FILE] [--threads N]
//
// Both bundles are loaded into one Engine and every score is what `sentiment` / evaluateHead serve (the engine's
// batching, head files and decoding, in chunks of 256 texts as EvaluationService sends them). The test split is the
// one the shipped heads never trained, early-stopped or calibrated on (seed polyhead-sentiment-v1). The ECE interval is
// a seeded bootstrap over test sentences. Prints tables and writes docs/results/bias-before-after.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureDefaultBundle, ensureFineTunedDefaultBundle } from '../src/bundle/default-bundle.js';
import { parseBundleManifest } from '../src/bundle/manifest.js';
import { builtInClassification } from '../src/datasets/fine-tune-data.js';
import { readJsonl } from '../src/datasets/jsonl.js';
import { PANG_LEE_METADATA } from '../src/datasets/pang-lee.js';
import { createRng } from '../src/datasets/split.js';
import { Engine } from '../src/engine/engine.js';
import type { Classification } from '../src/engine/heads/head.js';
import { runBiasProbe, type BiasProbeResult } from '../src/evaluation/bias-probe.js';
import { expectedCalibrationError } from '../src/evaluation/calibration.js';
import { classificationFigures, type ClassificationFigures } from '../src/evaluation/classification-metrics.js';
import { packageRoot } from '../src/paths.js';

const { values: args } = parseArgs({
  options: {
    frozen: { type: 'string' },
    tuned: { type: 'string' },
    results: { type: 'string', default: join(packageRoot, 'docs', 'results', 'bias-before-after.json') },
    threads: { type: 'string', default: '1' },
  },
});

/** Texts per engine call and how long one may wait, as EvaluationService's defaults. */
const chunk = 256;
const timeoutMs = 120_000;
const head = 'sentiment';
const eceReplicates = 2000;

interface Version {
  column: 'frozen' | 'fine-tuned';
  name: string;
  version: string;
  backbone: string;
}

async function main(): Promise<void> {
  const bundles = join(packageRoot, '.cache', 'bundles');
  const log = (line: string) => console.error(line);
  const frozenDir = args.frozen ?? (await ensureDefaultBundle(bundles, log));
  const tunedDir = args.tuned ?? (await ensureFineTunedDefaultBundle(bundles, frozenDir, log));
  if (!tunedDir) throw new Error('no fine-tuned default model is shipped (models/default-fine-tuned/bundle.json): pass --tuned DIR');
  const test = (await builtInClassification(PANG_LEE_METADATA.name, join(packageRoot, '.cache'))).test;
  const ood = await readJsonl<{ text: string; label: string }>(join(packageRoot, 'data', 'sentiment-ood.jsonl'));

  const engine = Engine.withDefaults({ session: { executionProvider: 'cpu', intraOpThreads: Number(args.threads), graphOptimization: 'all' }, requestTimeoutMs: timeoutMs });
  const rows: Array<{ version: Version; probe: BiasProbeResult; test: ClassificationFigures & { eceCi95: [number, number] }; ood: ClassificationFigures }> = [];
  try {
    const versions: Version[] = [];
    for (const [column, dir] of [['frozen', frozenDir], ['fine-tuned', tunedDir]] as const) {
      const manifest = parseBundleManifest(await readFile(join(dir, 'bundle.json'), 'utf8'));
      await engine.load(column, dir);
      versions.push({ column, name: manifest.name, version: manifest.version, backbone: `${manifest.backbone.name} ${manifest.backbone.version}` });
    }
    for (const version of versions) {
      const { column } = version;
      const labels = engine.validate(column, [head]).heads.get(head)!.spec.labels;
      const positive = labels.indexOf('positive');
      if (positive < 0) throw new Error(`${column}: the ${head} head has labels ${labels.join(', ')}, no "positive"`);
      const serve = (texts: readonly string[]) => served(engine, column, texts);
      const started = performance.now();
      const probe = await runBiasProbe(async (texts) => (await serve(texts)).map((c) => ({ positive: c.scores[positive]!.score, label: c.label })), { chunk });
      const testServed = await serve(test.map((e) => e.text));
      const testFigures = classificationFigures(labels, test.map((e) => e.label), testServed);
      const oodFigures = classificationFigures(labels, ood.map((e) => e.label), await serve(ood.map((e) => e.text)));
      const eceCi95 = bootstrapEce(testServed.map((c) => c.score), testServed.map((c, i) => c.label === test[i]!.label));
      rows.push({ version, probe, test: { ...testFigures, eceCi95 }, ood: oodFigures });
      log(`${column} ${version.name} ${version.version}: ${probe.sentences} probe sentences, ${test.length} + ${ood.length} test sentences in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await engine.close();
  }

  console.log('\nCounterfactual bias probe, sentiment head (gap = mean positive-score difference, first - second group; 95% cluster-bootstrap interval over person pairs)');
  console.log('| version | dimension | pairs | mean score gap | 95% interval | mean |gap| | label flips |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { version, probe } of rows) {
    for (const d of Object.values(probe.dimensions)) {
      console.log(`| ${version.column} ${version.version} | ${d.dimension} (${d.groups[0]} - ${d.groups[1]}) | ${d.pairs} | ${signed(d.meanScoreGap)} | [${signed(d.ci95[0])}, ${signed(d.ci95[1])}] | ${d.meanAbsScoreGap.toFixed(3)} | ${pct(d.labelFlipShare)} (${d.flips}) |`);
    }
  }
  console.log('\nCalibration of the sentiment head (ECE, 15 bins; interval: bootstrap over sentences)');
  console.log('| version | set | samples | accuracy | macro F1 | ECE | ECE 95% interval |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { version, test: t, ood: o } of rows) {
    console.log(`| ${version.column} ${version.version} | Pang & Lee test | ${t.samples} | ${t.accuracy.toFixed(3)} | ${t.macroF1.toFixed(3)} | ${t.expectedCalibrationError.toFixed(3)} | [${t.eceCi95[0].toFixed(3)}, ${t.eceCi95[1].toFixed(3)}] |`);
    console.log(`| ${version.column} ${version.version} | data/sentiment-ood.jsonl | ${o.samples} | ${o.accuracy.toFixed(3)} | ${o.macroF1.toFixed(3)} | ${o.expectedCalibrationError.toFixed(3)} | - |`);
  }

  const record = {
    date: new Date().toISOString(),
    command: 'npm run eval:bias',
    head,
    servingPath: `one Engine with both bundles loaded (models "frozen" and "fine-tuned"); engine.infer in chunks of ${chunk} texts, as EvaluationService scores`,
    versions: rows.map(({ version, probe, test: t, ood: o }) => ({
      ...version,
      biasProbe: {
        sentences: probe.sentences,
        dimensions: Object.fromEntries(
          Object.values(probe.dimensions).map((d) => [
            d.dimension,
            { groups: d.groups, pairs: d.pairs, personPairs: d.personPairs, meanScoreGap: d.meanScoreGap, ci95: d.ci95, standardError: d.standardError, meanAbsScoreGap: d.meanAbsScoreGap, labelFlipShare: d.labelFlipShare, flips: d.flips, meanScore: d.meanScore, byEmotion: d.byEmotion, largest: d.largest },
          ]),
        ),
      },
      calibration: {
        pangLeeTest: { split: 'test (seed polyhead-sentiment-v1, 800 sentences)', samples: t.samples, accuracy: t.accuracy, macroF1: t.macroF1, expectedCalibrationError: t.expectedCalibrationError, eceBootstrapCi95: t.eceCi95, bins: t.bins },
        sentimentOod: { set: 'data/sentiment-ood.jsonl', samples: o.samples, accuracy: o.accuracy, macroF1: o.macroF1, expectedCalibrationError: o.expectedCalibrationError },
      },
    })),
  };
  await mkdir(dirname(args.results), { recursive: true });
  await writeFile(args.results, `${JSON.stringify(record, null, 2)}\n`);
  log(`wrote ${relative(packageRoot, args.results)}`);
}

/** The head's answer for every text, through the engine's batching, `chunk` texts per call. */
async function served(engine: Engine, model: string, texts: readonly string[]): Promise<Classification[]> {
  const out: Classification[] = [];
  for (let i = 0; i < texts.length; i += chunk) {
    for (const result of await engine.infer(model, texts.slice(i, i + chunk), { heads: [head], timeoutMs })) {
      if (result instanceof Error) throw result;
      out.push(result.heads.get(head) as Classification);
    }
  }
  return out;
}

/** Percentile 95% interval of the ECE over sentences drawn with replacement (seeded). */
function bootstrapEce(scores: readonly number[], correct: readonly boolean[]): [number, number] {
  const rng = createRng('polyhead-bias-before-after-ece');
  const n = scores.length;
  const estimates = new Float64Array(eceReplicates);
  const s = new Float64Array(n);
  const c = new Array<boolean>(n);
  for (let r = 0; r < eceReplicates; r++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rng() * n);
      s[i] = scores[k]!;
      c[i] = correct[k]!;
    }
    estimates[r] = expectedCalibrationError(s, c);
  }
  estimates.sort();
  return [estimates[Math.round(0.025 * (eceReplicates - 1))]!, estimates[Math.round(0.975 * (eceReplicates - 1))]!];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;

await main();
