// trainHead in the background: checks the request before any work, trains a head on the frozen backbone of
// the loaded model, writes a new bundle version (parent's files + the new head, written to a temporary
// folder and renamed), registers it with its dataset and evaluation in one transaction, and loads it.
// A job that fails leaves the registry and the bundle folder as they were.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { linkFiles, stagingFolder } from '../bundle/files.js';
import { manifestFiles, parseBundleManifest, type BundleManifest } from '../bundle/manifest.js';
import { stratifiedSplit } from '../datasets/split.js';
import type { Engine } from '../engine/engine.js';
import { PolyheadError } from '../errors.js';
import type { StoredExample } from '../registry/bundle-import.js';
import type { RegistryService } from '../registry/registry.service.js';
import {
  ExampleValidationError,
  FeatureCache,
  trainClassificationHead,
  trainTokenClassificationHead,
  validateClassificationExamples,
  validateTokenClassificationExamples,
  type ClassificationExample,
  type TokenClassificationExample,
  type TrainingProgress,
} from '../training/index.js';
import type { ModelManager } from './model-manager.js';

export type TrainableTask = 'classification' | 'token_classification';
/** What a job does: a head's task (trainHead) or fine-tuning a backbone. */
export type JobTask = TrainableTask | 'fine_tune_backbone';

export interface TrainingExample {
  text: string;
  label?: string | null;
  entities?: Array<{ start: number; end: number; label: string }> | null;
}

export interface TrainHeadRequest {
  model: string;
  head: string;
  task: TrainableTask;
  /** Classification labels, or entity types (PER, ORG, ...) for token classification. */
  labels: string[];
  examples?: TrainingExample[] | null;
  /** A registry dataset whose examples the registry holds. */
  dataset?: string | null;
  /** Share of the examples held out for the reported evaluation. Default 0.2. */
  evaluationFraction: number;
  seed: number;
  /** Load the new version when training succeeds. Default true. */
  load: boolean;
}

export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface JobMetric {
  metric: string;
  value: number;
  split: string;
  samples: number;
}

export interface TrainingJob {
  id: string;
  model: string;
  /** The head trained; for a fine-tuning job, the heads retrained (comma-separated). */
  head: string;
  task: JobTask;
  status: JobStatus;
  phase: string;
  /** 0..1 within the current phase. */
  progress: number;
  epoch: number | null;
  loss: number | null;
  validationMetric: number | null;
  metrics: JobMetric[];
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  /** The version the job registered. */
  version: string | null;
}

const minimumPerLabel = { classification: 4, token_classification: 2 };
const maxExamples = 50_000;

export class TrainingJobs {
  private readonly jobs = new Map<string, TrainingJob>();
  /** Jobs run one after another: training shares the CPU with serving. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      engine: Engine;
      models: ModelManager;
      registry: RegistryService;
      bundleDir: string;
      log: (line: string) => void;
      /** In a cluster: asks the other server processes for a job this one does not run. */
      findElsewhere?: (id: string) => Promise<TrainingJob | null>;
    },
  ) {}

  /** A job run by this process. */
  get(id: string): TrainingJob | undefined {
    return this.jobs.get(id);
  }

  /** A job run by this process or, in a cluster, by another server process. */
  async find(id: string): Promise<TrainingJob | null> {
    return this.jobs.get(id) ?? (await this.deps.findElsewhere?.(id)) ?? null;
  }

  /** Checks everything that can be checked, then queues the job; throws BAD_USER_INPUT before any work. */
  async start(request: TrainHeadRequest): Promise<TrainingJob> {
    const examples = await this.checkRequest(request);
    const job = newTrainingJob(request.model, request.head, request.task);
    this.enqueue(job, () => this.run(job, request, examples));
    return job;
  }

  /**
   * Queues a job of any kind (trainHead, fineTuneBackbone) behind the others; `trainingJob(id)` finds it. A job
   * that throws is marked FAILED with the reason.
   */
  enqueue(job: TrainingJob, run: () => Promise<void>): void {
    this.jobs.set(job.id, job);
    this.queue = this.queue.then(() =>
      run().catch((error: Error) => {
        job.status = 'FAILED';
        job.error = error.message;
        job.finishedAt = new Date();
        this.deps.log(`training job ${job.id} (${job.model}/${job.head}) failed: ${error.message}`);
      }),
    );
  }

  private async checkRequest(request: TrainHeadRequest): Promise<TrainingExample[]> {
    const bad = (message: string, details?: Record<string, unknown>) => new PolyheadError('BAD_USER_INPUT', message, details);
    const model = this.deps.engine.get(request.model); // MODEL_NOT_FOUND when not loaded
    if (!/^[a-z][a-z0-9_-]{0,39}$/.test(request.head)) throw bad('head: lower-case letters, digits, "_" or "-", starting with a letter');
    if (model.heads.has(request.head)) throw bad(`head: model "${request.model}" ${model.version} already has a head "${request.head}"`);
    if (request.evaluationFraction <= 0 || request.evaluationFraction >= 0.5) throw bad('evaluationFraction: between 0 and 0.5');
    if (Boolean(request.examples?.length) === Boolean(request.dataset)) throw bad('give either examples or a dataset, not both or neither');
    const examples = request.examples?.length ? request.examples : await this.storedExamples(request.dataset!);
    if (examples.length > maxExamples) throw bad(`examples: at most ${maxExamples}`);
    try {
      if (request.task === 'classification') {
        validateClassificationExamples(examples as ClassificationExample[], request.labels, minimumPerLabel.classification);
      } else {
        validateTokenClassificationExamples(examples.map((e) => ({ text: e.text, entities: e.entities ?? [] })), request.labels, minimumPerLabel.token_classification);
      }
    } catch (error) {
      if (error instanceof ExampleValidationError) throw bad(error.message, { problems: error.problems.map((p) => (p.index >= 0 ? `examples[${p.index}]: ${p.message}` : p.message)) });
      throw error;
    }
    return examples;
  }

  private async storedExamples(name: string): Promise<TrainingExample[]> {
    const dataset = await this.deps.registry.prisma.dataset.findUnique({ where: { name }, include: { examples: { orderBy: { id: 'asc' } } } });
    if (!dataset) throw new PolyheadError('BAD_USER_INPUT', `dataset: no dataset named "${name}"`);
    if (!dataset.examples.length) throw new PolyheadError('BAD_USER_INPUT', `dataset: the registry holds no examples of "${name}" (only its metadata)`);
    return dataset.examples.map((e) => ({ text: e.text, label: e.label, entities: e.entities as TrainingExample['entities'] }));
  }

  private async run(job: TrainingJob, request: TrainHeadRequest, examples: TrainingExample[]): Promise<void> {
    job.status = 'RUNNING';
    const serving = this.deps.engine.get(request.model);
    const parent = await this.deps.registry.resolveVersion(request.model, serving.version);
    const onProgress = jobProgress(job);
    const keyOf = (e: TrainingExample) => (request.task === 'classification' ? e.label! : (e.entities?.[0]?.label ?? 'none'));
    const split = stratifiedSplit(examples, keyOf, { seed: request.seed, validation: 0.1, test: request.evaluationFraction });
    const common = { features: new FeatureCache(serving.backbone), seed: request.seed, onProgress };
    const trained =
      request.task === 'classification'
        ? await trainClassificationHead({
            ...common,
            labels: request.labels,
            train: split.train as ClassificationExample[],
            validation: split.validation as ClassificationExample[],
            evaluate: { test: split.test as ClassificationExample[] },
          })
        : await trainTokenClassificationHead({
            ...common,
            entityLabels: request.labels,
            train: split.train.map(asTokenExample),
            validation: split.validation.map(asTokenExample),
            evaluate: { test: split.test.map(asTokenExample) },
          });
    const evaluation = trained.evaluations.test!;
    const value = 'accuracy' in evaluation ? evaluation.accuracy : evaluation.micro.f1;
    const metric = 'accuracy' in evaluation ? 'accuracy' : 'span_micro_f1';
    job.metrics = [{ metric, value, split: 'test', samples: split.test.length }];
    // A classification head serves temperature-scaled scores: their calibration error, and the one before scaling.
    if ('accuracy' in evaluation) {
      job.metrics.push(
        { metric: 'expected_calibration_error', value: evaluation.expectedCalibrationError, split: 'test', samples: split.test.length },
        { metric: 'expected_calibration_error_uncalibrated', value: evaluation.uncalibratedExpectedCalibrationError, split: 'test', samples: split.test.length },
      );
    }
    job.phase = 'export';

    const version = `${parent.version.split('+')[0]}+${request.head}.${job.id.slice(0, 8)}`;
    const datasetName = request.dataset ?? `${request.model}.${request.head}.${job.id.slice(0, 8)}`;
    const stored: StoredExample[] = (['train', 'validation', 'test'] as const).flatMap((name) =>
      split[name].map((e) => ({ split: name, text: e.text, label: e.label ?? undefined, entities: e.entities ?? undefined })),
    );
    const datasetEntry = request.dataset
      ? await this.describeRegistryDataset(request.dataset)
      : {
          name: datasetName,
          source: `examples sent to trainHead (job ${job.id})`,
          license: 'provided by the caller',
          size: examples.length,
          splits: { train: split.train.length, validation: split.validation.length, test: split.test.length },
        };
    // The parent's files from wherever they are on this host: its folder, or the cache filled from the registry.
    const parentDir = await this.deps.models.bundles.folderOf(await this.deps.models.bundles.filesOf(parent));
    const dir = await this.writeBundle(parentDir, version, (manifest) => {
      manifest.parent = parent.version;
      manifest.version = version;
      manifest.heads.push({
        name: request.head,
        task: request.task,
        file: `heads/${request.head}.onnx`,
        labels: trained.labels,
        reads: trained.reads,
        description: `trained by trainHead job ${job.id} on ${examples.length} examples`,
        datasets: [
          { name: datasetName, role: 'training' },
          { name: datasetName, role: 'evaluation' },
        ],
      });
      if (!manifest.datasets.some((d) => d.name === datasetName)) manifest.datasets.push(datasetEntry);
      for (const m of job.metrics) manifest.evaluations.push({ head: request.head, dataset: datasetName, split: m.split, metric: m.metric, value: m.value, samples: m.samples });
    }, { [`heads/${request.head}.onnx`]: trained.onnx });
    try {
      await this.deps.registry.importBundle(dir, request.dataset ? {} : { [datasetName]: stored });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    job.version = version;
    if (request.load) await this.deps.models.load(request.model, version);
    job.status = 'SUCCEEDED';
    job.phase = 'done';
    job.progress = 1;
    job.finishedAt = new Date();
    this.deps.log(`training job ${job.id}: ${request.model} ${version} with head ${request.head} (${metric} ${value.toFixed(3)} on ${split.test.length} held-out examples)`);
  }

  private async describeRegistryDataset(name: string) {
    const dataset = await this.deps.registry.prisma.dataset.findUniqueOrThrow({ where: { name } });
    return { name, source: dataset.source, license: dataset.license, size: dataset.size, splits: dataset.splits as Record<string, number>, description: dataset.description ?? undefined };
  }

  /** Writes parent's files + `extra` + the edited manifest into a temporary folder, then renames it into place. */
  private async writeBundle(parentDir: string, version: string, edit: (manifest: BundleManifest) => void, extra: Record<string, Uint8Array>): Promise<string> {
    const manifest = parseBundleManifest(await readFile(join(parentDir, 'bundle.json'), 'utf8'));
    const name = manifest.name;
    const target = join(this.deps.bundleDir, `${name}-${version}`);
    const tmp = await stagingFolder(this.deps.bundleDir, target);
    await linkFiles(parentDir, tmp, manifestFiles(manifest));
    for (const [file, bytes] of Object.entries(extra)) {
      await mkdir(dirname(join(tmp, file)), { recursive: true });
      await writeFile(join(tmp, file), bytes);
    }
    edit(manifest);
    await writeFile(join(tmp, 'bundle.json'), JSON.stringify(manifest, null, 2));
    await rename(tmp, target);
    return target;
  }
}

function asTokenExample(e: TrainingExample): TokenClassificationExample {
  return { text: e.text, entities: e.entities ?? [] };
}

/** A new job record, QUEUED. */
export function newTrainingJob(model: string, head: string, task: JobTask): TrainingJob {
  return {
    id: randomUUID(),
    model,
    head,
    task,
    status: 'QUEUED',
    phase: 'queued',
    progress: 0,
    epoch: null,
    loss: null,
    validationMetric: null,
    metrics: [],
    error: null,
    createdAt: new Date(),
    finishedAt: null,
    version: null,
  };
}

/** A progress listener that keeps a job's phase, progress, epoch, loss and best validation figure current. */
export function jobProgress(job: TrainingJob): (event: TrainingProgress) => void {
  return (event) => {
    job.phase = event.phase;
    job.progress = event.total ? event.done / event.total : 0;
    job.epoch = event.epoch ?? job.epoch;
    job.loss = event.loss ?? job.loss;
    job.validationMetric = event.bestValidationMetric ?? job.validationMetric;
  };
}
