// A Hugging Face folder as a Polyhead bundle manifest: which family it is (an encoder, or a task model with its
// head inside the graph), its sizes, its pooling, its heads; and every check that graph, config and tokenizer
// agree. The checks that need the graph's real output widths use a probe run (see import-hf.ts).
import type { BundleManifest } from '../../bundle/manifest.js';
import type { GraphInfo } from './graph-info.js';
import type { HuggingFaceFolder, Json } from './folder.js';

export interface ImportOptions {
  name?: string;
  version?: string;
  /** Name of the head a task model's graph holds (default: classification / entities). */
  head?: string;
  license?: string;
  /** `<repo id>[@revision]` on the Hugging Face Hub, recorded as the source of the weights. */
  source?: string;
  /** A translation model's languages (default: from an opus-mt-xx-yy folder name, else tokenizer_config.json). */
  sourceLanguage?: string;
  targetLanguage?: string;
}

/** What the probe run of the graph showed: the width of each output's last dimension. */
export type OutputWidths = Record<string, number>;

/** Families by what the graph computes; a task model's head reads the graph's logits. */
export type EncoderTask = 'encoder' | 'classification' | 'token_classification';
export type HuggingFaceTask = EncoderTask | 'translation';

export const supportedTokenizerModels = ['WordPiece', 'BPE', 'Unigram'];
/** Position ids of these families start after the padding index (fairseq's convention). */
const offsetPositions = new Set(['roberta', 'xlm-roberta', 'camembert', 'xlm-roberta-xl', 'longformer', 'mpnet']);
/** tokenizer_config.json's model_max_length when the model sets none (transformers' VERY_LARGE_INTEGER). */
export const UNSET_MAX_LENGTH = 1e12;

export const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
export const str = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);

export function taskOf(config: Json): EncoderTask {
  const architecture = (Array.isArray(config.architectures) ? config.architectures : []).find((a): a is string => typeof a === 'string') ?? '';
  if (architecture.endsWith('ForSequenceClassification')) return 'classification';
  if (architecture.endsWith('ForTokenClassification')) return 'token_classification';
  return 'encoder';
}

/** A registry name from a folder name: lower-case, with anything else than [a-z0-9._-] as "-". */
export function defaultModelName(folderName: string): string {
  const name = folderName.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64);
  return name || 'imported';
}

/**
 * The registry name and version (as given, else the folder's name and 1.0.0), where the weights came from
 * (`--source <repo id>[@revision]`, else config.json's _name_or_path when it is a Hub id, else the folder) and
 * their licence (as given, else README.md's front matter, else config.json's, else unknown).
 */
export function identityOf(folder: HuggingFaceFolder, folderName: string, options: ImportOptions) {
  const [sourceRepo, sourceRevision] = (options.source ?? '').split('@');
  const nameOrPath = str(folder.config._name_or_path);
  return {
    name: options.name ?? defaultModelName(folderName),
    version: options.version ?? '1.0.0',
    source: sourceRepo
      ? { name: sourceRepo, ...(sourceRevision ? { version: sourceRevision } : {}), url: `https://huggingface.co/${sourceRepo}` }
      : { name: nameOrPath && /^[\w.-]+\/[\w.-]+$/.test(nameOrPath) ? nameOrPath : folderName },
    license: options.license ?? folder.readmeLicense ?? str(folder.config.license) ?? 'unknown',
  };
}

export interface BundlePlan {
  manifest: BundleManifest;
  /** Files of the Hugging Face folder the bundle holds (relative paths, the same in the bundle). */
  files: string[];
  /** The graph outputs whose widths the probe must report. */
  task: HuggingFaceTask;
}

/**
 * The manifest for the folder, or the list of every disagreement found. `widths` are the probe's output
 * widths; `tokenizerVocab` the tokenizer's vocabulary size (added tokens included).
 */
export function planBundle(folder: HuggingFaceFolder, graph: GraphInfo, widths: OutputWidths, tokenizerVocab: number, folderName: string, options: ImportOptions): { plan?: BundlePlan; problems: string[] } {
  const problems: string[] = [];
  const { config, tokenizerConfig, tokenizer } = folder;
  const graphFile = folder.graphs.fp32!;
  const modelType = str(config.model_type);
  if (!modelType) problems.push('config.json: model_type: missing');
  const architectures = (Array.isArray(config.architectures) ? config.architectures : []).filter((a): a is string => typeof a === 'string');
  const task = taskOf(config);

  // Tokenizer: one of the model types the tokenizer library reads with offsets.
  const tokenizerModel = str((tokenizer.model as Json | undefined)?.type);
  if (!tokenizerModel || !supportedTokenizerModels.includes(tokenizerModel)) {
    problems.push(`tokenizer.json: model.type: "${tokenizerModel ?? '(none)'}" is not supported (supported: ${supportedTokenizerModels.join(', ')})`);
  }

  // Inputs: the ones the engine feeds, and nothing else.
  const inputNames = graph.inputs.map((i) => i.name);
  for (const required of ['input_ids', 'attention_mask']) {
    if (!inputNames.includes(required)) problems.push(`${graphFile}: inputs: no "${required}" (it has ${inputNames.join(', ') || 'none'})`);
  }
  const unknownInputs = inputNames.filter((name) => !['input_ids', 'attention_mask', 'token_type_ids'].includes(name));
  if (unknownInputs.length) problems.push(`${graphFile}: inputs: ${unknownInputs.join(', ')} cannot be fed (an encoder takes input_ids, attention_mask and token_type_ids)`);

  // Sizes: hidden, vocabulary, positions.
  const hidden = num(config.hidden_size) ?? num(config.dim) ?? num(config.d_model);
  const layers = num(config.num_hidden_layers) ?? num(config.n_layers);
  const vocab = num(config.vocab_size);
  if (!hidden) problems.push('config.json: hidden_size: missing');
  if (!vocab) problems.push('config.json: vocab_size: missing');
  if (graph.embeddingRows !== undefined && vocab && vocab !== graph.embeddingRows) {
    problems.push(`config.json: vocab_size: ${vocab}, but the embedding table of ${graphFile} has ${graph.embeddingRows} rows`);
  }
  const tableRows = graph.embeddingRows ?? vocab;
  if (tableRows && tokenizerVocab > tableRows) {
    problems.push(`tokenizer.json: model.vocab: ${tokenizerVocab} tokens, more than the ${tableRows} rows of the embedding table (ids past it would fail)`);
  }
  const outputNames = graph.outputs.map((o) => o.name);
  if (task === 'encoder') {
    if (!outputNames.includes('last_hidden_state')) problems.push(`${graphFile}: outputs: no "last_hidden_state" (it has ${outputNames.join(', ') || 'none'}): export the encoder with Optimum's feature-extraction task`);
    else if (hidden && widths.last_hidden_state !== undefined && widths.last_hidden_state !== hidden) {
      problems.push(`config.json: hidden_size: ${hidden}, but ${graphFile} gives last_hidden_state of width ${widths.last_hidden_state}`);
    }
  } else if (!outputNames.includes('logits')) {
    problems.push(`${graphFile}: outputs: no "logits" (it has ${outputNames.join(', ') || 'none'}), which ${architectures[0]} gives`);
  }

  const positions = num(config.max_position_embeddings);
  const usablePositions = positions === undefined ? undefined : offsetPositions.has(modelType ?? '') ? positions - ((num(config.pad_token_id) ?? 1) + 1) : positions;
  const declaredMax = num(tokenizerConfig.model_max_length);
  const modelMax = declaredMax !== undefined && declaredMax < UNSET_MAX_LENGTH ? declaredMax : undefined;
  if (modelMax !== undefined && usablePositions !== undefined && modelMax > usablePositions) {
    problems.push(`tokenizer_config.json: model_max_length: ${modelMax}, but config.json's max_position_embeddings leaves ${usablePositions} positions`);
  }
  const seqMax = num(folder.sentenceBertConfig?.max_seq_length);
  const truncationMax = num((tokenizer.truncation as Json | null | undefined)?.max_length);
  const maxTokens = Math.min(...[modelMax, usablePositions, seqMax, truncationMax, 8192].filter((v): v is number => v !== undefined && v > 0));

  // Labels of a task model against the width of its logits.
  let labels: string[] | undefined;
  if (task !== 'encoder') {
    labels = labelsOf(config, problems);
    const width = widths.logits;
    if (labels && width !== undefined && labels.length !== width) {
      problems.push(`config.json: id2label: ${labels.length} labels, but ${graphFile} gives logits of width ${width}`);
    }
    if (labels && task === 'token_classification') {
      const bad = labels.filter((label) => label !== 'O' && !/^[BI]-.+/.test(label));
      if (bad.length) problems.push(`config.json: id2label: ${bad.slice(0, 3).map((l) => `"${l}"`).join(', ')} ${bad.length > 1 ? 'are' : 'is'} not IOB2 tags (O, B-X, I-X), which the entities head decodes`);
    }
  }

  const pooling = poolingOf(folder, problems);
  if (problems.length) return { problems };

  const files = [
    'tokenizer.json',
    'config.json',
    'tokenizer_config.json',
    ...(folder.specialTokensMap ? ['special_tokens_map.json'] : []),
    ...(folder.modules ? ['modules.json'] : []),
    ...(folder.pooling ? [`${folder.pooling.path}/config.json`] : []),
    ...(folder.sentenceBertConfig ? ['sentence_bert_config.json'] : []),
    graphFile,
    ...(folder.graphs.fp16 ? [folder.graphs.fp16] : []),
    ...(folder.graphs.quantized ? [folder.graphs.quantized] : []),
    ...folder.graphs.externalData,
  ];
  const { name, version, source, license } = identityOf(folder, folderName, options);
  const architecture = architectures[0] ?? modelType!;
  const head = options.head ?? (task === 'classification' ? 'classification' : 'entities');
  const manifest: BundleManifest = {
    format: 'polyhead-bundle/1',
    name,
    version,
    description: `${architecture} imported from a Hugging Face folder`,
    license,
    tokenizer: 'tokenizer.json',
    tokenizerKind: 'huggingface',
    files: files.filter((f) => f !== 'tokenizer.json' && f !== graphFile && f !== folder.graphs.fp16 && f !== folder.graphs.quantized),
    backbone: {
      name,
      version,
      architecture,
      modelType,
      architectures,
      ...(layers ? { layers } : {}),
      file: graphFile,
      variants: { ...(folder.graphs.fp16 ? { fp16: folder.graphs.fp16 } : {}), ...(folder.graphs.quantized ? { quantized: folder.graphs.quantized } : {}) },
      hiddenSize: hidden!,
      vocabSize: tableRows!,
      maxTokens,
      pooling: task === 'encoder' ? pooling : 'none',
      inputs: { ids: 'input_ids', mask: 'attention_mask', ...(inputNames.includes('token_type_ids') ? { typeIds: 'token_type_ids' } : {}) },
      outputs: task === 'encoder' ? { tokens: 'last_hidden_state' } : {},
      license,
      source,
    },
    heads:
      task === 'encoder'
        ? []
        : [
            {
              name: head,
              task,
              reads: 'graph',
              output: 'logits',
              labels,
              ...(task === 'classification' && config.problem_type === 'multi_label_classification' ? { activation: 'sigmoid' as const } : {}),
              description: `the ${task === 'classification' ? 'sequence' : 'token'} classification head inside ${architecture}`,
              datasets: [],
            },
          ],
    datasets: [],
    evaluations: [],
  };
  return { plan: { manifest, files, task }, problems };
}

/** id2label as a list in id order; problems when the ids are not 0..n-1 or labels repeat. */
function labelsOf(config: Json, problems: string[]): string[] | undefined {
  const id2label = config.id2label;
  if (!id2label || typeof id2label !== 'object') {
    problems.push('config.json: id2label: missing (a task model names its labels)');
    return undefined;
  }
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = [];
  for (const [id, label] of entries) {
    const index = Number(id);
    if (!Number.isInteger(index) || index < 0 || index >= entries.length || typeof label !== 'string' || !label) {
      problems.push(`config.json: id2label: entry "${id}": ${JSON.stringify(label)} (ids must be 0..${entries.length - 1}, labels non-empty strings)`);
      return undefined;
    }
    labels[index] = label;
  }
  if (new Set(labels).size !== labels.length) {
    problems.push('config.json: id2label: labels repeat');
    return undefined;
  }
  if (labels.length < 2) {
    problems.push('config.json: id2label: a classifier needs at least two labels');
    return undefined;
  }
  return labels;
}

/** The pooling mode sentence-transformers' Pooling module names; mean when the folder has none. */
function poolingOf(folder: HuggingFaceFolder, problems: string[]): 'mean' | 'cls' | 'max' {
  if (!folder.pooling) return 'mean';
  const { config, path } = folder.pooling;
  const modes = Object.entries(config).filter(([key, on]) => key.startsWith('pooling_mode_') && on === true).map(([key]) => key);
  const known: Record<string, 'mean' | 'cls' | 'max'> = { pooling_mode_mean_tokens: 'mean', pooling_mode_cls_token: 'cls', pooling_mode_max_tokens: 'max' };
  if (modes.length !== 1 || !known[modes[0]!]) {
    problems.push(`${path}/config.json: ${modes.join(', ') || 'pooling_mode_*'}: Polyhead pools with exactly one of ${Object.keys(known).join(', ')}`);
    return 'mean';
  }
  return known[modes[0]!]!;
}
