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
import { HuggingFaceTokenizer } from './tokenizers/huggingface.js';
import { seq2seqFamilies, type GenerationLimits } from './translation/families.js';
import { TranslationModel, type Translation, type TranslationObserver, type TranslationRequest } from './translation/translation-model.js';

export interface EngineOptions {
  session: SessionOptions;
  scheduler: Partial<Omit<SchedulerOptions<never>, 'merge' | 'covers' | 'onBatch' | 'clock'>>;
  /** How long a request may wait for its results, ms. Default 30000. */
  requestTimeoutMs: number;
  observer?: ServingModelObserver & TranslationObserver;
  /** Translation models: the generator's rows, token budget, queue bound and continuous batching. */
  generation?: Partial<GenerationLimits>;
}

export interface TranslateRequest extends Omit<TranslationRequest, 'deadline'> {
  /** Overrides the engine's request timeout, ms. */
  timeoutMs?: number;
}

export interface InferRequest {
  /** Names of the heads to run for every text. */
  heads: readonly string[];
  signal?: AbortSignal;
  /** Overrides the engine's request timeout, ms. */
  timeoutMs?: number;
  /** Told how the call went, for tracing (the engine knows no tracer). */
  trace?: InferTrace;
}

/** Receives one report per infer call that reached the queue; must not throw (a throw is ignored). */
export interface InferTrace {
  onInfer(report: InferReport): void;
}

/** What one infer call did. Times are on performance.now()'s clock, ms. */
export interface InferReport {
  model: string;
  heads: readonly string[];
  /** Texts asked for (before dedupe). */
  texts: number;
  startedAt: number;
  /** Tokenization ended and the distinct texts were queued. */
  queuedAt: number;
  endedAt: number;
  /** Per distinct text, in order: its tokens as queued, its outcome (a result carries its batch), when it settled. */
  tokens: readonly number[];
  outcomes: ReadonlyArray<TextResult | Error>;
  settledAt: ArrayLike<number>;
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
  /** Sequence-to-sequence models, by name (a name is one model: an encoder or a translator). */
  private readonly translators = new Map<string, TranslationModel>();
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
    let model: ServingModel | TranslationModel;
    try {
      const manifest = parseBundleManifest(await readFile(join(dir, 'bundle.json'), 'utf8'));
      if (version && manifest.version !== version) throw new Error(`bundle.json says version ${manifest.version}, expected ${version}`);
      model = manifest.seq2seq ? await this.openTranslator(name, dir, manifest) : await this.open(name, dir, manifest);
    } catch (error) {
      throw new EngineError('MODEL_LOAD_FAILED', `could not load ${name}${version ? ` ${version}` : ''}: ${(error as Error).message}`, { cause: error });
    }
    const old = this.models.get(name) ?? this.translators.get(name);
    this.models.delete(name);
    this.translators.delete(name);
    if (model instanceof TranslationModel) this.translators.set(name, model);
    else this.models.set(name, model);
    if (old) void old.close();
    return model instanceof TranslationModel ? describeTranslator(model) : describe(model);
  }

  /** A translation model: the Hugging Face tokenizer, its family's backend, and one shared generator. */
  private async openTranslator(name: string, dir: string, manifest: BundleManifest): Promise<TranslationModel> {
    const seq2seq = manifest.seq2seq!;
    const tokenizer = await HuggingFaceTokenizer.load(await resolveInside(dir, manifest.tokenizer), { maxTokens: manifest.backbone.maxTokens });
    const backend = await seq2seqFamilies[seq2seq.family]({ dir, manifest, session: this.options.session });
    try {
      const model = new TranslationModel(
        name,
        manifest.version,
        tokenizer,
        backend,
        { maxLength: seq2seq.maxLength },
        // Limits not configured take the generator's own defaults.
        { decoderStartTokenId: seq2seq.decoderStartTokenId, eosTokenId: seq2seq.eosTokenId, badWordsIds: seq2seq.badWordsIds, ...this.options.generation },
        this.options.observer,
      );
      await model.translate(warmupTexts, { beams: 1, maxNewTokens: 4 });
      return model;
    } catch (error) {
      await backend.close().catch(() => {});
      throw error;
    }
  }

  private async open(name: string, dir: string, manifest: BundleManifest): Promise<ServingModel> {
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
    const model = this.models.get(name) ?? this.translators.get(name);
    if (!model) return false;
    this.models.delete(name);
    this.translators.delete(name);
    await model.close();
    return true;
  }

  /** An encoder model; a translation model by that name has none of its heads (HEAD_NOT_FOUND). */
  get(name: string): ServingModel {
    const model = this.models.get(name);
    if (model) return model;
    if (this.translators.has(name)) throw new EngineError('HEAD_NOT_FOUND', `model "${name}" is a translation model: ask translate(model: "${name}") or analyze { translation(model: "${name}") }`);
    throw new EngineError('MODEL_NOT_FOUND', `no model "${name}" is loaded`);
  }

  /** A translation model; an encoder by that name cannot translate (HEAD_NOT_FOUND). */
  translator(name: string): TranslationModel {
    const model = this.translators.get(name);
    if (model) return model;
    if (this.models.has(name)) throw new EngineError('HEAD_NOT_FOUND', `model "${name}" is an encoder: it has no translation (import a Marian/opus-mt folder with polyhead import-hf)`);
    const loaded = [...this.translators.keys()];
    throw new EngineError(
      'MODEL_NOT_FOUND',
      loaded.length
        ? `no translation model "${name}" is loaded (loaded: ${loaded.join(', ')}; import another opus-mt folder with polyhead import-hf, then loadModel)`
        : `no translation model "${name}" is loaded: import an opus-mt folder in the Hugging Face layout (polyhead import-hf <folder> or the importHuggingFace mutation), then loadModel`,
    );
  }

  /** Translates the texts with model `name`, batched step by step with every other request. One result or Error per text. */
  async translate(name: string, texts: readonly string[], request: TranslateRequest): Promise<Array<Translation | Error>> {
    const model = this.translator(name);
    const deadline = model.now() + (request.timeoutMs ?? this.options.requestTimeoutMs);
    return model.translate(texts, { ...request, deadline });
  }

  list(): LoadedModelInfo[] {
    return [...[...this.models.values()].map(describe), ...[...this.translators.values()].map(describeTranslator)];
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
    const { trace } = request;
    const startedAt = trace ? performance.now() : 0;
    const heads = new Set(request.heads);
    const deadline = model.scheduler.now() + (request.timeoutMs ?? this.options.requestTimeoutMs);
    const unique = [...new Set(texts)];
    const encodings = await model.backbone.encodeBatch(unique);
    const queuedAt = trace ? performance.now() : 0;
    const promises = model.submitAll(
      unique.map((text, i) => ({ text, encoding: encodings[i]! })),
      heads,
      { signal: request.signal, deadline },
    );
    // Only a traced call notes when each text settled (a result's batch says when it ran; an error's time is this).
    const settledAt = trace ? new Float64Array(unique.length) : undefined;
    const settled = await Promise.all(
      promises.map((promise, i) => {
        const outcome = promise.catch((error: Error) => error);
        return settledAt ? outcome.then((value) => ((settledAt[i] = performance.now()), value)) : outcome;
      }),
    );
    if (trace && settledAt) {
      const tokens = encodings.map((encoding) => Math.max(1, encoding.ids.length));
      try {
        trace.onInfer({ model: modelName, heads: request.heads, texts: texts.length, startedAt, queuedAt, endedAt: performance.now(), tokens, outcomes: settled, settledAt });
      } catch {
        // Tracing must never fail a request.
      }
    }
    const byText = new Map(unique.map((text, i) => [text, settled[i]!]));
    return texts.map((text) => byText.get(text)!);
  }

  /** Queue state of every loaded model. */
  depth(): Array<{ model: string; entries: number; tokens: number; running: number }> {
    return [
      ...[...this.models.values()].map((m) => ({ model: m.name, ...m.scheduler.depth })),
      ...[...this.translators.values()].map((m) => {
        const depth = m.generator.depth;
        return { model: m.name, entries: depth.waiting, tokens: depth.reservedTokens, running: depth.rows };
      }),
    ];
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.values(), ...this.translators.values()].map((m) => m.close()));
    this.models.clear();
    this.translators.clear();
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

function describeTranslator(model: TranslationModel): LoadedModelInfo {
  return { name: model.name, version: model.version, backbone: model.name, provider: model.backend.provider ?? 'cpu', heads: [{ name: 'translation', task: 'generation', reads: 'graph', labels: [] }] };
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
