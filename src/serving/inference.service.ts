// Between GraphQL and the engine: input limits, the default model, and a per-request DataLoader that
// gathers every text asked in one request (across fields and aliases) before they reach the engine's queue.
import DataLoader from 'dataloader';
import { PolyheadError, badInput, toPolyheadError } from '../errors.js';
import type { Engine, InferTrace } from '../engine/engine.js';
import type { TextResult } from '../engine/serving-model.js';
import type { Translation } from '../engine/translation/translation-model.js';

export interface InputLimits {
  /** POLYHEAD_MAX_TEXTS: texts per field. Default 256. */
  maxTexts: number;
  /** POLYHEAD_MAX_TEXT_CHARS: characters per text. Default 100000. */
  maxTextChars: number;
  /** POLYHEAD_MAX_NEW_TOKENS: the largest maxNewTokens, and its default. Default 256. */
  maxNewTokens?: number;
  /** POLYHEAD_MAX_BEAMS. Default 8. */
  maxBeams?: number;
}

/** One translation asked in a request: the texts of all fields with the same model and settings go to the engine together. */
export interface TranslationKey {
  model: string;
  text: string;
  beams: number;
  maxNewTokens: number;
  minNewTokens: number;
}

export interface InferenceKey {
  model: string;
  text: string;
  heads: readonly string[];
}

/** Time spent waiting for the engine during one request (reported in extensions.timing when asked). */
export interface RequestTiming {
  inferenceMs: number;
}

export class InferenceService {
  constructor(
    readonly engine: Engine,
    readonly limits: InputLimits,
    readonly defaultModel: string,
  ) {}

  /** Throws BAD_USER_INPUT naming the argument and, for one text, its index. */
  checkTexts(texts: readonly string[], argument = 'texts'): void {
    if (texts.length === 0) throw badInput(`${argument}: give at least one text`);
    if (texts.length > this.limits.maxTexts) throw badInput(`${argument}: at most ${this.limits.maxTexts} texts per request, got ${texts.length}`, { limit: this.limits.maxTexts });
    texts.forEach((text, i) => {
      if (text.trim().length === 0) throw badInput(`${argument}[${i}]: empty text`);
      if (text.length > this.limits.maxTextChars) {
        throw badInput(`${argument}[${i}]: ${text.length} characters, at most ${this.limits.maxTextChars}`, { limit: this.limits.maxTextChars });
      }
    });
  }

  /** Checks the model and heads exist before any text is queued (typed MODEL_NOT_FOUND / HEAD_NOT_FOUND). */
  checkModel(model: string, heads: readonly string[]): void {
    try {
      this.engine.validate(model, heads);
    } catch (error) {
      throw toPolyheadError(error) ?? error;
    }
  }

  /** BAD_USER_INPUT for beams or maxNewTokens out of range; the settings with their defaults filled in. */
  translationSettings(beams: number | null | undefined, maxNewTokens: number | null | undefined, minNewTokens?: number | null): { beams: number; maxNewTokens: number; minNewTokens: number } {
    const maxBeams = this.limits.maxBeams ?? 8;
    const cap = this.limits.maxNewTokens ?? 256;
    const b = beams ?? 1;
    const n = maxNewTokens ?? cap;
    if (!Number.isInteger(b) || b < 1 || b > maxBeams) throw badInput(`beams: between 1 and ${maxBeams} (POLYHEAD_MAX_BEAMS), got ${b}`, { limit: maxBeams });
    if (!Number.isInteger(n) || n < 1 || n > cap) throw badInput(`maxNewTokens: between 1 and ${cap} (POLYHEAD_MAX_NEW_TOKENS), got ${n}`, { limit: cap });
    const m = minNewTokens ?? 0;
    if (!Number.isInteger(m) || m < 0 || m > n) throw badInput(`minNewTokens: between 0 and maxNewTokens (${n}), got ${m}`);
    return { beams: b, maxNewTokens: n, minNewTokens: m };
  }

  /** MODEL_NOT_FOUND / HEAD_NOT_FOUND before any text is queued when the model cannot translate. */
  checkTranslator(model: string): void {
    try {
      this.engine.translator(model);
    } catch (error) {
      throw toPolyheadError(error) ?? error;
    }
  }

  /** A per-request loader: every translation asked in one request (fields, aliases, analyze) in one engine call per model and settings. */
  createTranslationLoader(signal: AbortSignal | undefined, timing: RequestTiming): DataLoader<TranslationKey, Translation, string> {
    return new DataLoader<TranslationKey, Translation, string>(
      async (keys) => {
        const started = performance.now();
        const groups = new Map<string, { key: TranslationKey; texts: string[] }>();
        for (const key of keys) {
          const id = settingsId(key);
          const group = groups.get(id) ?? { key, texts: [] };
          if (!group.texts.includes(key.text)) group.texts.push(key.text);
          groups.set(id, group);
        }
        const results = new Map<string, Translation | Error>();
        await Promise.all(
          [...groups.entries()].map(async ([id, { key, texts }]) => {
            let outcome: Array<Translation | Error>;
            try {
              outcome = await this.engine.translate(key.model, texts, { beams: key.beams, maxNewTokens: key.maxNewTokens, minNewTokens: key.minNewTokens, signal });
            } catch (error) {
              outcome = texts.map(() => error as Error);
            }
            texts.forEach((text, i) => results.set(`${id}\u0000${text}`, outcome[i]!));
          }),
        );
        timing.inferenceMs += performance.now() - started;
        return keys.map((key) => {
          const result = results.get(`${settingsId(key)}\u0000${key.text}`)!;
          return result instanceof Error ? (toPolyheadError(result) ?? result) : result;
        });
      },
      { cacheKeyFn: (key) => `${settingsId(key)}\u0000${key.text}`, maxBatchSize: 4096 },
    );
  }

  /** HEAD_NOT_FOUND before any text is queued when the model gives no sentence embedding (a task model). */
  checkEmbedding(model: string): void {
    this.checkModel(model, []);
    if (!this.engine.get(model).backbone.hasEmbedding) {
      throw new PolyheadError('HEAD_NOT_FOUND', `model "${model}" gives no sentence embedding: its graph outputs task logits only (ask its heads with analyze { classify(head:) } or entities)`);
    }
  }

  /** A per-request loader: every text asked in one request, across fields and aliases, in one engine call per model and head set. */
  createLoader(signal: AbortSignal | undefined, timing: RequestTiming, trace?: InferTrace): DataLoader<InferenceKey, TextResult, string> {
    return new DataLoader<InferenceKey, TextResult, string>(
      async (keys) => {
        const started = performance.now();
        // Per distinct text, the union of the heads every field wants for it.
        const wanted = new Map<string, { model: string; text: string; heads: Set<string> }>();
        for (const key of keys) {
          const id = `${key.model}\u0000${key.text}`;
          const entry = wanted.get(id) ?? { model: key.model, text: key.text, heads: new Set<string>() };
          key.heads.forEach((head) => entry.heads.add(head));
          wanted.set(id, entry);
        }
        // One engine call per (model, head set) with all its texts: the engine's per-call work (checks,
        // deadline) is paid once per group, not once per text.
        const groups = new Map<string, { model: string; heads: string[]; ids: string[]; texts: string[] }>();
        for (const [id, entry] of wanted) {
          const heads = [...entry.heads].sort();
          const groupKey = `${entry.model}\u0000${heads.join(',')}`;
          const group = groups.get(groupKey) ?? { model: entry.model, heads, ids: [], texts: [] };
          group.ids.push(id);
          group.texts.push(entry.text);
          groups.set(groupKey, group);
        }
        const results = new Map<string, TextResult | Error>();
        await Promise.all(
          [...groups.values()].map(async (group) => {
            let outcome: Array<TextResult | Error>;
            try {
              outcome = await this.engine.infer(group.model, group.texts, { heads: group.heads, signal, trace });
            } catch (error) {
              outcome = group.texts.map(() => error as Error);
            }
            group.ids.forEach((id, i) => results.set(id, outcome[i]!));
          }),
        );
        timing.inferenceMs += performance.now() - started;
        return keys.map((key) => {
          const result = results.get(`${key.model}\u0000${key.text}`)!;
          return result instanceof Error ? (toPolyheadError(result) ?? result) : result;
        });
      },
      { cacheKeyFn: (key) => `${key.model}\u0000${[...key.heads].sort().join(',')}\u0000${key.text}`, maxBatchSize: 4096 },
    );
  }
}

/** Translations with the same model and settings go to the engine together. */
function settingsId(key: TranslationKey): string {
  return `${key.model}\u0000${key.beams}\u0000${key.maxNewTokens}\u0000${key.minNewTokens}`;
}
