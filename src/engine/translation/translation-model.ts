// One loaded translation model: its tokenizer, its sequence-to-sequence backend (Marian's graphs) and the
// continuous-batching generator every request of every client shares. Knows nothing of GraphQL.
import { EngineError } from '../errors.js';
import type { LoadedSeq2SeqBackend } from './families.js';
import { Seq2SeqGenerator, type GeneratorOptions, type SequenceStats, type StepStats } from '../generation/generator.js';
import type { HuggingFaceTokenizer } from '../tokenizers/huggingface.js';

export interface TranslationRequest {
  /** 1 = greedy search. */
  beams: number;
  maxNewTokens: number;
  /** No end-of-sequence before this many tokens. Default 0. */
  minNewTokens?: number;
  lengthPenalty?: number;
  earlyStopping?: boolean;
  signal?: AbortSignal;
  /** Absolute time on the generator's clock. */
  deadline?: number;
}

export interface Translation {
  text: string;
  /** Source tokens read (after truncation, special tokens included). */
  sourceTokenCount: number;
  /** The source was longer than the model reads and was cut. */
  truncated: boolean;
  /** Tokens generated (end-of-sequence not counted). */
  tokenCount: number;
  /** The generated token ids (no start token, no end-of-sequence). */
  ids: Int32Array;
  finishReason: 'eos' | 'length';
}

export interface TranslationObserver {
  onGenerationStep?(model: string, stats: StepStats): void;
  onSequence?(model: string, stats: SequenceStats): void;
}

export interface TranslationSpec {
  /** The model's own generation limit (generation_config.json's max_length). */
  maxLength: number;
}

export class TranslationModel {
  readonly generator: Seq2SeqGenerator;

  constructor(
    readonly name: string,
    readonly version: string,
    readonly tokenizer: HuggingFaceTokenizer,
    readonly backend: LoadedSeq2SeqBackend,
    readonly spec: TranslationSpec,
    generatorOptions: Partial<GeneratorOptions> & Pick<GeneratorOptions, 'decoderStartTokenId' | 'eosTokenId'>,
    observer: TranslationObserver = {},
  ) {
    this.generator = new Seq2SeqGenerator(backend, {
      ...generatorOptions,
      onStep: (stats) => observer.onGenerationStep?.(name, stats),
      onSequence: (stats) => observer.onSequence?.(name, stats),
    });
  }

  now(): number {
    return this.generator.now();
  }

  /** Translates each text; one result or Error per text, in order (a failure stays with its text). */
  async translate(texts: readonly string[], request: TranslationRequest): Promise<Array<Translation | Error>> {
    const encodings = await this.tokenizer.encodeBatch(texts);
    const maxNewTokens = Math.min(request.maxNewTokens, this.spec.maxLength);
    const settled = await Promise.all(
      encodings.map(async (encoding) => {
        try {
          const result = await this.generator.submit({
            source: encoding.ids,
            maxNewTokens,
            minNewTokens: request.minNewTokens === undefined ? undefined : Math.min(request.minNewTokens, maxNewTokens - 1),
            beams: request.beams,
            lengthPenalty: request.lengthPenalty,
            earlyStopping: request.earlyStopping,
            signal: request.signal,
            deadline: request.deadline,
          });
          return { encoding, result };
        } catch (error) {
          // Caller misuse the checks above should have caught (beams past the slots, a budget overrun).
          if (error instanceof RangeError || error instanceof TypeError) return new EngineError('INFERENCE_FAILED', error.message, { cause: error });
          return error as Error;
        }
      }),
    );
    const done = settled.filter((s): s is Exclude<typeof s, Error> => !(s instanceof Error));
    const decoded = await this.tokenizer.decodeBatch(done.map((s) => s.result.ids));
    let next = 0; // `done` keeps the order of `settled`
    return settled.map((s) =>
      s instanceof Error
        ? s
        : { text: decoded[next++]!, sourceTokenCount: s.encoding.ids.length, truncated: s.encoding.truncated, tokenCount: s.result.ids.length, ids: s.result.ids, finishReason: s.result.finishReason },
    );
  }

  /** Lets running and waiting requests finish, then frees the sessions. */
  async close(): Promise<void> {
    await this.generator.close();
    await this.backend.close();
  }
}
