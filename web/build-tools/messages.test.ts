// A catalogue file compiled as the build compiles it, then imported and called as the app calls it.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compileMessages } from './messages';

// Beside this file, so that the module's import of @messageformat/runtime resolves as in the app.
const written: string[] = [];
async function load(locale: string, catalogue: unknown) {
  const file = path.join(import.meta.dirname, `.compiled-${locale}-${process.pid}-${written.length}.mjs`);
  fs.writeFileSync(file, compileMessages(locale, JSON.stringify(catalogue)));
  written.push(file);
  return (await import(pathToFileURL(file).href)).default;
}

afterAll(() => {
  for (const f of written) fs.rmSync(f, { force: true });
});

describe('compileMessages', () => {
  it('should turn each message of a nested catalogue into a function with the language’s plural rules', async () => {
    const fr = await load('fr', {
      title: 'Tableau de bord',
      sites: { count: '{count, plural, one {# site} other {# sites}} en {region}' },
      state: "{state, select, online {En ligne} other {Hors ligne}} : l'heure",
    });
    expect(fr.title()).toBe('Tableau de bord');
    // French says "1 site" and "0 site" (one covers 0 and 1), and groups thousands with a narrow space.
    expect(fr.sites.count({ count: 0, region: 'Nord' })).toBe('0 site en Nord');
    expect(fr.sites.count({ count: 1500, region: 'Sud' })).toBe(
      `${(1500).toLocaleString('fr')} sites en Sud`,
    );
    expect(fr.state({ state: 'online' })).toBe("En ligne : l'heure");
    expect(fr.state({ state: 'failed' })).toBe("Hors ligne : l'heure");

    const en = await load('en', { n: '{count, plural, one {# site} other {# sites}}' });
    expect(en.n({ count: 0 })).toBe('0 sites');
    expect(en.n({ count: 1 })).toBe('1 site');
  });

  it('should refuse a message that is not ICU MessageFormat', () => {
    expect(() => compileMessages('en', JSON.stringify({ broken: '{count, plural, one {# site}' }))).toThrow();
  });
});
