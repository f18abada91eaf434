/**
 * What the generation core needs from a sequence-to-sequence model (e.g. Marian): an encoder pass and one
 * decoder step over rows that each sit at their own length. The ONNX graphs implement it elsewhere; the core
 * never imports onnxruntime, and tests use a deterministic fake.
 */

/** The backend's handle on one encoded source (its cross-attention keys/values). Opaque to the core. */
export type EncodedSource = unknown;

/** One row of a decoding step: one hypothesis of one request. */
export interface StepRow {
  /** Self-attention cache slot, an integer in [0, maxActiveRows) of the generator that calls. */
  slot: number;
  /** The token this row feeds: the decoder start token at position 0, else the row's last generated token. */
  token: number;
  /**
   * Where `token` sits, which is also how many tokens the slot's cache holds before this step. Position 0
   * starts a fresh cache in the slot. Rows of one step have different positions: there is no padding.
   */
  position: number;
  /** The request's encoded source; the beams of one request share it. */
  encoded: EncodedSource;
}

export interface Seq2SeqBackend {
  /**
   * Encodes source sequences (token ids, already tokenized and truncated): one handle per source, in order.
   * The generator calls it once per admission round with every request it admits.
   */
  encode(sources: Int32Array[]): Promise<EncodedSource[]>;
  /**
   * One decoding step: row r feeds rows[r].token at rows[r].position with slot rows[r].slot's cache and its
   * encoded source, and the backend appends the new keys/values to that cache. Resolves with raw logits,
   * row-major [rows.length, vocabSize] (log-softmax is the core's job; the core may edit the buffer).
   */
  step(rows: StepRow[]): Promise<Float32Array>;
  /** Empties a slot's cache (the row finished, was cancelled or lost its beam). Idempotent. */
  release(slot: number): void;
  /** Makes slot `to` hold a copy of slot `from`'s cache (a beam continues another beam's history). */
  fork(from: number, to: number): void;
  /** Frees an encoded source once its request is done; optional where handles are garbage-collected. */
  releaseEncoded?(encoded: EncodedSource): void;
  readonly vocabSize: number;
  /** Longest decoder sequence the model takes (its position table), decoder start token included. */
  readonly maxPositions: number;
}
