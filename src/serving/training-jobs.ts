// trainHead as a durable job: checks the request before any work, records it (the examples with it) and queues it;
// whichever replica runs it trains a head on the frozen backbone of the parent version, writes a new bundle version
// (parent's files + the new head, written to a temporary folder and renamed), registers it with its dataset and
// evaluation in one transaction, and loads it. A job that fails leaves the registry and the bundle folder as they
// were. A job run again after its replica died registers nothing twice: its version is named after the job, and a
// run that finds it registered (the dead replica got that far) adopts it.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { linkFiles, stagingFolder } from '../bundle/files.js';
import { manifestFiles, parseBundleManifest, type BundleManifest } from '../bundle/manifest.js';
import { stratifiedSplit } from '../datasets/split.js';
import type { Backbone } from '../engine/backbone.js';
import type { Engine } from '../engine/engine.js';
import { PolyheadError } from '../errors.js';
import type { DurableJobQueue, JobRun } from '../jobs/job-queue.js';
import { newTrainingJob, type JobMetric, type TrainableTask, type TrainingJob } from '../jobs/training-job.js';
import type { StoredExample } from '../registry/bundle-import.js';
import type { RegistryService } from '../registry/registry.service.js';
import {
  ExampleValidationError,
  FeatureCache,
  loadBundleBackbone,
  trainClassificationHead,
  trainTokenClassificationHead,
  validateClassificationExamples,
  validateTokenClassificationExamples,
  type ClassificationExample,
  type TokenClassificationExample,
} from '../training/index.js';
import type { ModelManager } from './model-manager.js';

export { jobProgress, newTrainingJob, type JobMetric, type JobStatus, type JobTask, type TrainableTask, type TrainingJob } from '../jobs/training-job.js';

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

/** The request as stored with the job: `parentVersion` is fixed by its first run, so that every run trains on the same parent. */
interface StoredTrainHeadRequest extends TrainHeadRequest {
  parentVersion?: string;
}

const minimumPerLabel = { classification: 4, token_classification: 2 };
const maxExamples = 50_000;

export class TrainingJobs {
  constructor(
    private readonly deps: {
      engine: Engine;
      models: ModelManager;
      registry: RegistryService;
      bundleDir: string;
      queue: DurableJobQueue;
      log: (line: string) => void;
    },
  ) {
    deps.queue.register('train_head', (run) => this.run(run));
  }

  /** A job started on any replica sharing this registry, from its record; null when there is none. */
  find(id: string): Promise<TrainingJob | null> {
    return this.deps.queue.find(id);
  }

  /** Checks everything that can be checked, then records and queues the job; throws BAD_USER_INPUT before any work. */
  async start(request: TrainHeadRequest): Promise<TrainingJob> {
    await this.checkRequest(request);
    const job = newTrainingJob(request.model, request.head, request.task);
    await this.deps.queue.submit(job, 'train_head', request);
    return job;
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

  private async run({ job, request: storedRequest, signal, progress, changed, saveRequest }: JobRun): Promise<void> {
    const request = storedRequest as unknown as StoredTrainHeadRequest;
    // The first run trains on the version served here now; a run after its replica died, on that same version.
    if (!request.parentVersion) {
      request.parentVersion = this.deps.engine.get(request.model).version;
      await saveRequest();
    }
    const parent = await this.deps.registry.resolveVersion(request.model, request.parentVersion);
    const version = `${parent.version.split('+')[0]}+${request.head}.${job.id.slice(0, 8)}`;
    if (await this.deps.registry.prisma.modelVersion.findFirst({ where: { version, model: { name: request.model } } })) {
      // An earlier run of this job registered it and its replica died before the job's record said so.
      job.version = version;
      changed();
      if (request.load) await this.deps.models.load(request.model, version);
      this.deps.log(`training job ${job.id}: ${request.model} ${version} was registered by an earlier run of this job`);
      return;
    }
    const examples = request.examples?.length ? request.examples : await this.storedExamples(request.dataset!);
    // The parent's files from wherever they are on this host: its folder, or the cache filled from the registry.
    const parentDir = await this.deps.models.bundles.folderOf(await this.deps.models.bundles.filesOf(parent));
    const backbone = await this.parentBackbone(request.model, parent.version, parentDir);
    const keyOf = (e: TrainingExample) => (request.task === 'classification' ? e.label! : (e.entities?.[0]?.label ?? 'none'));
    const split = stratifiedSplit(examples, keyOf, { seed: request.seed, validation: 0.1, test: request.evaluationFraction });
    let trained;
    try {
      const common = { features: new FeatureCache(backbone.backbone), seed: request.seed, onProgress: progress, signal };
      trained =
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
    } finally {
      await backbone.release();
    }
    const evaluation = trained.evaluations.test!;
    const value = 'accuracy' in evaluation ? evaluation.accuracy : evaluation.micro.f1;
    const metric = 'accuracy' in evaluation ? 'accuracy' : 'span_micro_f1';
    const metrics: JobMetric[] = [{ metric, value, split: 'test', samples: split.test.length }];
    // A classification head serves temperature-scaled scores: their calibration error, and the one before scaling.
    if ('accuracy' in evaluation) {
      metrics.push(
        { metric: 'expected_calibration_error', value: evaluation.expectedCalibrationError, split: 'test', samples: split.test.length },
        { metric: 'expected_calibration_error_uncalibrated', value: evaluation.uncalibratedExpectedCalibrationError, split: 'test', samples: split.test.length },
      );
    }
    job.metrics = metrics;
    job.phase = 'export';
    changed();

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
      for (const m of metrics) manifest.evaluations.push({ head: request.head, dataset: datasetName, split: m.split, metric: m.metric, value: m.value, samples: m.samples });
    }, { [`heads/${request.head}.onnx`]: trained.onnx });
    try {
      await this.deps.registry.importBundle(dir, request.dataset ? {} : { [datasetName]: stored });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    job.version = version;
    changed();
    if (request.load) await this.deps.models.load(request.model, version);
    this.deps.log(`training job ${job.id}: ${request.model} ${version} with head ${request.head} (${metric} ${value.toFixed(3)} on ${split.test.length} held-out examples)`);
  }

  /** The parent version's backbone: the one served here when it is that version, else loaded from its files for this job. */
  private async parentBackbone(model: string, version: string, dir: string): Promise<{ backbone: Backbone; release(): Promise<void> }> {
    const served = this.deps.engine.list().find((m) => m.name === model);
    if (served?.version === version) return { backbone: this.deps.engine.get(model).backbone, release: async () => {} };
    const backbone = await loadBundleBackbone(dir);
    return { backbone, release: () => backbone.release() };
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
    // A folder under the final name that the registry does not hold (the run checked) was left by an earlier run of
    // this job that died between renaming it and registering it: this run's replaces it.
    if (existsSync(target)) await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
    return target;
  }
}

function asTokenExample(e: TrainingExample): TokenClassificationExample {
  return { text: e.text, entities: e.entities ?? [] };
}
