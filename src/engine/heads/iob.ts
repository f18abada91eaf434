// Character-span entities <-> per-token IOB2 tags.
//
// Rules (chosen so that sub-word tokenizers such as SentencePiece work without special cases):
// - A token "overlaps" an entity when their character ranges intersect (tokenStart < entityEnd and
//   tokenEnd > entityStart). An overlapping token takes the entity's label; the first overlapping
//   token gets B-<label>, the others I-<label>. So a token that only partly covers an entity (e.g.
//   "▁Maria's" for the entity "Maria", or a leading-space piece) is still tagged.
// - Zero-width tokens (special tokens such as [CLS] with offsets [0, 0]) are always "O".
// - If a token overlaps two entities (only possible when one token spans an entity boundary), the
//   entity that starts first wins; the later entity keeps its B- on its own first token, if it has one.
// - Decoding (tags -> spans) is lenient like conlleval: an I-X after O or after another type starts a
//   new X entity. A span runs from its first token's start to its last token's end; when the text is
//   given, whitespace at the span's edges is trimmed (leading-space pieces carry the space).

export interface CharSpan {
  start: number;
  /** Exclusive. */
  end: number;
  label: string;
}

/** [start, end) character offsets of one token in the text. */
export type TokenOffset = readonly [number, number];

export const OUTSIDE = 'O';

/** The IOB2 tag set for entity types, "O" first: ['O', 'B-PER', 'I-PER', ...]. */
export function iobTagSet(entityLabels: readonly string[]): string[] {
  return [OUTSIDE, ...entityLabels.flatMap((label) => [`B-${label}`, `I-${label}`])];
}

/** Tags each token with IOB2 given char-span entities (see the rules above). */
export function spansToIob(entities: readonly CharSpan[], tokenOffsets: readonly TokenOffset[]): string[] {
  const tags: string[] = tokenOffsets.map(() => OUTSIDE);
  const byStart = [...entities].sort((a, b) => a.start - b.start || a.end - b.end);
  for (const entity of byStart) {
    if (entity.end <= entity.start) continue;
    let first = true;
    for (let i = 0; i < tokenOffsets.length; i++) {
      const [tokenStart, tokenEnd] = tokenOffsets[i]!;
      if (tokenEnd <= tokenStart) continue;
      if (tokenStart < entity.end && tokenEnd > entity.start) {
        if (tags[i] === OUTSIDE) tags[i] = `${first ? 'B' : 'I'}-${entity.label}`;
        first = false;
      }
    }
  }
  return tags;
}

function parseTag(tag: string): { prefix: 'B' | 'I' | 'O'; label: string } {
  if (tag === OUTSIDE || tag === '') return { prefix: 'O', label: '' };
  const match = /^([BI])-(.+)$/.exec(tag);
  if (!match) throw new Error(`not an IOB2 tag: ${JSON.stringify(tag)}`);
  return { prefix: match[1] as 'B' | 'I', label: match[2]! };
}

/** Turns per-token IOB2 tags back into char spans (see the decoding rule above). */
export function iobToSpans(tags: readonly string[], tokenOffsets: readonly TokenOffset[], text?: string): CharSpan[] {
  if (tags.length !== tokenOffsets.length) {
    throw new Error(`iobToSpans: ${tags.length} tags for ${tokenOffsets.length} tokens`);
  }
  const spans: CharSpan[] = [];
  let current: CharSpan | undefined;
  const close = () => {
    if (current) spans.push(text === undefined ? current : trimSpan(current, text));
    current = undefined;
  };
  for (let i = 0; i < tags.length; i++) {
    const { prefix, label } = parseTag(tags[i]!);
    const [tokenStart, tokenEnd] = tokenOffsets[i]!;
    if (prefix === 'O') {
      close();
    } else if (prefix === 'I' && current && current.label === label) {
      current.end = Math.max(current.end, tokenEnd);
    } else {
      close();
      current = { start: tokenStart, end: tokenEnd, label };
    }
  }
  close();
  return spans.filter((span) => span.end > span.start);
}

function trimSpan(span: CharSpan, text: string): CharSpan {
  let { start, end } = span;
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return { start, end, label: span.label };
}
