// `polyhead import-hf` and the importHuggingFace mutation: a Hugging Face folder (Optimum's export, or a
// repository published for transformers.js) becomes a Polyhead bundle and a registered model version.
//
// The folder is checked whole before anything is written (graph, config and tokenizer must agree; every
// problem is listed with its file and field); the bundle is then assembled in the bundle folder, as a copy
// (the user's folder may change or go away; copy-on-write clones where the filesystem has them), with a
// bundle.json that describes it, and registered in one transaction. Importing the same files again changes
// nothing; a refusal leaves neither a registry row nor a bundle folder behind.
import { constants } from 'node:fs';
import { copyFile, mkdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { BundleManifest } from '../../bundle/manifest.js';
import { PolyheadError } from '../../errors.js';
import type { PrismaClient } from '../../generated/prisma/client.js';
import { importBundle, readBundle, type ImportResult } from '../../registry/bundle-import.js';
import { OnnxSession, defaultSessionOptions, int64Tensor, type Feeds } from '../../engine/onnx-runtime.js';
import { HuggingFaceTokenizer } from '../../engine/tokenizers/huggingface.js';
import { FolderProblems, readHuggingFaceFolder, type HuggingFaceFolder } from './folder.js';
import { readGraphInfo, type GraphInfo } from './graph-info.js';
import { planSeq2SeqBundle } from './seq2seq-plan.js';
import { planBundle, supportedTokenizerModels, type ImportOptions, type OutputWidths } from './to-bundle.js';

export type { ImportOptions };

export interface HuggingFaceImportResult extends ImportResult {
  /** The bundle folder the model is served from. */
  bundlePath: string;
}

const probeText = 'Polyhead checks that this graph runs.';

function invalid(problems: string[]): PolyheadError {
  return new PolyheadError('BUNDLE_INVALID', `not an importable Hugging Face folder: ${problems.join('; ')}`, { problems });
}

/** Checks the folder and returns the bundle manifest it makes, without writing anything. */
export async function planHuggingFaceImport(path: string, options: ImportOptions = {}) {
  let root: string;
  try {
    root = await realpath(path);
  } catch {
    throw invalid([`${path}: no such folder`]);
  }
  let folder: HuggingFaceFolder;
  try {
    folder = await readHuggingFaceFolder(root);
  } catch (error) {
    if (error instanceof FolderProblems) throw invalid(error.problems);
    throw error;
  }
  const tokenizerModel = (folder.tokenizer.model as { type?: unknown } | undefined)?.type;
  if (!supportedTokenizerModels.includes(String(tokenizerModel))) {
    throw invalid([`tokenizer.json: model.type: "${String(tokenizerModel ?? '(none)')}" is not supported (supported: ${supportedTokenizerModels.join(', ')})`]);
  }
  const graphInfo = async (file: string) => {
    try {
      return await readGraphInfo(join(root, file));
    } catch (error) {
      throw invalid([`${file}: not a readable ONNX model (${(error as Error).message})`]);
    }
  };
  const graphFile = folder.seq2seqGraphs ? folder.seq2seqGraphs.encoder! : folder.graphs.fp32!;
  const graph = await graphInfo(graphFile);
  let tokenizer: HuggingFaceTokenizer;
  try {
    tokenizer = await HuggingFaceTokenizer.load(join(root, 'tokenizer.json'), { maxTokens: 8192 });
  } catch (error) {
    // The library's message, without the server's path to the file.
    throw invalid([`tokenizer.json: ${(error as Error).message.split(root).join('.').replace(/^tokenizer\.json\s*(\([^)]*\))?:\s*/, '')}`]);
  }
  const widths = await probe(join(root, graphFile), graph, tokenizer);
  // Encoder-decoders (translation) are planned by their own family; encoders and task models by planBundle.
  const { plan, problems } = folder.seq2seqGraphs
    ? planSeq2SeqBundle(folder, graph, await graphInfo(folder.seq2seqGraphs.merged ?? folder.seq2seqGraphs.decoder!), widths, tokenizer.vocabSize, basename(root), options)
    : planBundle(folder, graph, widths, tokenizer.vocabSize, basename(root), options);
  if (!plan) throw invalid(problems);
  return { root, ...plan };
}

/**
 * Runs the graph once on a short text: it must run, and its outputs' real widths are checked against the
 * config (declared shapes are often symbolic).
 */
async function probe(file: string, graph: GraphInfo, tokenizer: HuggingFaceTokenizer): Promise<OutputWidths> {
  const [encoding] = await tokenizer.encodeBatch([probeText]);
  const n = encoding!.ids.length;
  const feeds: Feeds = {};
  const inputs = graph.inputs.map((i) => i.name);
  const column = (values: ArrayLike<number>) => BigInt64Array.from({ length: n }, (_, i) => BigInt(values[i] ?? 0));
  if (inputs.includes('input_ids')) feeds.input_ids = int64Tensor(column(encoding!.ids), [1, n]);
  if (inputs.includes('attention_mask')) feeds.attention_mask = int64Tensor(column(new Array(n).fill(1)), [1, n]);
  if (inputs.includes('token_type_ids')) feeds.token_type_ids = int64Tensor(column(encoding!.typeIds ?? []), [1, n]);
  const wanted = graph.outputs.map((o) => o.name).filter((name) => name === 'last_hidden_state' || name === 'logits');
  if (!wanted.length || Object.keys(feeds).length !== inputs.length) return {}; // planBundle names what is missing
  let session: OnnxSession | undefined;
  try {
    session = await OnnxSession.load(file, { ...defaultSessionOptions, intraOpThreads: 1 });
    const outputs = await session.run(feeds, wanted);
    return Object.fromEntries(Object.entries(outputs).map(([name, output]) => [name, output.dims.at(-1)!]));
  } catch (error) {
    throw invalid([`${basename(dirname(file))}/${basename(file)}: the graph does not run on "${probeText}" (${(error as Error).message.split('\n')[0]})`]);
  } finally {
    await session?.release();
  }
}

/** Imports the folder at `path` into the registry; the bundle is assembled under `bundleDir`/imported. */
export async function importHuggingFace(prisma: PrismaClient, path: string, options: ImportOptions & { bundleDir: string }): Promise<HuggingFaceImportResult> {
  const { root, manifest, files } = await planHuggingFaceImport(path, options);
  const target = join(options.bundleDir, 'imported', `${manifest.name}-${manifest.version}`);
  const staging = `${target}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  let created = false;
  try {
    await writeBundle(root, manifest, files, staging);
    const staged = await readBundle(staging);
    const existing = await readBundle(target).catch(() => undefined);
    if (existing && sameBundle(existing, staged)) {
      await rm(staging, { recursive: true, force: true });
    } else {
      if (existing) {
        // Another bundle under this name and version: refused if the registry has it, else a leftover to replace.
        const registered = await prisma.modelVersion.findFirst({ where: { version: manifest.version, model: { name: manifest.name } } });
        if (registered) {
          throw new PolyheadError('BUNDLE_CONFLICT', `${manifest.name} ${manifest.version} is already registered with other files: import with another --version`, { file: 'bundle.json' });
        }
        await rm(target, { recursive: true, force: true });
      }
      await mkdir(dirname(target), { recursive: true });
      await rename(staging, target);
      created = true;
    }
    const result = await importBundle(prisma, target);
    return { ...result, bundlePath: target };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (created) await rm(target, { recursive: true, force: true });
    throw error;
  }
}

/** Writes the bundle: the folder's `files` copied into `dir` under the same paths, and its bundle.json. */
export async function writeBundle(root: string, manifest: BundleManifest, files: readonly string[], dir: string): Promise<void> {
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(join(root, file), join(dir, file), constants.COPYFILE_FICLONE);
  }
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

function sameBundle(a: Awaited<ReturnType<typeof readBundle>>, b: Awaited<ReturnType<typeof readBundle>>): boolean {
  if (a.manifestSha256 !== b.manifestSha256 || a.files.length !== b.files.length) return false;
  const hashes = new Map(a.files.map((f) => [f.path, f.sha256]));
  return b.files.every((f) => hashes.get(f.path) === f.sha256);
}
