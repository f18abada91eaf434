// Sequence-to-sequence families by the name a bundle gives (bundle.json `seq2seq.family`): each turns a bundle
// folder into the backend the generator drives. Adding a family is its folder plus one entry here.
import type { BundleManifest } from '../../bundle/manifest.js';
import type { Seq2SeqBackend } from '../generation/backend.js';
import type { SessionOptions } from '../onnx-runtime.js';
import { MarianBackend } from '../seq2seq/marian-backend.js';

export interface GenerationLimits {
  /** Rows (cache slots) decoded together at each step. */
  maxActiveRows: number;
  /** Cache tokens the running batch may reserve (bounds the memory of the caches). */
  tokenBudget: number;
  /** Requests waiting to join before OVERLOADED. */
  maxQueue: number;
  /** false: static batches (new requests wait until the running batch has finished). */
  continuous: boolean;
}

export interface Seq2SeqLoadContext {
  dir: string;
  manifest: BundleManifest;
  session: SessionOptions;
}

export type LoadedSeq2SeqBackend = Seq2SeqBackend & { readonly provider?: string; close(): Promise<void> };

export const seq2seqFamilies: Record<NonNullable<BundleManifest['seq2seq']>['family'], (context: Seq2SeqLoadContext) => Promise<LoadedSeq2SeqBackend>> = {
  // Polyhead's own decoder step graph, built from the weights of the folder's decoder (seq2seq/marian-backend.ts).
  marian: async ({ dir, manifest, session }) => {
    // One copy on every core: the generator runs one decoding step at a time (each depends on the last), so a
    // second single-threaded copy would sit idle while the first did all the work (measured: 266 vs 338 tokens/s
    // at 64 clients on 2 cores, bench/translate.ts).
    const single = { ...session, replicas: 1 };
    const backend = await MarianBackend.load(dir, { session: single, encoderFile: manifest.backbone.file, decoderFile: manifest.seq2seq!.decoder });
    return Object.assign(backend, { provider: session.executionProvider });
  },
};
