// The one small interface every head kind implements: decode the backbone's output for some rows.
import type { BackboneOutput } from '../backbone.js';
import type { TextEncoding } from '../tokenizer.js';
import type { OnnxHeadSession } from './onnx-head.js';

export type HeadTask = 'classification' | 'token_classification' | 'embedding';

export interface HeadSpec {
  name: string;
  task: HeadTask;
  /** `graph`: the head is inside the backbone's graph (a Hugging Face task model) and decodes its output `output`. */
  reads: 'pooled' | 'tokens' | 'graph';
  /** Absolute path of the ONNX file; absent for an embedding head that serves the pooled output, and for a head inside the graph. */
  file?: string;
  /** The backbone graph output a `graph` head decodes (e.g. logits). */
  output?: string;
  /** Classification scores: softmax over the labels (default), or sigmoid per label (multi-label). */
  activation?: 'softmax' | 'sigmoid';
  /** Output labels in order (IOB2 tags for token classification). */
  labels: string[];
}

export interface LabelScore {
  label: string;
  score: number;
}

export interface Classification {
  label: string;
  score: number;
  scores: LabelScore[];
}

export interface Entity {
  text: string;
  label: string;
  /** JavaScript string offsets into the input, end exclusive. */
  start: number;
  end: number;
  score: number;
}

export type HeadOutput = Classification | Entity[] | Float32Array;

/** A row of the batch as the head sees it: its index in the backbone output, its text and tokens. */
export interface HeadRow {
  index: number;
  text: string;
  encoding: TextEncoding;
}

/** What a head's ONNX model returned for its rows: [rows, labels] or [rows, tokens, labels]. */
export interface HeadModelOutput {
  data: Float32Array;
  dims: readonly number[];
  /** How long the model ran, when it ran chained after the backbone. */
  ms?: number;
}

export interface LoadedHead {
  readonly spec: HeadSpec;
  /**
   * The head's ONNX model, which the backbone's worker thread runs right after the backbone on the rows that
   * asked (see Backbone.run); absent for a head that only reads the backbone output (a plain embedding).
   */
  readonly model?: OnnxHeadSession;
  /** Turns the model's output for `rows` (or, without a model, the backbone output) into results. */
  decode(output: HeadModelOutput | undefined, features: BackboneOutput, rows: readonly HeadRow[]): HeadOutput[];
  release(): Promise<void>;
}

/** Runs a head on its own, outside a backbone batch (the backbone output must hold what it reads). */
export async function runHead(head: LoadedHead, features: BackboneOutput, rows: readonly HeadRow[]): Promise<HeadOutput[]> {
  return head.decode(head.model ? await head.model.run(features, rows) : undefined, features, rows);
}
