// evaluateHead: scores a head of a loaded model on a registry dataset whose examples the registry holds, or
// runs the counterfactual bias probe (dataset "bias-probe-eec-style"), and records the figures as Evaluation
// rows of the head and dataset. Every answer comes from the engine's serving path (the same batches, head
// files and decoding that classify / entities answer), so the figures are those of the served head.
// Everything that can be checked is checked before any text is scored; the rows are written in one
// transaction, so a failed write leaves the registry as it was.
import type { Engine } from '../engine/engine.js';
import type { Classification, Entity, HeadOutput } from '../engine/heads/head.js';
import { PolyheadError, toPolyheadError } from '../errors.js';
import type { Evaluation } from '../generated/prisma/client.js';
import type { RegistryService } from '../registry/registry.service.js';
import { spanMetrics, type SpanMetrics } from '../training/metrics.js';
import { biasProbeDataset, biasProbeSentences, generateBiasProbePairs } from '../datasets/bias-probe.js';
import { biasProbeMetrics, runBiasProbe, type BiasProbeResult } from './bias-probe.js';
import { classificationFigures, type ClassificationFigures } from './classification-metrics.js';

export interface EvaluateHeadRequest {
  model: string;
  head: string;
  dataset: string;
  /** One split of the dataset's examples; default all of them (recorded as split "all"). */
  split?: string | null;
}

export interface HeadEvaluationResult {
  model: string;
  /** The version served (and evaluated). */
  version: string;
  head: string;
  dataset: string;
  split: string;
  /** Examples scored (sentence pairs per dimension for the bias probe: see the rows' sampleCount). */
  samples: number;
  /** The rows recorded in the registry. */
  evaluations: Evaluation[];
  classification?: ClassificationFigures;
  spans?: SpanMetrics;
  biasProbe?: BiasProbeResult;
}

export interface EvaluationServiceOptions {
  engine: Engine;
  registry: RegistryService;
  /** Texts per engine call. Default 256. */
  chunk?: number;
  /** How long one engine call may wait, ms. Default 120000 (an evaluation queues many texts at once). */
  timeoutMs?: number;
}

/** The most examples one evaluation scores (as many as trainHead accepts). */
export const maxEvaluationExamples = 50_000;

interface MetricRow {
  metric: string;
  value: number;
  samples: number;
}

type StoredExample = { text: string; label: string | null; entities: unknown };

const bad = (message: string, details?: Record<string, unknown>) => new PolyheadError('BAD_USER_INPUT', message, details);

export class EvaluationService {
  constructor(private readonly options: EvaluationServiceOptions) {}

  async evaluateHead(request: EvaluateHeadRequest): Promise<HeadEvaluationResult> {
    const { engine, registry } = this.options;
    let serving;
    try {
      serving = engine.validate(request.model, [request.head]);
    } catch (error) {
      throw toPolyheadError(error) ?? error;
    }
    const head = serving.heads.get(request.head)!.spec;
    if (head.task === 'embedding') throw bad(`head: "${request.head}" is an embedding head; evaluateHead scores classification and token classification heads`);
    const version = await registry.resolveVersion(request.model, serving.version);
    const headRow = await registry.prisma.head.findUnique({ where: { versionId_name: { versionId: version.id, name: request.head } } });
    if (!headRow) throw new PolyheadError('HEAD_NOT_FOUND', `model "${request.model}" ${serving.version} has no registered head "${request.head}"`);
    const split = request.split ?? 'all';
    const base = { model: request.model, version: serving.version, head: request.head, dataset: request.dataset, split };

    if (request.dataset === biasProbeDataset.name) {
      if (request.split && request.split !== 'all') throw bad(`split: the bias probe has no splits (got "${request.split}")`);
      const positive = head.task === 'classification' ? head.labels.findIndex((l) => l.toLowerCase() === 'positive') : -1;
      if (positive < 0) throw bad(`dataset: the bias probe scores a sentiment head (classification with a "positive" label); "${request.head}" has labels ${head.labels.join(', ')}`);
      const pairs = generateBiasProbePairs();
      const size = biasProbeSentences(pairs).length;
      const registered = await registry.prisma.dataset.findUnique({ where: { name: biasProbeDataset.name } });
      if (registered && (registered.size !== size || registered.source !== biasProbeDataset.source)) throw probeMismatch(registered.size, size);
      const probe = await runBiasProbe(
        async (texts) =>
          (await this.infer(request.model, request.head, texts)).map((output) => {
            const c = output as Classification;
            return { positive: c.scores[positive]!.score, label: c.label };
          }),
        { pairs, chunk: this.options.chunk },
      );
      const splits = Object.fromEntries(Object.values(probe.dimensions).map((d) => [d.dimension, d.pairs]));
      const evaluations = await this.record(headRow.id, { ...biasProbeDataset, size, splits }, split, biasProbeMetrics(probe.dimensions));
      return { ...base, samples: probe.sentences, evaluations, biasProbe: probe };
    }

    const examples = await this.storedExamples(request.dataset, request.split ?? undefined);
    if (head.task === 'classification') {
      const gold = checkClassificationLabels(examples, head.labels, request.dataset);
      const served = (await this.infer(request.model, request.head, examples.map((e) => e.text))) as Classification[];
      const figures = classificationFigures(head.labels, gold, served);
      const rows: MetricRow[] = [
        { metric: 'accuracy', value: figures.accuracy, samples: figures.samples },
        { metric: 'expected_calibration_error', value: figures.expectedCalibrationError, samples: figures.samples },
        { metric: 'macro_f1', value: figures.macroF1, samples: figures.samples },
      ];
      return { ...base, samples: examples.length, evaluations: await this.record(headRow.id, request.dataset, split, rows), classification: figures };
    }
    const gold = checkEntityLabels(examples, head.labels, request.dataset);
    const served = (await this.infer(request.model, request.head, examples.map((e) => e.text))) as Entity[][];
    const spans = spanMetrics(gold, served);
    const rows: MetricRow[] = [
      { metric: 'span_micro_precision', value: spans.micro.precision, samples: spans.micro.tp + spans.micro.fp },
      { metric: 'span_micro_recall', value: spans.micro.recall, samples: spans.goldSpans },
      { metric: 'span_micro_f1', value: spans.micro.f1, samples: spans.goldSpans },
      ...Object.entries(spans.perLabel).map(([label, m]) => ({ metric: `span_f1_${label}`, value: m.f1, samples: m.support })),
    ];
    return { ...base, samples: examples.length, evaluations: await this.record(headRow.id, request.dataset, split, rows), spans };
  }

  private async storedExamples(name: string, split: string | undefined): Promise<StoredExample[]> {
    const prisma = this.options.registry.prisma;
    const dataset = await prisma.dataset.findUnique({ where: { name } });
    if (!dataset) throw bad(`dataset: no dataset named "${name}"`);
    const where = { datasetId: dataset.id, ...(split ? { split } : {}) };
    const count = await prisma.datasetExample.count({ where });
    if (count === 0) {
      const splits = (await prisma.datasetExample.groupBy({ by: ['split'], where: { datasetId: dataset.id } })).map((s) => s.split).sort();
      if (split && splits.length) throw bad(`split: dataset "${name}" holds no "${split}" examples (its splits: ${splits.join(', ')})`);
      throw bad(`dataset: the registry holds no examples of "${name}" (only its metadata)`);
    }
    if (count > maxEvaluationExamples) throw bad(`dataset: "${name}" has ${count} examples, at most ${maxEvaluationExamples} are scored at once (name a split)`);
    return prisma.datasetExample.findMany({ where, orderBy: { id: 'asc' }, select: { text: true, label: true, entities: true } });
  }

  /** The head's output for every text, through the engine's batching, in chunks. */
  private async infer(model: string, head: string, texts: readonly string[]): Promise<HeadOutput[]> {
    const chunk = this.options.chunk ?? 256;
    const out: HeadOutput[] = [];
    for (let i = 0; i < texts.length; i += chunk) {
      const results = await this.options.engine.infer(model, texts.slice(i, i + chunk), { heads: [head], timeoutMs: this.options.timeoutMs ?? 120_000 });
      for (const result of results) {
        if (result instanceof Error) throw toPolyheadError(result) ?? result;
        out.push(result.heads.get(head)!);
      }
    }
    return out;
  }

  /** Writes the rows (and the dataset, the first time the bias probe runs) in one transaction. */
  private async record(
    headId: number,
    dataset: string | { name: string; source: string; license: string; size: number; splits: Record<string, number>; description: string },
    split: string,
    rows: readonly MetricRow[],
  ): Promise<Evaluation[]> {
    return this.options.registry.prisma.$transaction(async (tx) => {
      let datasetId: number;
      if (typeof dataset === 'string') {
        datasetId = (await tx.dataset.findUniqueOrThrow({ where: { name: dataset } })).id;
      } else {
        const existing = await tx.dataset.findUnique({ where: { name: dataset.name } });
        if (existing && (existing.size !== dataset.size || existing.source !== dataset.source)) throw probeMismatch(existing.size, dataset.size);
        datasetId = existing?.id ?? (await tx.dataset.create({ data: dataset })).id;
      }
      await tx.headDataset.upsert({
        where: { headId_datasetId_role: { headId, datasetId, role: 'EVALUATION' } },
        create: { headId, datasetId, role: 'EVALUATION' },
        update: {},
      });
      const created: Evaluation[] = [];
      for (const row of rows) {
        created.push(await tx.evaluation.create({ data: { headId, datasetId, split, metric: row.metric, value: row.value, sampleCount: row.samples } }));
      }
      return created;
    });
  }
}

function probeMismatch(registered: number, generated: number): PolyheadError {
  return bad(`dataset: "${biasProbeDataset.name}" is registered with another source or size (${registered} sentences) than this probe generates (${generated})`);
}

/** Gold labels of classification examples; BAD_USER_INPUT when they are not the head's labels. */
function checkClassificationLabels(examples: readonly StoredExample[], labels: readonly string[], dataset: string): string[] {
  const known = new Set(labels);
  const problems: string[] = [];
  examples.forEach((e, i) => {
    if (e.label === null) problems.push(`examples[${i}]: no label${e.entities ? ' (it has entity spans: a token classification dataset)' : ''}`);
    else if (!known.has(e.label)) problems.push(`examples[${i}]: label "${e.label}" is not one of the head's labels (${labels.join(', ')})`);
  });
  if (problems.length) throw bad(`dataset: the labels of "${dataset}" do not match the head's (${problems.length} examples)`, { problems: problems.slice(0, 20) });
  return examples.map((e) => e.label!);
}

/** Gold spans of token classification examples; BAD_USER_INPUT when their entity types are not the head's. */
function checkEntityLabels(examples: readonly StoredExample[], tags: readonly string[], dataset: string): Array<Array<{ start: number; end: number; label: string }>> {
  const types = new Set(tags.filter((t) => t !== 'O').map((t) => t.replace(/^[BIES]-/, '')));
  const problems: string[] = [];
  const gold = examples.map((e, i) => {
    if (!Array.isArray(e.entities)) {
      problems.push(`examples[${i}]: no entity spans${e.label !== null ? ` (it has the label "${e.label}": a classification dataset)` : ''}`);
      return [];
    }
    const spans = e.entities as Array<{ start: number; end: number; label: string }>;
    for (const span of spans) if (!types.has(span.label)) problems.push(`examples[${i}]: entity label "${span.label}" is not one of the head's (${[...types].join(', ')})`);
    return spans.map(({ start, end, label }) => ({ start, end, label }));
  });
  if (problems.length) throw bad(`dataset: the labels of "${dataset}" do not match the head's (${problems.length} problems)`, { problems: problems.slice(0, 20) });
  return gold;
}
