// The engine: loaded models by name, loading and switching versions safely, and inference requests.
// It knows bundles on disk, never GraphQL or the registry.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backboneSpecOf } from '../bundle/backbone-spec.js';
import { resolveInside } from '../bundle/files.js';
import { parseBundleManifest, type BundleManifest } from '../bundle/manifest.js';
import { Backbone } from './backbone.js';
import { EngineError } from './errors.js';
import type { HeadSpec, LoadedHead } from './heads/head.js';
import { headKinds, isServableTask } from './heads/registry.js';
import { defaultSessionOptions, type SessionOptions } from './onnx-runtime.js';
import type { SchedulerOptions } from './scheduler.js';
import { ServingModel, type ServingModelObserver, type TextResult } from './serving-model.js';

export interface EngineOptions {
  session: SessionOptions;
  scheduler: Partial<Omit<SchedulerOptions<never>, 'merge' | 'covers' | 'onBatch' | 'clock'>>;
  /** How long a request may wait for its results, ms. Default 30000. */
  requestTimeoutMs: number;
  observer?: ServingModelObserver;
}

export interface InferRequest {
  /** Names of the heads to run for every text. */
  heads: readonly string[];
  signal?: AbortSignal;
  /** Overrides the engine's request timeout, ms. */
  timeoutMs?: number;
}

export interface LoadedModelInfo {
  name: string;
  version: string;
  backbone: string;
  provider: string;
  heads: Array<{ name: string; task: string; reads: string; labels: string[] }>;
}

const warmupTexts = ['Polyhead warms up every head before taking traffic.', 'Short text.'];

export class Engine {
  private readonly models = new Map<string, ServingModel>();
  /** Loads in progress per model name: a second load of the same model waits for the first. */
  private readonly loading = new Map<string, Promise<unknown>>();

  constructor(readonly options: EngineOptions) {}

  static withDefaults(options: Partial<EngineOptions> = {}): Engine {
    return new Engine({ session: defaultSessionOptions, scheduler: {}, requestTimeoutMs: 30_000, ...options });
  }

  /**
   * Loads the bundle in `dir` as model `name`, warms it up, and only then puts it in place of the version
   * serving before (which drains and is freed). If anything fails, the old version keeps serving.
   */
  async load(name: string, dir: string, version?: string): Promise<LoadedModelInfo> {
    const previous = this.loading.get(name) ?? Promise.resolve();
    const task = previous.catch(() => {}).then(() => this.loadNow(name, dir, version));
    this.loading.set(name, task);
    try {
      return await task;
    } finally {
      if (this.loading.get(name) === task) this.loading.delete(name);
    }
  }

  private async loadNow(name: string, dir: string, version?: string): Promise<LoadedModelInfo> {
    let model: ServingModel;
    try {
      model = await this.open(name, dir, version);
    } catch (error) {
      throw new EngineError('MODEL_LOAD_FAILED', `could not load ${name}${version ? ` ${version}` : ''}: ${(error as Error).message}`, { cause: error });
    }
    const old = this.models.get(name);
    this.models.set(name, model);
    if (old) void old.close();
    return describe(model);
  }

  private async open(name: string, dir: string, expectedVersion?: string): Promise<ServingModel> {
    const manifest = parseBundleManifest(await readFile(join(dir, 'bundle.json'), 'utf8'));
    if (expectedVersion && manifest.version !== expectedVersion) {
      throw new Error(`bundle.json says version ${manifest.version}, expected ${expectedVersion}`);
    }
    const { session } = this.options;
    const backbone = await Backbone.load(await backboneSpecOf(dir, manifest, session.preferredVariant), session);
    const heads = new Map<string, LoadedHead>();
    try {
      for (const spec of await headSpecs(dir, manifest)) heads.set(spec.name, await headKinds[spec.task as keyof typeof headKinds](spec, session));
      const model = new ServingModel(name, manifest.version, backbone, heads, this.options.scheduler, this.options.observer);
      await warmUp(model);
      return model;
    } catch (error) {
      await Promise.all([backbone.release(), ...[...heads.values()].map((h) => h.release())]).catch(() => {});
      throw error;
    }
  }

  async unload(name: string): Promise<boolean> {
    const model = this.models.get(name);
    if (!model) return false;
    this.models.delete(name);
    await model.close();
    return true;
  }

  get(name: string): ServingModel {
    const model = this.models.get(name);
    if (!model) throw new EngineError('MODEL_NOT_FOUND', `no model "${name}" is loaded`);
    return model;
  }

  list(): LoadedModelInfo[] {
    return [...this.models.values()].map(describe);
  }

  /** Checks a request against the model before any work starts. */
  validate(modelName: string, heads: readonly string[]): ServingModel {
    const model = this.get(modelName);
    for (const head of heads) {
      if (!model.heads.has(head)) {
        throw new EngineError('HEAD_NOT_FOUND', `model "${modelName}" has no head "${head}" (it has: ${[...model.heads.keys()].join(', ') || 'none'})`);
      }
    }
    return model;
  }

  /**
   * Runs the backbone once per distinct text and the requested heads, batched with every other request.
   * Returns one result or Error per text, in order.
   */
  async infer(modelName: string, texts: readonly string[], request: InferRequest): Promise<Array<TextResult | Error>> {
    const model = this.validate(modelName, request.heads);
    const heads = new Set(request.heads);
    const deadline = model.scheduler.now() + (request.timeoutMs ?? this.options.requestTimeoutMs);
    const unique = [...new Set(texts)];
    const encodings = await model.backbone.encodeBatch(unique);
    const promises = model.submitAll(
      unique.map((text, i) => ({ text, encoding: encodings[i]! })),
      heads,
      { signal: request.signal, deadline },
    );
    const settled = await Promise.all(promises.map((promise) => promise.catch((error: Error) => error)));
    const byText = new Map(unique.map((text, i) => [text, settled[i]!]));
    return texts.map((text) => byText.get(text)!);
  }

  /** Queue state of every loaded model. */
  depth(): Array<{ model: string; entries: number; tokens: number; running: number }> {
    return [...this.models.values()].map((m) => ({ model: m.name, ...m.scheduler.depth }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.values()].map((m) => m.close()));
    this.models.clear();
  }
}

async function headSpecs(dir: string, manifest: BundleManifest): Promise<HeadSpec[]> {
  const specs: HeadSpec[] = [];
  for (const head of manifest.heads) {
    if (!isServableTask(head.task)) continue; // e.g. generation heads: registered, not served by this engine
    specs.push({
      name: head.name,
      task: head.task,
      reads: head.reads,
      file: head.file ? await resolveInside(dir, head.file) : undefined,
      output: head.output,
      activation: head.activation,
      labels: head.labels ?? [],
    });
  }
  return specs;
}

async function warmUp(model: ServingModel): Promise<void> {
  const heads = new Set(model.heads.keys());
  const encodings = await model.backbone.encodeBatch(warmupTexts);
  await Promise.all(warmupTexts.map((text, i) => model.submit(text, encodings[i]!, heads, {})));
}

function describe(model: ServingModel): LoadedModelInfo {
  return {
    name: model.name,
    version: model.version,
    backbone: model.backbone.spec.name,
    provider: model.backbone.provider,
    heads: [...model.heads.values()].map((h) => ({ name: h.spec.name, task: h.spec.task, reads: h.spec.reads, labels: h.spec.labels })),
  };
}
