// Features from the frozen backbone, computed once per distinct text and kept in memory while a head
// trains: the pooled sentence embedding (classification heads) or the token states with each token's
// character offsets (token-classification heads). Texts are batched by length (less padding).
import { backboneSpecOf } from '../bundle/backbone-spec.js';
import { Backbone } from '../engine/backbone.js';
import { defaultSessionOptions, type SessionOptions } from '../engine/onnx-runtime.js';
import type { TextEncoding } from '../engine/tokenizer.js';
import type { ProgressListener } from './progress.js';

/** Loads the backbone of a bundle folder for feature extraction. */
export async function loadBundleBackbone(bundleDir: string, options: Partial<SessionOptions> = {}): Promise<Backbone> {
  return Backbone.load(await backboneSpecOf(bundleDir), { ...defaultSessionOptions, ...options });
}

export interface TokenFeatures {
  text: string;
  /** [tokens * hidden] float32: the backbone's last-layer state of each token. */
  states: Float32Array;
  /** Per token, [start, end) JavaScript string offsets into `text` (see TextEncoding). */
  offsets: Array<[number, number]>;
  tokens: number;
  truncated: boolean;
}

export interface ExtractOptions {
  /** Texts per backbone run (default 64). */
  batchSize?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/**
 * Runs texts through the backbone in length-sorted batches; calls `take(i, output, row)` for each text.
 * Deterministic: the same texts give the same batches.
 */
async function runBatches(
  backbone: Backbone,
  texts: readonly string[],
  wantTokens: boolean,
  options: ExtractOptions,
  take: (index: number, encoding: TextEncoding, output: Awaited<ReturnType<Backbone['run']>>, row: number) => void,
): Promise<void> {
  const batchSize = options.batchSize ?? 64;
  const encodings = await backbone.encodeBatch(texts);
  const order = texts.map((_, i) => i).sort((a, b) => encodings[a]!.ids.length - encodings[b]!.ids.length || a - b);
  let done = 0;
  for (let at = 0; at < order.length; at += batchSize) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('feature extraction aborted');
    const batch = order.slice(at, at + batchSize);
    const output = await backbone.run(
      batch.map((i) => encodings[i]!),
      wantTokens,
    );
    batch.forEach((index, row) => take(index, encodings[index]!, output, row));
    done += batch.length;
    options.onProgress?.({ phase: 'features', done, total: texts.length });
  }
}

/** The pooled sentence embedding of each text ([hidden] each, in the texts' order). */
export async function extractPooled(backbone: Backbone, texts: readonly string[], options: ExtractOptions = {}): Promise<Float32Array[]> {
  if (!backbone.hasEmbedding) throw new Error(`backbone ${backbone.spec.name} gives no sentence embedding to train on`);
  const out: Float32Array[] = new Array(texts.length);
  await runBatches(backbone, texts, false, options, (index, _encoding, output, row) => {
    out[index] = output.pooled!.slice(row * output.hidden, (row + 1) * output.hidden);
  });
  return out;
}

/** Token states and offsets of each text (in the texts' order). */
export async function extractTokenStates(backbone: Backbone, texts: readonly string[], options: ExtractOptions = {}): Promise<TokenFeatures[]> {
  const out: TokenFeatures[] = new Array(texts.length);
  await runBatches(backbone, texts, true, options, (index, encoding, output, row) => {
    const count = encoding.ids.length;
    const stride = output.tokens * output.hidden;
    out[index] = {
      text: texts[index]!,
      states: output.tokenStates!.slice(row * stride, row * stride + count * output.hidden),
      offsets: encoding.offsets,
      tokens: count,
      truncated: encoding.truncated,
    };
  });
  return out;
}

/** The value of each text from `store`, extracting the distinct missing ones in one call first. */
async function cached<T>(store: Map<string, T>, texts: readonly string[], extract: (missing: string[]) => Promise<T[]>): Promise<T[]> {
  const missing = [...new Set(texts.filter((t) => !store.has(t)))];
  if (missing.length) {
    const values = await extract(missing);
    missing.forEach((text, i) => store.set(text, values[i]!));
  }
  return texts.map((t) => store.get(t)!);
}

/**
 * In-memory cache of features by text for one backbone: a text repeated across the training, validation
 * and test sets (or across epochs and jobs) goes through the backbone once.
 */
export class FeatureCache {
  private readonly pooledByText = new Map<string, Float32Array>();
  private readonly tokensByText = new Map<string, TokenFeatures>();

  constructor(readonly backbone: Backbone) {}

  async pooled(texts: readonly string[], options: ExtractOptions = {}): Promise<Float32Array[]> {
    return cached(this.pooledByText, texts, (missing) => extractPooled(this.backbone, missing, options));
  }

  async tokens(texts: readonly string[], options: ExtractOptions = {}): Promise<TokenFeatures[]> {
    return cached(this.tokensByText, texts, (missing) => extractTokenStates(this.backbone, missing, options));
  }

  clear(): void {
    this.pooledByText.clear();
    this.tokensByText.clear();
  }
}
