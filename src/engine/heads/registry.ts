// Head kinds by task: adding a kind is one entry here.
import type { SessionOptions } from '../onnx-runtime.js';
import { loadClassificationHead } from './classification.js';
import { loadEmbeddingHead } from './embedding.js';
import type { HeadSpec, HeadTask, LoadedHead } from './head.js';
import { loadTokenClassificationHead } from './token-classification.js';

export const headKinds: Record<HeadTask, (spec: HeadSpec, options: SessionOptions) => Promise<LoadedHead>> = {
  classification: loadClassificationHead,
  token_classification: loadTokenClassificationHead,
  embedding: loadEmbeddingHead,
};

export function isServableTask(task: string): task is HeadTask {
  return task in headKinds;
}
