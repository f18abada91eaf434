// Synthetic, reproducible NER training data (PER, ORG, LOC): gazetteer entries placed in varied
// sentence templates (ner-templates.ts), plus entity-free sentences from the Brown corpus.
//
// No human-annotated NER corpus is reachable from this project's registries, so this is the training
// set; the hand-labelled data/ner-dev.jsonl measures how well it transfers to natural text.
// Offsets are JavaScript string offsets (UTF-16 code units), end exclusive:
// text.slice(start, end) is the entity. The same seed and count give the same examples (for the same
// versions of the gazetteer packages, which the project pins).
import { loadBrownEntityFreeSentences } from './brown.js';
import { loadGazetteers, nameLocaleWeight, type Gazetteers, type NameLocale } from './ner-gazetteers.js';
import { TEMPLATES, type TemplateGroup } from './ner-templates.js';
import { createRng, pick, randomInt, type Rng } from './split.js';

export const NER_LABELS = ['PER', 'ORG', 'LOC'] as const;
export type NerLabel = (typeof NER_LABELS)[number];

export interface NerEntity {
  start: number;
  /** Exclusive. */
  end: number;
  label: NerLabel;
}

export interface NerExample {
  text: string;
  entities: NerEntity[];
}

export interface GenerateNerOptions {
  seed: string | number;
  count: number;
  /** Share of examples that are entity-free Brown corpus sentences (default 0.08). */
  brownFraction?: number;
  /** Share of template sentences printed all lower case (default 0.02; a third as many in upper case). */
  caseNoise?: number;
}

/** How often a template group is drawn, relative to the others (per template: bigger groups weigh more). */
const GROUP_WEIGHTS: Record<TemplateGroup, number> = {
  news: 1, business: 1, sport: 1, travel: 1, chat: 1, reviews: 1, dense: 1, misc: 1, modifiers: 1,
  // Mostly fixed sentences: drawn less often per template so they do not repeat too much.
  confusable: 0.5,
  noEntity: 0.5,
};

type SlotKind =
  | 'PER' | 'FIRST' | 'LAST'
  | 'ORG' | 'COMPANY' | 'BANK' | 'UNI' | 'TEAM' | 'AIRLINE' | 'MEDIA' | 'AGENCY' | 'PUBLISHER' | 'CARMAKER'
  | 'LOC' | 'CITY' | 'COUNTRY' | 'STATE' | 'PLACE'
  | 'NUM' | 'YEAR' | 'MONTH' | 'DAY' | 'PRICE';

const SLOT_LABEL: Partial<Record<SlotKind, NerLabel>> = {
  PER: 'PER', FIRST: 'PER', LAST: 'PER',
  ORG: 'ORG', COMPANY: 'ORG', BANK: 'ORG', UNI: 'ORG', TEAM: 'ORG', AIRLINE: 'ORG', MEDIA: 'ORG', AGENCY: 'ORG',
  PUBLISHER: 'ORG', CARMAKER: 'ORG',
  LOC: 'LOC', CITY: 'LOC', COUNTRY: 'LOC', STATE: 'LOC', PLACE: 'LOC',
};

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const TEAM_SUFFIXES = ['FC', 'United', 'City', 'Rovers', 'Athletic', 'Tigers', 'Eagles', 'Wolves', 'Lions', 'Rangers'];

/** One piece of a parsed template. */
type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'slot'; slot: SlotKind; reuseKey?: string }
  | { kind: 'literal'; text: string; label: NerLabel };

const PART_PATTERN = /\{([A-Z]+)(#\d+)?\}|\[([^\]|]+)\|(PER|ORG|LOC)\]/g;

/** Parses a template into text, slot and literal-entity parts; throws on an unknown slot. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of template.matchAll(PART_PATTERN)) {
    if (match.index! > last) parts.push({ kind: 'text', text: template.slice(last, match.index) });
    if (match[1]) {
      const slot = match[1] as SlotKind;
      if (!(slot in SLOT_LABEL) && !['NUM', 'YEAR', 'MONTH', 'DAY', 'PRICE'].includes(slot)) {
        throw new Error(`unknown slot {${slot}} in template: ${template}`);
      }
      parts.push({ kind: 'slot', slot, reuseKey: match[2] ? slot + match[2] : undefined });
    } else {
      parts.push({ kind: 'literal', text: match[3]!, label: match[4] as NerLabel });
    }
    last = match.index! + match[0].length;
  }
  if (last < template.length) parts.push({ kind: 'text', text: template.slice(last) });
  if (parts.some((part) => part.kind === 'text' && /[{}[\]]/.test(part.text))) {
    throw new Error(`malformed slot or literal in template: ${template}`);
  }
  return parts;
}

/** A drawn value: `prefix` (an article) is printed before the entity but is not part of it. */
interface Filler {
  prefix: string;
  value: string;
}

function withArticle(entry: string): Filler {
  return entry.startsWith('the ') ? { prefix: 'the ', value: entry.slice(4) } : { prefix: '', value: entry };
}

function weightedPick<T>(rng: Rng, options: ReadonlyArray<readonly [number, T]>): T {
  const total = options.reduce((sum, [weight]) => sum + weight, 0);
  let roll = rng() * total;
  for (const [weight, value] of options) {
    roll -= weight;
    if (roll < 0) return value;
  }
  return options[options.length - 1]![1];
}

/** Draws people's names; first and last name mostly from the same locale. */
class NameDrawer {
  private readonly weighted: Array<readonly [number, NameLocale]>;
  constructor(private readonly gazetteers: Gazetteers) {
    this.weighted = gazetteers.nameLocales.map((entry) => [nameLocaleWeight(entry.locale), entry] as const);
  }
  private locale(rng: Rng): NameLocale {
    return weightedPick(rng, this.weighted);
  }
  first(rng: Rng): string {
    return pick(rng, this.locale(rng).firstNames);
  }
  last(rng: Rng): string {
    return pick(rng, this.locale(rng).lastNames);
  }
  full(rng: Rng): string {
    const home = this.locale(rng);
    const first = pick(rng, home.firstNames);
    // 10%: a surname from elsewhere (mixed heritage, married names).
    const lastSource = rng() < 0.1 ? this.locale(rng) : home;
    let last = pick(rng, lastSource.lastNames);
    const roll = rng();
    if (roll < 0.05) last = `${pick(rng, lastSource.lastNames)}-${last}`;
    else if (roll < 0.1) return `${first} ${String.fromCharCode(65 + randomInt(rng, 26))}. ${last}`;
    else if (roll < 0.13) return `${first} ${pick(rng, home.firstNames)} ${last}`;
    // Vietnamese names are written family name first.
    return home.locale === 'vi' && lastSource === home ? `${last} ${first}` : `${first} ${last}`;
  }
}

class SlotFiller {
  private readonly names: NameDrawer;
  constructor(private readonly g: Gazetteers) {
    this.names = new NameDrawer(g);
  }

  fill(slot: SlotKind, rng: Rng): Filler {
    const g = this.g;
    const plain = (value: string): Filler => ({ prefix: '', value });
    switch (slot) {
      case 'PER': return plain(this.names.full(rng));
      case 'FIRST': return plain(this.names.first(rng));
      case 'LAST': return plain(this.names.last(rng));
      case 'ORG':
        return this.fill(
          weightedPick<SlotKind>(rng, [[40, 'COMPANY'], [8, 'BANK'], [12, 'UNI'], [8, 'TEAM'], [6, 'AIRLINE'], [8, 'MEDIA'], [12, 'AGENCY'], [3, 'PUBLISHER'], [3, 'CARMAKER']]),
          rng,
        );
      case 'COMPANY': return plain(this.company(rng));
      case 'BANK':
        return weightedPick(rng, [
          [4, () => plain(pick(rng, g.banks))],
          [2, () => plain(`${pick(rng, g.companyStems)} Bank`)],
          [1, () => plain(`${this.city(rng).value} Savings Bank`)],
          [1, () => ({ prefix: 'the ', value: `Bank of ${withArticle(pick(rng, g.countries)).value}` })],
        ] as const)();
      case 'UNI':
        return weightedPick(rng, [
          [4, () => withArticle(pick(rng, g.universities))],
          [3, () => ({ prefix: 'the ', value: `University of ${this.city(rng).value}` })],
          [1, () => plain(`${this.city(rng).value} State University`)],
          [1, () => plain(`${this.city(rng).value} Institute of Technology`)],
          [1, () => plain(`${this.names.last(rng)} College`)],
        ] as const)();
      case 'TEAM':
        return weightedPick(rng, [
          [4, () => withArticle(pick(rng, g.sportsTeams))],
          [5, () => plain(`${this.city(rng).value} ${pick(rng, TEAM_SUFFIXES)}`)],
          [1, () => plain(`FC ${this.city(rng).value}`)],
        ] as const)();
      case 'AIRLINE':
        return rng() < 0.85 ? plain(pick(rng, g.airlines)) : plain(`${pick(rng, g.companyStems)} Airlines`);
      case 'MEDIA':
        return rng() < 0.7
          ? withArticle(pick(rng, g.media))
          : { prefix: 'the ', value: `${this.city(rng).value} ${pick(rng, ['Herald', 'Times', 'Daily News', 'Gazette', 'Chronicle'])}` };
      case 'AGENCY':
        return weightedPick(rng, [
          [7, () => withArticle(pick(rng, g.organisations))],
          [1, () => ({ prefix: 'the ', value: `${this.city(rng).value} City Council` })],
          [1, () => ({ prefix: 'the ', value: `${pick(rng, g.usStates)} Department of Transportation` })],
          [1, () => ({ prefix: 'the ', value: `${pick(rng, g.companyStems)} Foundation` })],
        ] as const)();
      case 'PUBLISHER': return plain(pick(rng, g.publishers));
      case 'CARMAKER': return plain(pick(rng, g.carMakers));
      case 'LOC':
        return this.fill(weightedPick<SlotKind>(rng, [[50, 'CITY'], [25, 'COUNTRY'], [10, 'STATE'], [15, 'PLACE']]), rng);
      case 'CITY': return this.city(rng);
      case 'COUNTRY': return withArticle(pick(rng, g.countries));
      case 'STATE': return plain(rng() < 0.6 ? pick(rng, g.usStates) : pick(rng, g.regions));
      case 'PLACE': return withArticle(pick(rng, g.places));
      case 'NUM': return plain(String(rng() < 0.7 ? 2 + randomInt(rng, 98) : 100 + randomInt(rng, 9900)));
      case 'YEAR': return plain(String(1950 + randomInt(rng, 76)));
      case 'MONTH': return plain(pick(rng, MONTHS));
      case 'DAY': return plain(pick(rng, DAYS));
      case 'PRICE': {
        const amount = rng() < 0.5 ? `${1 + randomInt(rng, 99)}` : `${1 + randomInt(rng, 9)}.${randomInt(rng, 10)}`;
        return plain(`${pick(rng, ['$', '€', '£'])}${amount} ${pick(rng, ['million', 'billion'])}`);
      }
    }
  }

  private city(rng: Rng): Filler {
    const g = this.g;
    const list = weightedPick(rng, [[50, g.majorCities], [25, g.usCities], [25, g.regionalCities]] as const);
    return { prefix: '', value: pick(rng, list) };
  }

  private company(rng: Rng): string {
    const g = this.g;
    return weightedPick(rng, [
      [35, () => pick(rng, g.companies)],
      [30, () => `${pick(rng, g.companyStems)} ${pick(rng, g.companySectors)}`],
      [10, () => `${pick(rng, g.companyStems)} ${pick(rng, g.companySectors)} ${pick(rng, g.legalSuffixes)}`],
      [15, () => `${this.names.last(rng)} ${pick(rng, g.legalSuffixes)}`],
      [10, () => `${this.names.last(rng)} & ${this.names.last(rng)}`],
    ] as const)();
  }
}

/** Fills one template: the text and its entity spans. */
function renderTemplate(parts: TemplatePart[], filler: SlotFiller, rng: Rng): NerExample {
  let text = '';
  const entities: NerEntity[] = [];
  const reused = new Map<string, Filler>();
  let previousEndsWithPeriod = false;
  for (const part of parts) {
    if (part.kind === 'text') {
      // An entity ending in "." (Inc., S.A.) swallows the sentence's own full stop.
      text += previousEndsWithPeriod && part.text.startsWith('.') ? part.text.slice(1) : part.text;
      previousEndsWithPeriod = false;
      continue;
    }
    let value: Filler;
    let label: NerLabel | undefined;
    if (part.kind === 'literal') {
      value = { prefix: '', value: part.text };
      label = part.label;
    } else {
      const key = part.reuseKey;
      value = (key && reused.get(key)) || filler.fill(part.slot, rng);
      if (key) reused.set(key, value);
      label = SLOT_LABEL[part.slot];
    }
    // "the" at the very start of a sentence is capitalised.
    text += text === '' && value.prefix ? value.prefix[0]!.toUpperCase() + value.prefix.slice(1) : value.prefix;
    const start = text.length;
    text += value.value;
    if (label) entities.push({ start, end: text.length, label });
    previousEndsWithPeriod = value.value.endsWith('.');
  }
  return { text, entities };
}

/** Lower- or upper-cases the whole text, rarely, when that keeps every offset valid. */
function applyCaseNoise(example: NerExample, rng: Rng, caseNoise: number): NerExample {
  const roll = rng();
  let text = example.text;
  if (roll < caseNoise) text = text.toLowerCase();
  else if (roll < caseNoise * (4 / 3)) text = text.toUpperCase();
  return text.length === example.text.length ? { text, entities: example.entities } : example;
}

/** Throws if an example's spans are not sorted, non-overlapping, non-empty and whitespace-trimmed. */
export function assertValidExample(example: NerExample): void {
  let previousEnd = 0;
  for (const entity of example.entities) {
    const span = example.text.slice(entity.start, entity.end);
    if (entity.start < previousEnd || entity.end <= entity.start || entity.end > example.text.length || span.trim() !== span) {
      throw new Error(`invalid entity ${JSON.stringify(entity)} (${JSON.stringify(span)}) in ${JSON.stringify(example.text)}`);
    }
    if (!(NER_LABELS as readonly string[]).includes(entity.label)) throw new Error(`unknown label ${entity.label}`);
    previousEnd = entity.end;
  }
}

let parsedTemplates: Array<{ parts: TemplatePart[]; weight: number }> | undefined;

function templates(): Array<{ parts: TemplatePart[]; weight: number }> {
  parsedTemplates ??= TEMPLATES.map(({ group, template }) => ({ parts: parseTemplate(template), weight: GROUP_WEIGHTS[group] }));
  return parsedTemplates;
}

/** Generates `count` labelled examples, deterministically for a seed. */
export function generateNerExamples(options: GenerateNerOptions): NerExample[] {
  const { seed, count } = options;
  const brownFraction = options.brownFraction ?? 0.08;
  const caseNoise = options.caseNoise ?? 0.02;
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be a non-negative integer, got ${count}`);
  const rng = createRng(seed);
  const filler = new SlotFiller(loadGazetteers());
  const weightedTemplates = templates().map((entry) => [entry.weight, entry.parts] as const);
  const brown = brownFraction > 0 ? loadBrownEntityFreeSentences() : [];
  const examples: NerExample[] = [];
  while (examples.length < count) {
    if (brown.length > 0 && rng() < brownFraction) {
      examples.push({ text: pick(rng, brown), entities: [] });
      continue;
    }
    const example = applyCaseNoise(renderTemplate(weightedPick(rng, weightedTemplates), filler, rng), rng, caseNoise);
    assertValidExample(example);
    examples.push(example);
  }
  return examples;
}

/** The entity's text, for display and checks. */
export function entityText(example: NerExample, entity: NerEntity): string {
  return example.text.slice(entity.start, entity.end);
}
