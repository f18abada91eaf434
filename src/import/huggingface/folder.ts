// Reading a Hugging Face model folder (the layout Optimum exports and transformers.js reads) without
// interpreting it yet: the JSON files it has, each parsed, and the ONNX files where transformers.js looks.
// Every problem is reported as `<file>: <field>: <what is wrong>`, and all of them at once.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type Json = Record<string, unknown>;

export interface HuggingFaceFolder {
  root: string;
  config: Json;
  tokenizerConfig: Json;
  /** tokenizer.json, parsed (the tokenizer library reads the file itself; the importer checks its fields). */
  tokenizer: Json;
  specialTokensMap?: Json;
  /** sentence-transformers: modules.json, and the pooling module's config with its folder. */
  modules?: Array<{ type?: string; path?: string }>;
  pooling?: { path: string; config: Json };
  sentenceBertConfig?: Json;
  /** Graph files present, relative to the folder: fp32 first, then the precision variants. */
  graphs: { fp32?: string; fp16?: string; quantized?: string; externalData: string[] };
  /** An encoder-decoder's graphs (config.json's is_encoder_decoder), where Optimum writes them. */
  seq2seqGraphs?: { encoder?: string; merged?: string; decoder?: string; decoderWithPast?: string };
  generationConfig?: Json;
  /** Licence from README.md's front matter (`license: apache-2.0`), when there is one. */
  readmeLicense?: string;
}

export class FolderProblems extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/** Reads the folder; throws FolderProblems listing every missing or malformed file. */
export async function readHuggingFaceFolder(root: string): Promise<HuggingFaceFolder> {
  const problems: string[] = [];
  const json = async (file: string, required: boolean): Promise<Json | undefined> => {
    const path = join(root, file);
    if (!existsSync(path)) {
      if (required) problems.push(`${file}: missing (a Hugging Face model folder has ${file})`);
      return undefined;
    }
    try {
      const value = JSON.parse(await readFile(path, 'utf8')) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value) !== (file === 'modules.json')) {
        problems.push(`${file}: not a JSON ${file === 'modules.json' ? 'array' : 'object'}`);
        return undefined;
      }
      return value as Json;
    } catch (error) {
      problems.push(`${file}: not valid JSON (${(error as Error).message})`);
      return undefined;
    }
  };
  const [config, tokenizerConfig, tokenizer, specialTokensMap, modules, sentenceBertConfig, generationConfig] = await Promise.all([
    json('config.json', true),
    json('tokenizer_config.json', true),
    json('tokenizer.json', true),
    json('special_tokens_map.json', false),
    json('modules.json', false) as Promise<unknown>,
    json('sentence_bert_config.json', false),
    json('generation_config.json', false),
  ]);
  const encoderDecoder = config?.is_encoder_decoder === true;
  let pooling: HuggingFaceFolder['pooling'];
  if (Array.isArray(modules)) {
    const module = (modules as Array<{ type?: string; path?: string }>).find((m) => typeof m.type === 'string' && m.type.endsWith('.Pooling'));
    if (module) {
      const path = typeof module.path === 'string' && module.path ? module.path : '1_Pooling';
      if (path.includes('..') || path.startsWith('/')) problems.push(`modules.json: path: "${path}" is not a folder inside the model`);
      else {
        const poolingConfig = await json(`${path}/config.json`, true);
        if (poolingConfig) pooling = { path, config: poolingConfig };
      }
    }
  }
  const graphs: HuggingFaceFolder['graphs'] = { externalData: [] };
  for (const [key, file] of [['fp32', 'onnx/model.onnx'], ['fp16', 'onnx/model_fp16.onnx'], ['quantized', 'onnx/model_quantized.onnx']] as const) {
    if (!(await isFile(join(root, file)))) continue;
    graphs[key] = file;
    // Weights kept beside the graph (graphs over 2 GB): onnxruntime reads them from the same folder.
    if (await isFile(join(root, `${file}_data`))) graphs.externalData.push(`${file}_data`);
  }
  let seq2seqGraphs: HuggingFaceFolder['seq2seqGraphs'];
  if (encoderDecoder) {
    seq2seqGraphs = {};
    for (const [key, file] of [['encoder', 'onnx/encoder_model.onnx'], ['merged', 'onnx/decoder_model_merged.onnx'], ['decoder', 'onnx/decoder_model.onnx'], ['decoderWithPast', 'onnx/decoder_with_past_model.onnx']] as const) {
      if (await isFile(join(root, file))) seq2seqGraphs[key] = file;
    }
    if (!seq2seqGraphs.encoder) problems.push('onnx/encoder_model.onnx: missing (an encoder-decoder export has it; export with Optimum\'s text2text-generation-with-past task)');
    if (!seq2seqGraphs.merged && !seq2seqGraphs.decoder) problems.push('onnx/decoder_model_merged.onnx: missing (or the unmerged onnx/decoder_model.onnx with onnx/decoder_with_past_model.onnx)');
  } else if (!graphs.fp32) problems.push('onnx/model.onnx: missing (the graph goes where transformers.js looks for it; export one with Optimum)');
  let readmeLicense: string | undefined;
  if (await isFile(join(root, 'README.md'))) {
    const front = /^---\n([\s\S]*?)\n---/.exec(await readFile(join(root, 'README.md'), 'utf8'));
    readmeLicense = front ? /^license:\s*["']?([^"'\n]+?)["']?\s*$/m.exec(front[1]!)?.[1] : undefined;
  }
  if (problems.length) throw new FolderProblems(problems);
  return {
    root,
    config: config!,
    tokenizerConfig: tokenizerConfig!,
    tokenizer: tokenizer!,
    specialTokensMap,
    modules: modules as HuggingFaceFolder['modules'],
    pooling,
    sentenceBertConfig,
    graphs,
    seq2seqGraphs,
    generationConfig,
    readmeLicense,
  };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}
