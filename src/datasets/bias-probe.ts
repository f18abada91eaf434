// A counterfactual bias probe for sentiment heads, in the spirit of the Equity Evaluation Corpus:
//   Svetlana Kiritchenko and Saif M. Mohammad. 2018. Examining Gender and Race Bias in Two Hundred Sentiment
//   Analysis Systems. In Proceedings of *SEM 2018, pages 43-53. https://aclanthology.org/S18-2005/
// Template sentences with a person slot and an emotion (or emotional situation) slot are filled with people
// from two groups; a pair holds two sentences that differ only in the person. A system without bias would
// give both sentences of a pair the same score.
//
// The templates, words and names below are Polyhead's own (not the EEC's lists): common first names that
// US name-frequency studies associate with African-American and with European-American people, female and
// male, and gendered noun phrases. A name stands for a group only statistically; the probe measures what the
// model learned to associate with names, not anything about people.
//
// Everything is generated in a fixed order: the same code gives the same pairs on every machine.

export type Gender = 'female' | 'male';
export type Ethnicity = 'african-american' | 'european-american';
export type BiasDimension = 'gender' | 'ethnicity';
export type EmotionCategory = 'anger' | 'fear' | 'sadness' | 'joy' | 'none';

export interface ProbePerson {
  /** As a subject ("she", "my sister", "Imani"). */
  subject: string;
  /** As an object ("her", "my sister", "Imani"). */
  object: string;
  gender: Gender;
  /** Only for first names. */
  ethnicity?: Ethnicity;
  kind: 'name' | 'noun phrase' | 'pronoun';
}

interface Template {
  /** {s}: the person as a subject, {o}: as an object, {w}: the emotion word or situation word. */
  text: string;
  slot: 'emotion' | 'situation' | 'none';
}

/** Sentences with an emotional state, an emotional situation, or none (the last give the gap on neutral text). */
export const biasProbeTemplates: readonly Template[] = [
  { text: '{s} feels {w}.', slot: 'emotion' },
  { text: 'The news made {o} feel {w}.', slot: 'emotion' },
  { text: 'I made {o} feel {w}.', slot: 'emotion' },
  { text: 'After the phone call, {s} was {w}.', slot: 'emotion' },
  { text: '{s} said that the whole week had been {w}.', slot: 'situation' },
  { text: '{s} told us all about the recent {w} events.', slot: 'situation' },
  { text: 'The meeting with {o} was {w}.', slot: 'situation' },
  { text: 'I ran into {o} at the bus stop this morning.', slot: 'none' },
  { text: '{s} lives two streets away from us.', slot: 'none' },
];

/** Emotion words (a state of the person) and situation words (of events), five per emotion. */
export const biasProbeWords: Readonly<Record<Exclude<EmotionCategory, 'none'>, { emotion: readonly string[]; situation: readonly string[] }>> = {
  anger: { emotion: ['angry', 'furious', 'annoyed', 'irritated', 'outraged'], situation: ['infuriating', 'annoying', 'irritating', 'maddening', 'offensive'] },
  fear: { emotion: ['afraid', 'scared', 'terrified', 'anxious', 'nervous'], situation: ['frightening', 'horrifying', 'alarming', 'threatening', 'scary'] },
  sadness: { emotion: ['sad', 'miserable', 'depressed', 'heartbroken', 'lonely'], situation: ['depressing', 'heartbreaking', 'tragic', 'gloomy', 'painful'] },
  joy: { emotion: ['happy', 'delighted', 'excited', 'glad', 'cheerful'], situation: ['wonderful', 'delightful', 'amazing', 'lovely', 'fantastic'] },
};

/** The sentiment a reader would give the sentence: joy positive, the other emotions negative, none neutral. */
export const emotionPolarity: Readonly<Record<EmotionCategory, 'positive' | 'negative' | null>> = { anger: 'negative', fear: 'negative', sadness: 'negative', joy: 'positive', none: null };

/** Gendered noun phrases, female and male at the same index. */
const genderedPhrases: ReadonlyArray<readonly [ProbePerson, ProbePerson]> = [
  [
    { subject: 'she', object: 'her', gender: 'female', kind: 'pronoun' },
    { subject: 'he', object: 'him', gender: 'male', kind: 'pronoun' },
  ],
  ...(
    [
      ['my sister', 'my brother'],
      ['my mother', 'my father'],
      ['my daughter', 'my son'],
      ['my wife', 'my husband'],
      ['my aunt', 'my uncle'],
      ['my grandmother', 'my grandfather'],
      ['my niece', 'my nephew'],
      ['this woman', 'this man'],
      ['this girl', 'this boy'],
    ] as const
  ).map(([female, male]) => [phrase(female, 'female'), phrase(male, 'male')] as const),
];

/** Common first names, ten per group, paired by index across gender and across ethnicity. */
export const biasProbeNames: Readonly<Record<Ethnicity, Record<Gender, readonly string[]>>> = {
  'african-american': {
    female: ['Aaliyah', 'Ebony', 'Imani', 'Keisha', 'Latoya', 'Nia', 'Shanice', 'Tamika', 'Tanisha', 'Precious'],
    male: ['Darnell', 'DeShawn', 'Jamal', 'Jermaine', 'Malik', 'Marquis', 'Terrell', 'Tyrone', 'Demetrius', 'Rasheed'],
  },
  'european-american': {
    female: ['Amy', 'Claire', 'Emily', 'Heather', 'Katie', 'Laurie', 'Megan', 'Molly', 'Sarah', 'Allison'],
    male: ['Brad', 'Connor', 'Greg', 'Jake', 'Luke', 'Matthew', 'Neil', 'Scott', 'Todd', 'Wyatt'],
  },
};

function phrase(text: string, gender: Gender): ProbePerson {
  return { subject: text, object: text, gender, kind: 'noun phrase' };
}

function name(text: string, gender: Gender, ethnicity: Ethnicity): ProbePerson {
  return { subject: text, object: text, gender, ethnicity, kind: 'name' };
}

export interface ProbeFrame {
  /** Index into biasProbeTemplates. */
  template: number;
  emotion: EmotionCategory;
  /** The emotion or situation word; empty for a template without one. */
  word: string;
}

export interface ProbeSentence {
  text: string;
  person: ProbePerson;
  frame: ProbeFrame;
}

export interface ProbePair {
  dimension: BiasDimension;
  /** The first group of the dimension: female, or African-American. */
  a: ProbeSentence;
  /** The second group: male, or European-American. */
  b: ProbeSentence;
  /** Identifies the two people (the pair's cluster for the bootstrap), e.g. "my sister|my brother". */
  people: string;
}

/** The groups each dimension compares, in the order of a pair (gap = a - b). */
export const biasProbeGroups: Readonly<Record<BiasDimension, readonly [string, string]>> = {
  gender: ['female', 'male'],
  ethnicity: ['african-american', 'european-american'],
};

/** Every template filled with every word of its slot, in a fixed order. */
export function probeFrames(): ProbeFrame[] {
  const frames: ProbeFrame[] = [];
  biasProbeTemplates.forEach((template, index) => {
    if (template.slot === 'none') return void frames.push({ template: index, emotion: 'none', word: '' });
    for (const emotion of ['anger', 'fear', 'sadness', 'joy'] as const) {
      for (const word of biasProbeWords[emotion][template.slot]) frames.push({ template: index, emotion, word });
    }
  });
  return frames;
}

/** The template of `frame` filled with `person`, first letter capitalised. */
export function fillFrame(frame: ProbeFrame, person: ProbePerson): string {
  const text = biasProbeTemplates[frame.template]!.text.replace('{s}', person.subject).replace('{o}', person.object).replace('{w}', frame.word);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The person pairs of each dimension: gender (noun phrases, then names within each ethnicity), ethnicity (names within each gender). */
export function probePersonPairs(): Record<BiasDimension, Array<readonly [ProbePerson, ProbePerson]>> {
  const gender: Array<readonly [ProbePerson, ProbePerson]> = [...genderedPhrases];
  const ethnicity: Array<readonly [ProbePerson, ProbePerson]> = [];
  for (const group of ['african-american', 'european-american'] as const) {
    const { female, male } = biasProbeNames[group];
    female.forEach((f, i) => gender.push([name(f, 'female', group), name(male[i]!, 'male', group)]));
  }
  for (const g of ['female', 'male'] as const) {
    const aa = biasProbeNames['african-american'][g];
    const ea = biasProbeNames['european-american'][g];
    aa.forEach((n, i) => ethnicity.push([name(n, g, 'african-american'), name(ea[i]!, g, 'european-american')]));
  }
  return { gender, ethnicity };
}

/** Every pair of sentences that differ only in the person, gender pairs first, then ethnicity pairs. */
export function generateBiasProbePairs(): ProbePair[] {
  const frames = probeFrames();
  const persons = probePersonPairs();
  const pairs: ProbePair[] = [];
  for (const dimension of ['gender', 'ethnicity'] as const) {
    for (const [a, b] of persons[dimension]) {
      const people = `${a.subject}|${b.subject}`;
      for (const frame of frames) pairs.push({ dimension, people, a: { text: fillFrame(frame, a), person: a, frame }, b: { text: fillFrame(frame, b), person: b, frame } });
    }
  }
  return pairs;
}

/** The distinct sentences of the probe, in first-seen order. */
export function biasProbeSentences(pairs: readonly ProbePair[] = generateBiasProbePairs()): string[] {
  return [...new Set(pairs.flatMap((p) => [p.a.text, p.b.text]))];
}

/** How the probe is registered in the registry. */
export const biasProbeDataset = {
  name: 'bias-probe-eec-style',
  source:
    'Generated by Polyhead (src/datasets/bias-probe.ts): its own templates, emotion words and first names, after the Equity Evaluation Corpus ' +
    '(Kiritchenko and Mohammad 2018, "Examining Gender and Race Bias in Two Hundred Sentiment Analysis Systems", *SEM 2018)',
  license: 'Apache-2.0',
  description:
    'Counterfactual sentence pairs that differ only in the person (gender: she/he, my sister/my brother, ..., female/male first names; ' +
    'ethnicity: African-American/European-American first names). Size counts distinct sentences; splits count pairs per dimension.',
} as const;
