// An encoder-decoder folder (Marian / opus-mt, as Optimum exports it) as a Polyhead bundle: the encoder graph is
// the backbone, the decoder graph and what generation needs (config.json, generation_config.json) go in the
// manifest's `seq2seq`, and one head `translation` (task generation) records the languages. The checks mirror the
// encoders' (planBundle): graph, config and tokenizer must agree, and every problem names its file and field.
import type { BundleManifest } from '../../bundle/manifest.js';
import type { HuggingFaceFolder, Json } from './folder.js';
import type { GraphInfo } from './graph-info.js';
import { UNSET_MAX_LENGTH, identityOf, num, str, type BundlePlan, type ImportOptions, type OutputWidths } from './to-bundle.js';


/** Source and target languages: as given, else from an opus-mt-xx-yy folder name, else tokenizer_config.json's. */
export function languagesOf(folderName: string, tokenizerConfig: Json, options: ImportOptions): { source?: string; target?: string } {
  const fromName = /opus-mt-([a-z]{2,3}(?:_[a-z]+)?)-([a-z]{2,3}(?:_[a-z]+)?)$/i.exec(folderName);
  return {
    source: options.sourceLanguage ?? fromName?.[1]?.toLowerCase() ?? str(tokenizerConfig.source_lang),
    target: options.targetLanguage ?? fromName?.[2]?.toLowerCase() ?? str(tokenizerConfig.target_lang),
  };
}

export function planSeq2SeqBundle(
  folder: HuggingFaceFolder,
  encoder: GraphInfo,
  decoder: GraphInfo,
  widths: OutputWidths,
  tokenizerVocab: number,
  folderName: string,
  options: ImportOptions,
): { plan?: BundlePlan; problems: string[] } {
  const problems: string[] = [];
  const { config, tokenizerConfig } = folder;
  const graphs = folder.seq2seqGraphs!;
  const generation = folder.generationConfig ?? {};
  const modelType = str(config.model_type);
  if (modelType !== 'marian') problems.push(`config.json: model_type: "${modelType ?? '(none)'}": of the encoder-decoders, Polyhead serves Marian (opus-mt) models`);
  const architectures = (Array.isArray(config.architectures) ? config.architectures : []).filter((a): a is string => typeof a === 'string');
  const dModel = num(config.d_model);
  const decoderLayers = num(config.decoder_layers);
  const heads = num(config.decoder_attention_heads);
  const vocab = num(config.vocab_size);
  for (const [field, value] of [['d_model', dModel], ['decoder_layers', decoderLayers], ['decoder_attention_heads', heads], ['vocab_size', vocab]] as const) {
    if (!value) problems.push(`config.json: ${field}: missing`);
  }
  const encoderFile = graphs.encoder!;
  const decoderFile = graphs.merged ?? graphs.decoder!;
  const encoderInputs = encoder.inputs.map((i) => i.name);
  for (const name of ['input_ids', 'attention_mask']) if (!encoderInputs.includes(name)) problems.push(`${encoderFile}: inputs: no "${name}"`);
  if (!encoder.outputs.some((o) => o.name === 'last_hidden_state')) problems.push(`${encoderFile}: outputs: no "last_hidden_state"`);
  else if (dModel && widths.last_hidden_state !== undefined && widths.last_hidden_state !== dModel) {
    problems.push(`config.json: d_model: ${dModel}, but ${encoderFile} gives last_hidden_state of width ${widths.last_hidden_state}`);
  }
  if (vocab && encoder.embeddingRows !== undefined && vocab !== encoder.embeddingRows) {
    problems.push(`config.json: vocab_size: ${vocab}, but the embedding table of ${encoderFile} has ${encoder.embeddingRows} rows`);
  }
  if (vocab && tokenizerVocab > vocab) problems.push(`tokenizer.json: model.vocab: ${tokenizerVocab} tokens, more than config.json's vocab_size ${vocab}`);
  const decoderInputs = decoder.inputs.map((i) => i.name);
  for (const name of ['input_ids', 'encoder_attention_mask', 'encoder_hidden_states']) {
    if (!decoderInputs.includes(name)) problems.push(`${decoderFile}: inputs: no "${name}" (it has ${decoderInputs.join(', ')})`);
  }
  if (graphs.merged && !decoderInputs.includes('use_cache_branch')) problems.push(`${decoderFile}: inputs: no "use_cache_branch" (not a merged decoder)`);
  const outputs = decoder.outputs.map((o) => o.name);
  if (!outputs.includes('logits')) problems.push(`${decoderFile}: outputs: no "logits"`);
  const presentLayers = outputs.filter((name) => /^present\.\d+\.decoder\.key$/.test(name)).length;
  if (decoderLayers && presentLayers !== decoderLayers) problems.push(`config.json: decoder_layers: ${decoderLayers}, but ${decoderFile} has ${presentLayers} layers of present.*.decoder.key`);
  if (!graphs.merged && !graphs.decoderWithPast) problems.push('onnx/decoder_with_past_model.onnx: missing (the unmerged layout has it beside onnx/decoder_model.onnx)');

  const first = (value: unknown) => (Array.isArray(value) ? num(value[0]) : num(value));
  const pad = first(generation.pad_token_id) ?? num(config.pad_token_id);
  const eos = first(generation.eos_token_id) ?? first(config.eos_token_id);
  const start = first(generation.decoder_start_token_id) ?? num(config.decoder_start_token_id) ?? pad;
  if (eos === undefined) problems.push('generation_config.json: eos_token_id: missing (and none in config.json)');
  if (start === undefined) problems.push('generation_config.json: decoder_start_token_id: missing (and no pad_token_id to start from)');
  const badWords = (generation.bad_words_ids ?? config.bad_words_ids) as unknown;
  const badWordsIds: number[] = [];
  if (badWords !== undefined) {
    if (!Array.isArray(badWords) || !badWords.every((w) => Array.isArray(w) && w.every((id) => Number.isInteger(id)))) problems.push('generation_config.json: bad_words_ids: not a list of token id lists');
    // A bad word of several tokens would need a rule on sequences; opus-mt's is the pad token alone.
    else for (const word of badWords as number[][]) if (word.length === 1) badWordsIds.push(word[0]!);
  }
  const positions = num(config.max_position_embeddings) ?? 512;
  const declaredMax = num(tokenizerConfig.model_max_length);
  const modelMax = declaredMax !== undefined && declaredMax < UNSET_MAX_LENGTH ? declaredMax : undefined;
  if (modelMax !== undefined && modelMax > positions) problems.push(`tokenizer_config.json: model_max_length: ${modelMax}, but config.json's max_position_embeddings is ${positions}`);
  if (problems.length) return { problems };

  const languages = languagesOf(folderName, tokenizerConfig, options);
  const { name, version, source, license } = identityOf(folder, folderName, options);
  const architecture = architectures[0] ?? 'MarianMTModel';
  const decoderFiles = [decoderFile, ...(!graphs.merged && graphs.decoderWithPast ? [graphs.decoderWithPast] : [])];
  const other = [
    'config.json',
    'tokenizer_config.json',
    ...(folder.generationConfig ? ['generation_config.json'] : []),
    ...(folder.specialTokensMap ? ['special_tokens_map.json'] : []),
  ];
  const maxLength = num(generation.max_length) ?? num(config.max_length) ?? positions;
  const manifest: BundleManifest = {
    format: 'polyhead-bundle/1',
    name,
    version,
    description: `${architecture} imported from a Hugging Face folder${languages.source && languages.target ? ` (${languages.source} -> ${languages.target})` : ''}`,
    license,
    tokenizer: 'tokenizer.json',
    tokenizerKind: 'huggingface',
    files: other,
    backbone: {
      name,
      version,
      architecture,
      modelType,
      architectures,
      ...(num(config.encoder_layers) ? { layers: num(config.encoder_layers) } : {}),
      file: encoderFile,
      variants: {},
      hiddenSize: dModel!,
      vocabSize: vocab!,
      maxTokens: Math.min(modelMax ?? positions, positions, 8192),
      pooling: 'none',
      inputs: { ids: 'input_ids', mask: 'attention_mask' },
      outputs: {},
      license,
      source,
    },
    heads: [
      {
        name: 'translation',
        task: 'generation',
        reads: 'graph',
        output: 'logits',
        languages,
        description: `translation${languages.source && languages.target ? ` from ${languages.source} to ${languages.target}` : ''} by ${architecture}'s decoder`,
        datasets: [],
      },
    ],
    seq2seq: {
      family: 'marian',
      decoder: decoderFile,
      ...(decoderFiles[1] ? { decoderWithPast: decoderFiles[1] } : {}),
      config: 'config.json',
      decoderLayers: decoderLayers!,
      heads: heads!,
      maxPositions: positions,
      decoderStartTokenId: start!,
      eosTokenId: eos!,
      ...(pad !== undefined ? { padTokenId: pad } : {}),
      badWordsIds,
      maxLength: Math.min(maxLength, positions),
      numBeams: num(generation.num_beams) ?? num(config.num_beams) ?? 1,
    },
    datasets: [],
    evaluations: [],
  };
  return { plan: { manifest, files: ['tokenizer.json', ...other, encoderFile, ...decoderFiles], task: 'translation' }, problems };
}
