import { get } from 'svelte/store';
import { _, getLocaleFromNavigator, init, locale, register, waitLocale } from 'svelte-i18n';

/**
 * The web app's languages. Messages live in `locales/<locale>/<namespace>.json` (one file per
 * feature, so features add strings without touching each other's files); a key is
 * `<namespace>.<rest>`, e.g. `nav.fleet` from `locales/en/nav.json` → `{ "fleet": "Fleet" }`.
 * English is bundled (it is also the fallback for a missing key); other languages load on demand.
 * See README.md beside this file.
 */
export const LOCALES = ['en', 'fr', 'pt'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

/** Each language's own name, for pickers (never translated). */
export const LOCALE_NAMES: Record<Locale, string> = { en: 'English', fr: 'Français', pt: 'Português' };

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

const english = byNamespace(import.meta.glob('./locales/en/*.json', { eager: true }));
register('en', () => Promise.resolve(english));
register('fr', async () => byNamespace(await loadAll(import.meta.glob('./locales/fr/*.json'))));
register('pt', async () => byNamespace(await loadAll(import.meta.glob('./locales/pt/*.json'))));

async function loadAll(lazy: Record<string, () => Promise<unknown>>): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    Object.entries(lazy).map(async ([file, load]) => [file, await load()] as const),
  );
  return Object.fromEntries(entries);
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

/** Starts i18n once: the language remembered on this device, else the browser's. Await before rendering. */
export function startI18n(): Promise<void> {
  started ??= (async () => {
    init({
      fallbackLocale: DEFAULT_LOCALE,
      initialLocale: supportedLocale(remembered() ?? getLocaleFromNavigator()),
    });
    await waitLocale();
    syncDocument();
  })();
  return started;
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
    await locale.set(next);
    await waitLocale(next);
  }
  syncDocument();
}

/** The language in use now (for Intl formatters). */
export function currentLocale(): Locale {
  return supportedLocale(get(locale));
}

function syncDocument() {
  if (typeof document !== 'undefined') document.documentElement.lang = currentLocale();
}

/** `$t('nav.fleet')`, `$t('sites.count', { values: { count } })` — ICU message syntax. */
export const t = _;
export { locale };
