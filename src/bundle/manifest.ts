// bundle.json: the manifest of a model bundle (format in DESIGN.md). Validation names the bad field.
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, ".", "_" or "-", at most 64');
const version = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/, 'a version such as 1.0.0');
/** A path inside the bundle folder: relative, no "..", no backslashes. */
const bundleFile = z
  .string()
  .min(1)
  .refine((path) => !path.startsWith('/') && !path.includes('\\') && !path.split('/').includes('..'), 'a relative path inside the bundle');

const source = z.object({
  name: z.string().min(1),
  version: z.string().optional(),
  url: z.string().url().optional(),
  citation: z.string().optional(),
});

/** How the engine pools token states into a sentence embedding when the graph has no pooled output. */
export const poolingModes = ['mean', 'cls', 'max'] as const;
export type PoolingMode = (typeof poolingModes)[number];

export const taskKinds = ['classification', 'token_classification', 'embedding', 'generation'] as const;
export type TaskKindName = (typeof taskKinds)[number];

const head = z
  .object({
    name,
    task: z.enum(taskKinds),
    /** An embedding head may have no file: it serves the backbone's pooled output. */
    file: bundleFile.optional(),
    labels: z.array(z.string().min(1)).optional(),
    /**
     * What the head reads: the backbone's pooled output, its token states, or (`graph`) an output of the
     * backbone's own graph named by `output`: the head inside a Hugging Face task model (its `logits`).
     */
    reads: z.enum(['pooled', 'tokens', 'graph']),
    output: z.string().min(1).optional(),
    /** How a classification head turns logits into scores: softmax over the labels, or sigmoid per label (multi-label). */
    activation: z.enum(['softmax', 'sigmoid']).optional(),
    description: z.string().optional(),
    /** A translation head's languages (e.g. en -> de). */
    languages: z.object({ source: z.string().min(1).optional(), target: z.string().min(1).optional() }).optional(),
    /** Datasets (declared in `datasets`) this head was trained, validated or evaluated on. */
    datasets: z.array(z.object({ name: z.string().min(1), role: z.enum(['training', 'validation', 'evaluation']) })).default([]),
  })
  .superRefine((h, ctx) => {
    const needsLabels = h.task === 'classification' || h.task === 'token_classification';
    if (needsLabels && (!h.labels || h.labels.length < 2)) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: `a ${h.task} head needs at least two labels` });
    }
    if (h.labels && new Set(h.labels).size !== h.labels.length) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: 'labels must be unique' });
    }
    if (h.reads === 'graph') {
      if (!h.output) ctx.addIssue({ code: 'custom', path: ['output'], message: 'a head that reads the graph names the graph output it reads' });
      if (h.file) ctx.addIssue({ code: 'custom', path: ['file'], message: 'a head inside the backbone graph has no file of its own' });
    } else if (h.task !== 'embedding' && !h.file) ctx.addIssue({ code: 'custom', path: ['file'], message: `a ${h.task} head needs an ONNX file` });
  });

const dataset = z.object({
  name: z.string().min(1),
  source: z.string().min(1),
  license: z.string().min(1),
  size: z.number().int().nonnegative(),
  splits: z.record(z.string(), z.number().int().nonnegative()).default({}),
  description: z.string().optional(),
});

const evaluation = z.object({
  head: z.string().min(1),
  dataset: z.string().min(1),
  split: z.string().min(1),
  metric: z.string().min(1),
  value: z.number().finite(),
  samples: z.number().int().nonnegative(),
});

export const bundleManifestSchema = z
  .object({
    format: z.literal('polyhead-bundle/1'),
    name,
    version,
    description: z.string().optional(),
    license: z.string().min(1),
    /** The version of the same model this one derives from (e.g. a head was added). */
    parent: version.optional(),
    tokenizer: bundleFile,
    /** Which tokenizer reads `tokenizer`: USE-lite's reference lattice, or any Hugging Face tokenizer.json. */
    tokenizerKind: z.enum(['use-lite', 'huggingface']).default('use-lite'),
    /** Other files of the bundle that the registry records by hash (e.g. an imported model's config.json). */
    files: z.array(bundleFile).default([]),
    backbone: z.object({
      name,
      version,
      architecture: z.string().min(1),
      /** Hugging Face config.json's model_type and architectures, for an imported model. */
      modelType: z.string().min(1).optional(),
      architectures: z.array(z.string().min(1)).default([]),
      layers: z.number().int().positive().optional(),
      file: bundleFile,
      /** The same graph in other precisions: fp16 (chosen on CUDA), quantized int8 (POLYHEAD_PRECISION=q8). */
      variants: z.object({ fp16: bundleFile.optional(), quantized: bundleFile.optional() }).default({}),
      hiddenSize: z.number().int().positive(),
      vocabSize: z.number().int().positive(),
      maxTokens: z.number().int().positive().max(8192).default(256),
      /** How the sentence embedding is made: the graph's `pooled` output, or, without one, the engine pools the token states: mean (over the mask), cls or max. */
      pooling: z.string().min(1),
      inputs: z
        .object({ ids: z.string().min(1), mask: z.string().min(1), typeIds: z.string().min(1).optional() })
        .default({ ids: 'input_ids', mask: 'attention_mask' }),
      /** Graph outputs: token states [n, T, d] and a pooled embedding [n, d]; a task model may have neither (its head reads the graph). */
      outputs: z.object({ tokens: z.string().min(1).optional(), pooled: z.string().min(1).optional() }).default({ tokens: 'token_states', pooled: 'pooled' }),
      license: z.string().min(1),
      source,
      /** The backbone these weights were fine-tuned from (registered before this bundle). */
      parent: z.object({ name, version }).optional(),
      /** How a fine-tuned backbone was made: its datasets (declared in `datasets`), hyperparameters, per-task validation curves. */
      fineTuning: z
        .object({
          datasets: z.array(z.object({ name: z.string().min(1), role: z.enum(['training', 'validation']) })).default([]),
          hyperparameters: z.record(z.string(), z.unknown()).default({}),
          validationCurves: z
            .array(z.object({ task: z.string().min(1), epoch: z.number().int().nonnegative(), metric: z.string().min(1), value: z.number().finite(), loss: z.number().finite().optional() }))
            .default([]),
        })
        .optional(),
    }),
    heads: z.array(head).default([]),
    /**
     * A sequence-to-sequence model (Marian): the backbone is its encoder (`backbone.file`); the decoder graph
     * and what generation needs from config.json and generation_config.json are here.
     */
    seq2seq: z
      .object({
        family: z.enum(['marian']),
        /** decoder_model_merged.onnx, or decoder_model.onnx (with decoder_with_past_model.onnx beside it). */
        decoder: bundleFile,
        decoderWithPast: bundleFile.optional(),
        config: bundleFile,
        decoderLayers: z.number().int().positive(),
        heads: z.number().int().positive(),
        maxPositions: z.number().int().positive(),
        decoderStartTokenId: z.number().int().nonnegative(),
        eosTokenId: z.number().int().nonnegative(),
        padTokenId: z.number().int().nonnegative().optional(),
        badWordsIds: z.array(z.number().int().nonnegative()).default([]),
        maxLength: z.number().int().positive(),
        numBeams: z.number().int().positive().default(1),
      })
      .optional(),
    datasets: z.array(dataset).default([]),
    evaluations: z.array(evaluation).default([]),
  })
  .superRefine((m, ctx) => {
    const unique = (values: string[], path: string, what: string) => {
      const seen = new Set<string>();
      values.forEach((value, i) => {
        if (seen.has(value)) ctx.addIssue({ code: 'custom', path: [path, i, 'name'], message: `duplicate ${what} "${value}"` });
        seen.add(value);
      });
    };
    unique(m.heads.map((h) => h.name), 'heads', 'head');
    const { outputs, pooling } = m.backbone;
    if (!outputs.pooled && outputs.tokens && !poolingModes.includes(pooling as PoolingMode)) {
      ctx.addIssue({ code: 'custom', path: ['backbone', 'pooling'], message: `without a pooled output the engine pools the token states: one of ${poolingModes.join(', ')}` });
    }
    m.heads.forEach((h, i) => {
      if (h.reads === 'tokens' && !outputs.tokens) ctx.addIssue({ code: 'custom', path: ['heads', i, 'reads'], message: 'the backbone has no token states output' });
      if (h.reads === 'pooled' && !outputs.pooled && !outputs.tokens) ctx.addIssue({ code: 'custom', path: ['heads', i, 'reads'], message: 'the backbone has no pooled output and no token states to pool' });
    });
    unique(m.datasets.map((d) => d.name), 'datasets', 'dataset');
    const datasets = new Set(m.datasets.map((d) => d.name));
    const heads = new Set(m.heads.map((h) => h.name));
    m.heads.forEach((h, i) =>
      h.datasets.forEach((d, j) => {
        if (!datasets.has(d.name)) ctx.addIssue({ code: 'custom', path: ['heads', i, 'datasets', j, 'name'], message: `dataset "${d.name}" is not declared in datasets` });
      }),
    );
    m.backbone.fineTuning?.datasets.forEach((d, j) => {
      if (!datasets.has(d.name)) ctx.addIssue({ code: 'custom', path: ['backbone', 'fineTuning', 'datasets', j, 'name'], message: `dataset "${d.name}" is not declared in datasets` });
    });
    if (m.backbone.parent && m.backbone.parent.name === m.backbone.name && m.backbone.parent.version === m.backbone.version) {
      ctx.addIssue({ code: 'custom', path: ['backbone', 'parent'], message: 'a backbone cannot be its own parent' });
    }
    m.evaluations.forEach((e, i) => {
      if (!heads.has(e.head)) ctx.addIssue({ code: 'custom', path: ['evaluations', i, 'head'], message: `head "${e.head}" is not declared in heads` });
      if (!datasets.has(e.dataset)) ctx.addIssue({ code: 'custom', path: ['evaluations', i, 'dataset'], message: `dataset "${e.dataset}" is not declared in datasets` });
    });
  });

export type BundleManifest = z.infer<typeof bundleManifestSchema>;
export type HeadManifest = BundleManifest['heads'][number];

export class BundleValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid bundle.json: ${problems.join('; ')}`);
  }
}

/** Parses bundle.json text; throws BundleValidationError listing every bad field as `path.to.field: problem`. */
export function parseBundleManifest(text: string): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BundleValidationError([`not valid JSON (${(error as Error).message})`]);
  }
  const result = bundleManifestSchema.safeParse(json);
  if (!result.success) {
    throw new BundleValidationError(result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  return result.data;
}

/** Every file the manifest names, relative to the bundle folder. */
export function manifestFiles(manifest: BundleManifest): string[] {
  const { variants } = manifest.backbone;
  const files = [
    manifest.backbone.file,
    ...(variants.fp16 ? [variants.fp16] : []),
    ...(variants.quantized ? [variants.quantized] : []),
    manifest.tokenizer,
    ...manifest.files,
    ...(manifest.seq2seq ? [manifest.seq2seq.decoder, ...(manifest.seq2seq.decoderWithPast ? [manifest.seq2seq.decoderWithPast] : [])] : []),
    ...manifest.heads.flatMap((h) => (h.file ? [h.file] : [])),
  ];
  return [...new Set(files)];
}
