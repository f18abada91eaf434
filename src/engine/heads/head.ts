// The one small interface every head kind implements: decode the backbone's output for some rows.
import type { BackboneOutput } from '../backbone.js';
import type { TextEncoding } from '../tokenizer.js';

export type HeadTask = 'classification' | 'token_classification' | 'embedding';

export interface HeadSpec {
  name: string;
  task: HeadTask;
  reads: 'pooled' | 'tokens';
  /** Absolute path of the ONNX file; absent for an embedding head that serves the pooled output. */
  file?: string;
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

export interface LoadedHead {
  readonly spec: HeadSpec;
  run(features: BackboneOutput, rows: readonly HeadRow[]): Promise<HeadOutput[]>;
  release(): Promise<void>;
}
