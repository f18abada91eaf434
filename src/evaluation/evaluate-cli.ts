// `polyhead evaluate` and `polyhead bias-probe` without a server: load the model from the registry into an
// engine of this process (as the server would), evaluate, record, print.
import { ensureDefaultBundle } from '../bundle/default-bundle.js';
import type { ServerConfig } from '../config.js';
import { Engine } from '../engine/engine.js';
import type { RegistryDatabase } from '../registry/database.js';
import { RegistryService } from '../registry/registry.service.js';
import { prepareRuntime } from '../server/runtime.js';
import { ModelManager } from '../serving/model-manager.js';
import { LocalBundles } from '../serving/local-bundle.js';
import type { DimensionFigures } from './bias-probe.js';
import { EvaluationService, type EvaluateHeadRequest, type HeadEvaluationResult } from './evaluation.service.js';

export async function evaluateDirectly(db: RegistryDatabase, config: ServerConfig, request: EvaluateHeadRequest): Promise<HeadEvaluationResult> {
  const registry = new RegistryService(db.prisma);
  const builtIn = request.model === 'default' ? await ensureDefaultBundle(config.bundleDir) : undefined;
  const runtime = await prepareRuntime(config, builtIn, () => {});
  const engine = new Engine({ session: runtime.session, scheduler: runtime.scheduler, requestTimeoutMs: config.requestTimeoutMs, generation: config.generation });
  try {
    const models = new ModelManager(engine, registry, undefined, undefined, new LocalBundles(db.prisma, config.cacheDir));
    if (builtIn) await models.registerBuiltInBundle(builtIn);
    await models.load(request.model);
    return await new EvaluationService({ engine, registry }).evaluateHead(request);
  } finally {
    await engine.close();
  }
}

type Printable = Pick<HeadEvaluationResult, 'model' | 'version' | 'head' | 'dataset' | 'split' | 'samples'> & {
  evaluations: ReadonlyArray<{ metric: string; value: number; sampleCount: number }>;
};

/** The recorded rows as a table. */
export function printEvaluation(result: Printable): void {
  console.log(`${result.model} ${result.version}, head ${result.head}, dataset ${result.dataset} (split ${result.split}, ${result.samples} examples):`);
  const width = Math.max(6, ...result.evaluations.map((e) => e.metric.length));
  console.log(`  ${'metric'.padEnd(width)}  ${'value'.padStart(8)}  samples`);
  for (const e of result.evaluations) console.log(`  ${e.metric.padEnd(width)}  ${e.value.toFixed(4).padStart(8)}  ${e.sampleCount}`);
  console.log(`recorded ${result.evaluations.length} evaluations in the registry`);
}

/** The bias probe's figures per dimension and per emotion, then the recorded rows. */
export function printBiasProbe(result: HeadEvaluationResult): void {
  const probe = result.biasProbe!;
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;
  console.log(`bias probe of ${result.model} ${result.version}, head ${result.head}: ${probe.sentences} sentences`);
  console.log('  dimension  gap = a - b                          pairs  mean gap  95% interval (cluster bootstrap)  s.e.    mean |gap|  label flips');
  for (const d of Object.values(probe.dimensions) as DimensionFigures[]) {
    console.log(
      `  ${d.dimension.padEnd(9)}  ${`${d.groups[0]} - ${d.groups[1]}`.padEnd(35)}  ${String(d.pairs).padStart(5)}  ${signed(d.meanScoreGap).padStart(8)}  ` +
        `[${signed(d.ci95[0])}, ${signed(d.ci95[1])}]`.padEnd(33) +
        `  ${d.standardError.toFixed(4)}  ${d.meanAbsScoreGap.toFixed(4).padStart(10)}  ${(100 * d.labelFlipShare).toFixed(1)}% (${d.flips})`,
    );
  }
  console.log('  by emotion of the sentence (mean gap / label flips):');
  for (const d of Object.values(probe.dimensions) as DimensionFigures[]) {
    const parts = Object.entries(d.byEmotion).map(([emotion, g]) => `${emotion} ${signed(g.meanScoreGap)} / ${(100 * g.labelFlipShare).toFixed(1)}%`);
    console.log(`    ${d.dimension.padEnd(9)}  ${parts.join('   ')}`);
  }
  for (const d of Object.values(probe.dimensions) as DimensionFigures[]) {
    console.log(`  largest ${d.dimension} gaps by person pair: ${d.largest.map((l) => `${l.people} ${signed(l.meanScoreGap)}`).join(', ')}`);
  }
  printEvaluation(result);
}
