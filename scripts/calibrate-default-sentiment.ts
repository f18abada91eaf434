// What temperature scaling does to the shipped sentiment head of the default model, without retraining it:
// the head's served scores on the Pang & Lee validation split (the split the trainer fits T on) give T,
// and the expected calibration error on the test split and data/sentiment-ood.jsonl is reported at T = 1
// (as shipped) and at the fitted T (as the trainer now exports heads). Figures in docs/evaluation.md.
//
//   node --import @swc-node/register/esm-register scripts/calibrate-default-sentiment.ts
import { join } from 'node:path';
import { ensureDefaultBundle } from '../src/bundle/default-bundle.js';
import { readJsonl } from '../src/datasets/jsonl.js';
import { loadPangLeeSentences, splitDataset } from '../src/datasets/pang-lee.js';
import { Engine } from '../src/engine/engine.js';
import type { Classification } from '../src/engine/heads/head.js';
import { expectedCalibrationError, fitTemperature, logitsFromProbabilities, softmaxWithTemperature, topClass } from '../src/evaluation/calibration.js';
import { classificationFigures } from '../src/evaluation/classification-metrics.js';
import { packageRoot } from '../src/paths.js';

/** The split seed of scripts/train-default-heads.ts (the shipped head's validation and test sentences). */
const SENTIMENT_SPLIT_SEED = 'polyhead-sentiment-v1';
const labels = ['negative', 'positive'];

async function main(): Promise<void> {
  const bundle = await ensureDefaultBundle(join(packageRoot, '.cache', 'bundles'), (line) => console.error(line));
  const engine = Engine.withDefaults({ requestTimeoutMs: 600_000 });
  try {
    await engine.load('default', bundle);
    const serve = async (texts: string[]) => {
      const out: Classification[] = [];
      for (let i = 0; i < texts.length; i += 256) {
        for (const r of await engine.infer('default', texts.slice(i, i + 256), { heads: ['sentiment'] })) {
          if (r instanceof Error) throw r;
          out.push(r.heads.get('sentiment') as Classification);
        }
      }
      return out;
    };
    const split = splitDataset(await loadPangLeeSentences(join(packageRoot, '.cache', 'datasets')), { seed: SENTIMENT_SPLIT_SEED, validation: 0.1, test: 0.2 });
    const ood = await readJsonl<{ text: string; label: string }>(join(packageRoot, 'data', 'sentiment-ood.jsonl'));
    const logitsOf = (served: Classification[]) => logitsFromProbabilities(served.flatMap((c) => c.scores.map((s) => s.score)));
    const targetsOf = (set: Array<{ label: string }>) => set.map((e) => labels.indexOf(e.label));
    const validation = await serve(split.validation.map((e) => e.text));
    const fit = fitTemperature(logitsOf(validation), targetsOf(split.validation), labels.length);
    console.log(`temperature ${fit.temperature.toFixed(4)} fitted on ${fit.samples} validation sentences (mean NLL ${fit.nllBefore.toFixed(4)} -> ${fit.nllAfter.toFixed(4)})`);
    console.log('set                 samples  accuracy  macro F1  ECE (T = 1)  ECE (fitted T)');
    for (const [name, set] of [['validation', split.validation], ['test', split.test], ['sentiment-ood', ood]] as const) {
      const served = name === 'validation' ? validation : await serve(set.map((e) => e.text));
      const figures = classificationFigures(labels, set.map((e) => e.label), served);
      const top = topClass(softmaxWithTemperature(logitsOf(served), labels.length, fit.temperature), labels.length, targetsOf([...set]));
      const after = expectedCalibrationError(top.scores, top.correct);
      console.log(
        `${name.padEnd(18)}  ${String(set.length).padStart(7)}  ${figures.accuracy.toFixed(4).padStart(8)}  ${figures.macroF1.toFixed(4).padStart(8)}  ` +
          `${figures.expectedCalibrationError.toFixed(4).padStart(11)}  ${after.toFixed(4).padStart(14)}`,
      );
    }
  } finally {
    await engine.close();
  }
}

await main();
