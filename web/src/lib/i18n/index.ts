import { derived, get, writable } from 'svelte/store';
import { bootAnswered } from '$lib/boot';

/**
 * The web app's languages. Messages live in `locales/<locale>/<namespace>.json` (one file per
 * feature, so features add strings without touching each other's files); a key is
 * `<namespace>.<rest>`, e.g. `nav.fleet` from `locales/en/nav.json` → `{ "fleet": "Fleet" }`.
 * English's first-screen namespaces are bundled (English is also the fallback for a missing key);
 * the rest, and other languages, load on demand.
 * See README.md beside this file.
 */
export const LOCALES = ['en', 'fr', 'pt'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

/** Each language's own name, for pickers (never translated). */
export const LOCALE_NAMES: Record<Locale, string> = { en: 'English', fr: 'Français', pt: 'Português' };

/** A compiled message (build-tools/messages.ts): the values in, the text out. */
type Message = (values?: Record<string, unknown>) => string;
type Catalogue = Record<string, unknown>;

/** `{ './locales/en/nav.json': { fleet: 'Fleet' } }` → `{ nav: { fleet: 'Fleet' } }`. */
export function byNamespace(files: Record<string, unknown>): Catalogue {
  const out: Catalogue = {};
  for (const [file, mod] of Object.entries(files)) {
    const namespace = /([^/]+)\.json$/.exec(file)?.[1];
    if (!namespace) continue;
    out[namespace] = (mod as { default?: unknown }).default ?? mod;
  }
  return out;
}

/**
 * Namespaces the first screens (the app shell, the dashboard, sign-in) use. Only these are in the
 * entry file; every other namespace arrives in one lazily loaded chunk per language, before any other
 * page renders (`startI18n(pathname)`). On a slow link the whole English catalogue in the entry cost
 * about 0.1 s of bytes and its parsing (docs/benchmarks.md, #14). Keep the two globs below in step.
 */
export const FIRST_NAMESPACES = ['auth', 'common', 'dashboard', 'errors', 'nav', 'shell', 'states'] as const;
/** Paths whose page needs only `FIRST_NAMESPACES`: they render without waiting for the rest. */
const FIRST_PATHS = new Set(['/', '/login']);

const englishFirst = byNamespace(
  import.meta.glob('./locales/en/{auth,common,dashboard,errors,nav,shell,states}.json', { eager: true }),
);
const lazy: Record<Locale, Record<string, () => Promise<unknown>>> = {
  en: import.meta.glob([
    './locales/en/*.json',
    '!./locales/en/{auth,common,dashboard,errors,nav,shell,states}.json',
  ]),
  fr: import.meta.glob('./locales/fr/*.json'),
  pt: import.meta.glob('./locales/pt/*.json'),
};

function isFirst(file: string): boolean {
  const namespace = /([^/]+)\.json$/.exec(file)?.[1] ?? '';
  return (FIRST_NAMESPACES as readonly string[]).includes(namespace);
}

/** A language's files, the first screens' (`first`) or all the others. */
async function loadFiles(tag: Locale, first: boolean): Promise<Catalogue> {
  const files = Object.entries(lazy[tag]).filter(([file]) => isFirst(file) === first);
  const loaded = await Promise.all(files.map(async ([file, load]) => [file, await load()] as const));
  return byNamespace(Object.fromEntries(loaded));
}

/** Every message loaded so far, per language, by full key (`nav.fleet`). */
const messages: Record<Locale, Map<string, Message>> = { en: new Map(), fr: new Map(), pt: new Map() };
/** Bumped whenever messages arrive, so that `$t` shows them. */
const revision = writable(0);
/** The language in use; null until `startI18n` has loaded its first screens' messages. */
const locale = writable<Locale | null>(null);

function addMessages(tag: Locale, catalogue: Catalogue) {
  const into = messages[tag];
  const walk = (prefix: string, value: unknown) => {
    if (typeof value === 'function') into.set(prefix, value as Message);
    else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
  };
  walk('', catalogue);
  revision.update((n) => n + 1);
}

addMessages('en', englishFirst);

const loads = { first: new Map<Locale, Promise<void>>(), rest: new Map<Locale, Promise<void>>() };

/**
 * A language's first screens' namespaces (`first`) or all the others, added once; a failed download
 * (a dropped connection) is tried again by the next call.
 */
function load(tag: Locale, part: keyof typeof loads): Promise<void> {
  let p = loads[part].get(tag);
  if (!p) {
    p = loadFiles(tag, part === 'first').then((catalogue) => addMessages(tag, catalogue));
    p.catch(() => loads[part].delete(tag));
    loads[part].set(tag, p);
  }
  return p;
}

/** A language's first screens' messages (English's are in the entry already). */
function loadFirst(tag: Locale): Promise<void> {
  return tag === DEFAULT_LOCALE ? Promise.resolve() : load(tag, 'first');
}

/**
 * The namespaces beyond the first screens', for a language and for English (the fallback of any key a
 * translation lacks).
 */
function loadRest(tag: Locale): Promise<void> {
  return Promise.all([load(DEFAULT_LOCALE, 'rest'), load(tag, 'rest')]).then(() => undefined);
}

/** The closest supported language to a tag such as `fr-CA` or `pt_BR`; English when none fits. */
export function supportedLocale(tag: string | null | undefined): Locale {
  const base = (tag ?? '').toLowerCase().split(/[-_]/)[0];
  return (LOCALES as readonly string[]).includes(base ?? '') ? (base as Locale) : DEFAULT_LOCALE;
}

const STORAGE_KEY = 'outpost.locale';

function remembered(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

let started: Promise<void> | null = null;

/**
 * Starts i18n once: the language remembered on this device, else the browser's. Await before rendering
 * the page at `pathname`: a first screen's page needs only the first namespaces (the others then load
 * in the background); any other page waits for all of them.
 */
export async function startI18n(pathname?: string): Promise<void> {
  started ??= (async () => {
    const tag = supportedLocale(
      remembered() ?? (typeof navigator === 'undefined' ? null : navigator.language),
    );
    await loadFirst(tag).catch(() => undefined);
    locale.set(messages[tag].size ? tag : DEFAULT_LOCALE);
    syncDocument();
  })();
  await started;
  if (pathname === undefined || !FIRST_PATHS.has(pathname)) return loadRest(currentLocale());
  // Later, not while the first screen downloads its data and draws (any other page still waits for
  // it): once the page's early requests are answered, when the browser is idle.
  const later = () => loadRest(currentLocale()).catch(() => undefined);
  void bootAnswered.then(() => {
    if (typeof requestIdleCallback === 'function') requestIdleCallback(later, { timeout: 3000 });
    else setTimeout(later, 1000);
  });
}

/** Switches the language (e.g. to the signed-in person's choice) and remembers it on this device. */
export async function useLocale(tag: string | null | undefined): Promise<void> {
  await startI18n();
  const next = supportedLocale(tag);
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    /* private mode: not remembered */
  }
  if (get(locale) !== next) {
    await loadFirst(next);
    locale.set(next);
  }
  // The person may be on any page: the new language's every namespace.
  await loadRest(next);
  syncDocument();
}

/** The language in use now (for Intl formatters). */
export function currentLocale(): Locale {
  return supportedLocale(get(locale));
}

function syncDocument() {
  if (typeof document !== 'undefined') document.documentElement.lang = currentLocale();
}

export interface TranslateOptions {
  /** The message's arguments: `{ count: 3 }` for `{count, plural, …}`. */
  values?: Record<string, unknown>;
  /** The text when no language has the key (else the key itself is shown). */
  default?: string;
}
export type Translate = (id: string, options?: TranslateOptions) => string;

/** A missing argument reads as empty text, not "undefined" (as ICU formatters do). */
const EMPTY_WHEN_MISSING: ProxyHandler<Record<string | symbol, unknown>> = { get: (o, k) => o[k] ?? '' };
/** The arguments of a message called without any (most of them): one object for all. */
const NO_ARGUMENTS = new Proxy({}, EMPTY_WHEN_MISSING);

function argumentsOf(values: Record<string, unknown> | undefined): Record<string, unknown> {
  return values ? new Proxy(values, EMPTY_WHEN_MISSING) : NO_ARGUMENTS;
}

function translate(tag: Locale, id: string, options?: TranslateOptions): string {
  const message = messages[tag].get(id) ?? messages[DEFAULT_LOCALE].get(id);
  if (!message) return options?.default ?? id;
  return message(argumentsOf(options?.values));
}

/** `$t('nav.fleet')`, `$t('sites.count', { values: { count } })` — ICU message syntax. */
export const t = derived<[typeof locale, typeof revision], Translate>(
  [locale, revision],
  ([tag]) =>
    (id: string, options?: TranslateOptions) =>
      translate(tag ?? DEFAULT_LOCALE, id, options),
);
