import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { HuggingFaceTokenizer } from '../../src/engine/tokenizers/huggingface.js';
import type { TextEncoding } from '../../src/engine/tokenizers/tokenizer.js';

// ---------------------------------------------------------------------------------------------------------
// Small tokenizer.json files, built here in the format the library writes.

type Json = Record<string, unknown>;

const addedTokens = (names: string[]) =>
  names.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));

const template = (first: string, last: string, ids: Record<string, number>, typeId = 0) => ({
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: first, type_id: typeId } }, { Sequence: { id: 'A', type_id: typeId } }, { SpecialToken: { id: last, type_id: typeId } }],
  pair: [
    { SpecialToken: { id: first, type_id: 0 } },
    { Sequence: { id: 'A', type_id: 0 } },
    { SpecialToken: { id: last, type_id: 0 } },
    { Sequence: { id: 'B', type_id: 1 } },
    { SpecialToken: { id: last, type_id: 1 } },
  ],
  special_tokens: Object.fromEntries(Object.entries(ids).map(([token, id]) => [token, { id: token, ids: [id], tokens: [token] }])),
});

const WORDPIECE_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const WORDPIECE_WORDS = ['hello', 'world', 'cafe', 'naive', 'un', '##aff', '##able', 'a', ',', '!', '中', '文', '😀', 'x'];
const wordpieceVocab = Object.fromEntries([...WORDPIECE_SPECIALS, ...WORDPIECE_WORDS].map((token, id) => [token, id]));
const [CLS, SEP, UNK] = [2, 3, 1];

/** BERT uncased: BertNormalizer (lowercase, strip accents), BertPreTokenizer, [CLS] $A [SEP]. */
function wordpiece(extra: Json = {}): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(WORDPIECE_SPECIALS),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: template('[CLS]', '[SEP]', { '[CLS]': CLS, '[SEP]': SEP }),
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: wordpieceVocab },
    ...extra,
  };
}

/** GPT-2's byte-to-character table: byte-level pieces are written in these characters. */
const BYTE_CHARS: string[] = (() => {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : 256 + shifted++);
  return chars;
})();
const byteLevelOf = (text: string) => [...Buffer.from(text, 'utf8')].map((b) => BYTE_CHARS[b]).join('');
const textOfByteLevel = (piece: string) => Buffer.from([...piece].map((c) => BYTE_CHARS.indexOf(c))).toString('utf8');

const BYTE_LEVEL_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'];
/** Every byte, then merges that make whole pieces of these words with and without a leading space. */
const byteLevelModel = (() => {
  const vocab: Record<string, number> = Object.fromEntries(BYTE_LEVEL_SPECIALS.map((token, id) => [token, id]));
  let next = BYTE_LEVEL_SPECIALS.length;
  for (const c of BYTE_CHARS) vocab[c] = next++;
  const merges: string[] = [];
  // Spaced words first: 'h e' before 'Ġ h' would leave 'Ġ' apart.
  for (const word of [' hello', 'hello', ' world', 'world', ' café', 'café', ' naïve']) {
    const chars = [...byteLevelOf(word)];
    let piece = chars[0]!;
    for (const c of chars.slice(1)) {
      merges.push(`${piece} ${c}`);
      piece += c;
      vocab[piece] ??= next++;
    }
  }
  return { vocab, merges };
})();

/** RoBERTa: ByteLevel pre-tokenizer, BPE, <s> $A </s> by RobertaProcessing. */
function byteLevel(addPrefixSpace: boolean, trimOffsets = true, extra: Json = {}): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(BYTE_LEVEL_SPECIALS),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: trimOffsets, add_prefix_space: addPrefixSpace },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, ...byteLevelModel },
    ...extra,
  };
}

const UNIGRAM_PIECES: Array<[string, number]> = [
  ['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0],
  ['▁', -2], ['▁hello', -3], ['▁world', -3], ['▁caf', -4], ['é', -4], ['▁na', -4], ['ï', -4], ['ve', -4],
  ['😀', -5], ['中', -5], ['文', -5], ['▁a', -6],
  ...[...'abcdefghijklmnopqrstuvwxyz'].map((c): [string, number] => [c, -8]),
];

/** XLM-R style: NFKC, Metaspace (prepend always), Unigram, <s> $A </s>. */
function unigram(extra: Json = {}): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(['<s>', '<pad>', '</s>', '<unk>']),
    normalizer: { type: 'NFKC' },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: template('<s>', '</s>', { '<s>': 0, '</s>': 2 }),
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 3, vocab: UNIGRAM_PIECES, byte_fallback: false },
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const load = (json: Json, maxTokens = 64) => HuggingFaceTokenizer.fromJson(JSON.stringify(json), { maxTokens });

async function encodeOne(tokenizer: HuggingFaceTokenizer, text: string): Promise<TextEncoding> {
  const [encoding] = await tokenizer.encodeBatch([text]);
  return encoding!;
}

/** What every encoding of `text` must satisfy, whatever the tokenizer. */
function assertWellFormed(text: string, encoding: TextEncoding, maxTokens: number): void {
  const { ids, offsets, special, typeIds } = encoding;
  assert.ok(ids instanceof Int32Array);
  assert.ok(ids.length <= maxTokens, 'at most maxTokens');
  assert.equal(offsets.length, ids.length);
  if (special) assert.equal(special.length, ids.length);
  if (typeIds) assert.equal(typeIds.length, ids.length);
  assert.equal(encoding.truncated, encoding.tokenCount > maxTokens);
  assert.equal(ids.length, Math.min(encoding.tokenCount, maxTokens));
  let last: [number, number] = [0, 0];
  offsets.forEach(([start, end], i) => {
    assert.ok(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= text.length, `span ${i} in range`);
    if (special?.[i] === 1) return assert.deepEqual([start, end], [0, 0], 'special tokens at [0, 0]');
    assert.ok(start >= last[0] && end >= last[1], `span ${i} not before span ${i - 1}`);
    last = [start, end];
  });
}

/** How BertNormalizer (lowercase, strip accents) writes a text. */
const bertNormalized = (text: string) => text.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();

/** The text napi hands the library: each lone surrogate is U+FFFD. */
const wellFormed = (text: string) => text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

const idsOf = (encoding: TextEncoding) => [...encoding.ids];
const slices = (text: string, encoding: TextEncoding) => encoding.offsets.map(([start, end]) => text.slice(start, end));

const TRICKY_TEXTS = [
  '',
  ' ',
  '   \t\n ',
  'hello',
  'Hello, world!',
  '  hello   world  ',
  'Café naïve',
  'cafe\u0301 nai\u0308ve',
  '😀 hello 😀😀 world',
  '中文 hello 中',
  'a\uD800b hello',
  'hello \uDC00\uD800 😀 world',
  '\uD83D',
  'x\uD83D',
  'ﬁne hello',
  'hello\u00a0world\u3000a',
];

// ---------------------------------------------------------------------------------------------------------

describe('HuggingFaceTokenizer: WordPiece (BERT uncased)', () => {
  it('gives the ids by construction, with [CLS] ... [SEP], type ids and the special mask', async () => {
    const tokenizer = await load(wordpiece());
    const text = 'Hello, world! Unaffable café 😀 中文';
    const encoding = await encodeOne(tokenizer, text);
    const v = wordpieceVocab;
    assert.deepEqual(idsOf(encoding), [CLS, v.hello, v[','], v.world, v['!'], v.un, v['##aff'], v['##able'], v.cafe, v['😀'], v['中'], v['文'], SEP]);
    assert.deepEqual([...encoding.special!], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual([...encoding.typeIds!], new Array(13).fill(0));
    assert.equal(encoding.tokenCount, 13);
    assert.equal(encoding.truncated, false);
    assert.deepEqual(slices(text, encoding), ['', 'Hello', ',', 'world', '!', 'Un', 'aff', 'able', 'café', '😀', '中', '文', '']);
  });

  it("spans are the tokens' text (case and accents aside, '##' left off) for accents, emoji, CJK and lone surrogates", async () => {
    const tokenizer = await load(wordpiece());
    const tokenOf = Object.fromEntries(Object.entries(wordpieceVocab).map(([token, id]) => [id, token]));
    const encodings = await tokenizer.encodeBatch(TRICKY_TEXTS);
    TRICKY_TEXTS.forEach((text, t) => {
      const encoding = encodings[t]!;
      assertWellFormed(text, encoding, 64);
      encoding.ids.forEach((id, i) => {
        if (encoding.special![i] === 1 || id === UNK) return;
        const [start, end] = encoding.offsets[i]!;
        assert.equal(bertNormalized(text.slice(start, end)), tokenOf[id]!.replace(/^##/, ''), `${JSON.stringify(text)} token ${i}`);
      });
    });
    // The lone surrogate is U+FFFD to the library; its word is one unknown token, the whole word in the JS text.
    const lone = encodings[TRICKY_TEXTS.indexOf('a\uD800b hello')]!;
    assert.deepEqual(idsOf(lone), [CLS, UNK, wordpieceVocab.hello, SEP]);
    assert.deepEqual(slices('a\uD800b hello', lone), ['', 'a\uD800b', 'hello', '']);
    const emoji = encodings[TRICKY_TEXTS.indexOf('😀 hello 😀😀 world')]!;
    assert.deepEqual(emoji.offsets.slice(1, -1), [[0, 2], [3, 8], [9, 13], [14, 19]]);
  });

  it('empty and whitespace-only texts are just [CLS] [SEP]', async () => {
    const tokenizer = await load(wordpiece());
    for (const encoding of await tokenizer.encodeBatch(['', '   ', '\n\t'])) {
      assert.deepEqual(idsOf(encoding), [CLS, SEP]);
      assert.deepEqual(encoding.offsets, [[0, 0], [0, 0]]);
      assert.deepEqual([...encoding.special!], [1, 1]);
      assert.equal(encoding.tokenCount, 2);
    }
    assert.deepEqual(await tokenizer.encodeBatch([]), []);
  });

  it('exposes the vocabulary size, the pad id and token ids', async () => {
    const tokenizer = await load(wordpiece());
    assert.equal(tokenizer.vocabSize, Object.keys(wordpieceVocab).length);
    assert.equal(tokenizer.padId, 0);
    assert.equal(tokenizer.tokenId('[SEP]'), SEP);
    assert.equal(tokenizer.tokenId('no such token'), undefined);
  });
});

describe('HuggingFaceTokenizer: byte-level BPE (RoBERTa)', () => {
  for (const addPrefixSpace of [false, true]) {
    for (const trimOffsets of [true, false]) {
      it(`add_prefix_space ${addPrefixSpace}, trim_offsets ${trimOffsets}: ids, <s> ... </s>, spans without the leading space`, async () => {
        const tokenizer = await load(byteLevel(addPrefixSpace, trimOffsets));
        const { vocab } = byteLevelModel;
        const text = 'hello world café  naïve';
        const encoding = await encodeOne(tokenizer, text);
        const first = addPrefixSpace ? 'Ġhello' : 'hello';
        // Two spaces before naïve: the first is a piece of its own ('Ġ', whitespace only: an empty span).
        assert.deepEqual(idsOf(encoding), [0, vocab[first]!, vocab['Ġworld']!, vocab[byteLevelOf(' café')]!, vocab['Ġ']!, vocab[byteLevelOf(' naïve')]!, 2]);
        assert.deepEqual(slices(text, encoding), ['', 'hello', 'world', 'café', '', 'naïve', '']);
        assert.equal(encoding.offsets[4]![0], 17);
        assert.deepEqual([...encoding.special!], [1, 0, 0, 0, 0, 0, 1]);
        assert.equal(encoding.typeIds, undefined, 'RobertaProcessing assigns no type ids');
        assert.equal(tokenizer.padId, 1);
      });
    }
  }

  it('pieces of one character (emoji, CJK, the lone surrogate) all span that character', async () => {
    const tokenizer = await load(byteLevel(false));
    const tokenOf = Object.fromEntries(Object.entries(byteLevelModel.vocab).map(([token, id]) => [id, token]));
    const encodings = await tokenizer.encodeBatch(TRICKY_TEXTS);
    TRICKY_TEXTS.forEach((text, t) => {
      const encoding = encodings[t]!;
      assertWellFormed(text, encoding, 64);
      // Joined, the pieces' bytes are the text's (lone surrogates as U+FFFD, as napi passes them).
      const pieces = [...encoding.ids].filter((_, i) => encoding.special![i] === 0).map((id) => tokenOf[id]!);
      assert.equal(textOfByteLevel(pieces.join('')), wellFormed(text));
      encoding.ids.forEach((id, i) => {
        if (encoding.special![i] === 1) return;
        const piece = textOfByteLevel(tokenOf[id]!);
        const span = text.slice(...encoding.offsets[i]!);
        if (!piece.includes('\uFFFD')) assert.equal(span, piece.trimStart(), `${JSON.stringify(text)} token ${i}`);
        // A piece of a character's bytes spans that character; of a whitespace character's (NBSP), nothing.
        else assert.ok([...span].length === 1 || (span === '' && /\s/.test(text[encoding.offsets[i]![0] - 1] ?? '')), `${JSON.stringify(text)} token ${i}`);
      });
    });
    const emoji = encodings[TRICKY_TEXTS.indexOf('😀 hello 😀😀 world')]!;
    assert.deepEqual(slices('😀 hello 😀😀 world', emoji).slice(1, 5), ['😀', '😀', '😀', '😀']);
    const lone = encodings[TRICKY_TEXTS.indexOf('a\uD800b hello')]!;
    assert.deepEqual(slices('a\uD800b hello', lone), ['', 'a', '\uD800', '\uD800', '\uD800', 'b', 'hello', '']);
  });

  it('empty text is <s> </s>; whitespace-only text has empty spans', async () => {
    const tokenizer = await load(byteLevel(true));
    const [empty, spaces] = await tokenizer.encodeBatch(['', '   ']);
    assert.deepEqual(idsOf(empty!), [0, 2]);
    assert.deepEqual(empty!.offsets, [[0, 0], [0, 0]]);
    assertWellFormed('   ', spaces!, 64);
    assert.ok(spaces!.offsets.every(([start, end]) => start === end));
  });
});

describe('HuggingFaceTokenizer: Unigram with Metaspace (XLM-R)', () => {
  it("gives the pieces by construction; spans leave off the '▁'", async () => {
    const tokenizer = await load(unigram());
    const id = (piece: string) => UNIGRAM_PIECES.findIndex(([p]) => p === piece);
    const text = 'hello  world café naïve 😀中文';
    const encoding = await encodeOne(tokenizer, text);
    assert.deepEqual(idsOf(encoding), [0, id('▁hello'), id('▁'), id('▁world'), id('▁caf'), id('é'), id('▁na'), id('ï'), id('ve'), id('▁'), id('😀'), id('中'), id('文'), 2]);
    assert.deepEqual(slices(text, encoding), ['', 'hello', '', 'world', 'caf', 'é', 'na', 'ï', 've', '', '😀', '中', '文', '']);
    assert.deepEqual(encoding.offsets.slice(9, 11), [[24, 24], [24, 26]]);
    assert.deepEqual([...encoding.special!], [1, ...new Array(12).fill(0), 1]);
  });

  it("the '▁' prepended to a text that starts with a piece of its own gets [0, 0]", async () => {
    const tokenizer = await load(unigram());
    const text = '中 hello';
    const encoding = await encodeOne(tokenizer, text);
    assert.deepEqual(encoding.offsets.slice(1, -1), [[0, 0], [0, 1], [2, 7]]);
  });

  it('spans are the pieces without the ▁ for the tricky texts', async () => {
    const tokenizer = await load(unigram());
    const encodings = await tokenizer.encodeBatch(TRICKY_TEXTS);
    TRICKY_TEXTS.forEach((text, t) => {
      const encoding = encodings[t]!;
      assertWellFormed(text, encoding, 64);
      encoding.ids.forEach((id, i) => {
        if (encoding.special![i] === 1 || id === 3) return;
        const span = text.slice(...encoding.offsets[i]!).normalize('NFKC');
        const piece = UNIGRAM_PIECES[id]![0].replace(/^▁/, '');
        // A piece inside one NFKC unit ('f' and 'i' of 'ﬁ') spans the whole unit.
        if (span !== piece) assert.ok(span.length > 1 && span.includes(piece) && [...text.slice(...encoding.offsets[i]!)].length === 1, `${JSON.stringify(text)} token ${i}: ${span} for ${piece}`);
      });
    });
    // Both lone surrogates are U+FFFD to the library, and Unigram makes one unknown piece of them.
    const lone = encodings[TRICKY_TEXTS.indexOf('hello \uDC00\uD800 😀 world')]!;
    assert.deepEqual(slices('hello \uDC00\uD800 😀 world', lone).slice(1, -1), ['hello', '', '\uDC00\uD800', '', '😀', 'world']);
  });

  it('a normalizer-only file (Replace " " by "▁", Prepend "▁", no post-processor) has no special tokens', async () => {
    const tokenizer = await load(
      unigram({
        normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }, { type: 'Prepend', prepend: '▁' }] },
        pre_tokenizer: null,
        post_processor: null,
      }),
    );
    const text = 'hello world 😀';
    const encoding = await encodeOne(tokenizer, text);
    assert.equal(encoding.special, undefined);
    assert.equal(encoding.typeIds, undefined);
    assert.deepEqual(slices(text, encoding), ['hello', 'world', '', '😀']);
    const [empty] = await tokenizer.encodeBatch(['']);
    assert.deepEqual(idsOf(empty!), []);
    assert.deepEqual(empty!.offsets, []);
  });
});

describe('HuggingFaceTokenizer: truncation', () => {
  const LONG = 'hello world, hello café 😀 world unaffable hello 中文 world naïve hello';
  const kinds: Array<[string, Json]> = [
    ['WordPiece', wordpiece()],
    ['byte-level BPE', byteLevel(false)],
    ['byte-level BPE, prefix space', byteLevel(true)],
    ['Unigram', unigram()],
  ];

  /** The library's own truncation of `text` to `maxLength`, from the same file. */
  async function libraryTruncated(json: Json, text: string, maxLength: number) {
    const native = NativeTokenizer.fromString(JSON.stringify(json));
    native.setTruncation(maxLength);
    const encoding = await native.encode(text);
    return { ids: encoding.getIds(), typeIds: encoding.getTypeIds(), special: encoding.getSpecialTokensMask(), offsets: encoding.getOffsets() };
  }

  for (const [name, json] of kinds) {
    it(`${name}: counts before cutting, keeps the end token, equals the library's truncation`, async () => {
      const full = await encodeOne(await load(json, 512), LONG);
      const untruncated = full.ids.length;
      assert.ok(untruncated > 12);
      const lastId = full.ids[untruncated - 1]!;
      for (let max = 3; max <= untruncated + 1; max++) {
        const encoding = await encodeOne(await load(json, max), LONG);
        assertWellFormed(LONG, encoding, max);
        assert.equal(encoding.tokenCount, untruncated);
        assert.equal(encoding.truncated, untruncated > max);
        assert.equal(encoding.ids[encoding.ids.length - 1], lastId, 'ends with the special token');
        assert.equal(encoding.special![encoding.ids.length - 1], 1);
        const library = await libraryTruncated(json, LONG, max);
        assert.deepEqual(idsOf(encoding), library.ids, `ids at max ${max}`);
        assert.deepEqual([...encoding.special!], library.special);
        if (encoding.typeIds) assert.deepEqual([...encoding.typeIds], library.typeIds);
        // The kept tokens' spans are theirs in the whole encoding, and the library's truncation keeps its spans too.
        const kept = encoding.ids.length - 1;
        assert.deepEqual(encoding.offsets.slice(0, kept), full.offsets.slice(0, kept));
        const libraryFull = await libraryTruncated(json, LONG, 512);
        assert.deepEqual(library.offsets.slice(0, kept), libraryFull.offsets.slice(0, kept));
      }
    });
  }

  it("the effective maximum is the smaller of maxTokens and tokenizer.json's truncation.max_length", async () => {
    const declared = wordpiece({ truncation: { direction: 'Right', max_length: 5, strategy: 'LongestFirst', stride: 0 } });
    assert.equal((await HuggingFaceTokenizer.fromJson(JSON.stringify(declared), { maxTokens: 512 })).maxTokens, 5);
    assert.equal((await HuggingFaceTokenizer.fromJson(JSON.stringify(declared), { maxTokens: 4 })).maxTokens, 4);
    assert.equal((await HuggingFaceTokenizer.fromJson(JSON.stringify(declared))).maxTokens, 5);
    const encoding = await encodeOne(await HuggingFaceTokenizer.fromJson(JSON.stringify(declared), { maxTokens: 512 }), 'hello world hello world');
    assert.deepEqual(idsOf(encoding), [CLS, wordpieceVocab.hello, wordpieceVocab.world, wordpieceVocab.hello, SEP]);
    assert.equal(encoding.tokenCount, 6);
    assert.equal(encoding.truncated, true);
  });

  it("truncation.direction Left keeps the last tokens, as the library's own truncation does", async () => {
    const left = { truncation: { direction: 'Left', max_length: 6, strategy: 'LongestFirst', stride: 0 } };
    for (const [name, json] of kinds) {
      const declared = { ...json, ...left };
      const encoding = await encodeOne(await HuggingFaceTokenizer.fromJson(JSON.stringify(declared)), LONG);
      assertWellFormed(LONG, encoding, 6);
      const library = await NativeTokenizer.fromString(JSON.stringify(declared)).encode(LONG);
      assert.deepEqual(idsOf(encoding), library.getIds(), name);
      assert.deepEqual([...encoding.special!], library.getSpecialTokensMask(), name);
    }
    const encoding = await encodeOne(await HuggingFaceTokenizer.fromJson(JSON.stringify({ ...wordpiece(), ...left })), LONG);
    assert.deepEqual(slices(LONG, encoding), ['', '文', 'world', 'naïve', 'hello', '']);
    assert.equal(encoding.tokenCount, 18);
  });

  it('padding declared in tokenizer.json is not applied', async () => {
    const json = wordpiece({ padding: { strategy: { Fixed: 16 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: '[PAD]' } });
    const tokenizer = await HuggingFaceTokenizer.fromJson(JSON.stringify(json), { maxTokens: 64 });
    assert.deepEqual(idsOf(await encodeOne(tokenizer, 'hello')), [CLS, wordpieceVocab.hello, SEP]);
  });

  it('property: random texts are well-formed and cut as the library cuts them', async () => {
    const alphabet = ['a', 'e', 'h', 'l', 'o', 'w', 'r', 'd', 'H', 'é', 'ï', 'e\u0301', ' ', '  ', '\n', '\t', '\u00a0', '😀', '中', '\uD800', '\uDC00', ',', '!', 'ﬁ'];
    const tokenizers = await Promise.all(kinds.map(async ([, json]) => ({ json, tokenizer: await load(json, 12) })));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...alphabet), { maxLength: 30 }), async (parts) => {
        const text = parts.join('');
        for (const { json, tokenizer } of tokenizers) {
          const encoding = await encodeOne(tokenizer, text);
          assertWellFormed(text, encoding, 12);
          assert.deepEqual(idsOf(encoding), (await libraryTruncated(json, text, 12)).ids);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('HuggingFaceTokenizer: refused files', () => {
  it('refuses a WordLevel model, naming tokenizer.json and model.type', async () => {
    const json = wordpiece({ model: { type: 'WordLevel', vocab: wordpieceVocab, unk_token: '[UNK]' } });
    await assert.rejects(load(json), (error: Error) => /tokenizer\.json/.test(error.message) && /model\.type/.test(error.message) && /WordLevel/.test(error.message));
  });

  it('load() reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'polyhead-hf-tokenizer-'));
    try {
      const path = join(dir, 'tokenizer.json');
      await writeFile(path, JSON.stringify(unigram()));
      const tokenizer = await HuggingFaceTokenizer.load(path, { maxTokens: 8 });
      assert.equal((await encodeOne(tokenizer, 'hello world')).ids.length, 4);
      await writeFile(path, JSON.stringify(unigram({ model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } })));
      await assert.rejects(HuggingFaceTokenizer.load(path, { maxTokens: 8 }), (error: Error) => error.message.includes(path) && /model\.type/.test(error.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wants a maximum, and room for text next to the special tokens', async () => {
    await assert.rejects(HuggingFaceTokenizer.fromJson(JSON.stringify(wordpiece())), /truncation\.max_length/);
    await assert.rejects(load(wordpiece(), 2), /no room/);
    await assert.rejects(HuggingFaceTokenizer.fromJson('{not json', { maxTokens: 8 }), /tokenizer\.json is not JSON/);
  });
});
