import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IntlMessageFormat } from 'intl-messageformat';

const root = join(import.meta.dirname, 'locales');

/** Every message of a language as `namespace.path.to.key` → text. */
function catalogue(locale: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (prefix: string, value: unknown) => {
    if (typeof value === 'string') out.set(prefix, value);
    else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(`${prefix}.${k}`, v);
    } else throw new Error(`${locale}: ${prefix} is neither text nor a group`);
  };
  for (const file of readdirSync(join(root, locale)).filter((f) => f.endsWith('.json'))) {
    walk(file.replace(/\.json$/, ''), JSON.parse(readFileSync(join(root, locale, file), 'utf8')));
  }
  return out;
}

/** The argument names a message uses ({count}, {name, plural, …}), which every translation must keep. */
function argumentsOf(locale: string, message: string): string[] {
  const names = new Set<string>();
  const walk = (nodes: unknown[]) => {
    for (const n of nodes as {
      type: number;
      value?: string;
      options?: Record<string, { value: unknown[] }>;
      children?: unknown[];
    }[]) {
      if (n.type !== 0 && n.type !== 7 && typeof n.value === 'string') names.add(n.value);
      for (const o of Object.values(n.options ?? {})) walk(o.value);
      if (n.children) walk(n.children);
    }
  };
  walk(new IntlMessageFormat(message, locale).getAst());
  return [...names].sort();
}

describe('message catalogues', () => {
  const english = catalogue('en');

  it('should have English messages', () => {
    expect(english.size).toBeGreaterThan(0);
  });

  it('should have every English key in French, and no French key English lacks', () => {
    const french = catalogue('fr');
    expect([...english.keys()].filter((k) => !french.has(k))).toEqual([]);
    expect([...french.keys()].filter((k) => !english.has(k))).toEqual([]);
  });

  it('should have no Portuguese key English lacks (Portuguese may be partial; English fills gaps)', () => {
    const portuguese = catalogue('pt');
    expect([...portuguese.keys()].filter((k) => !english.has(k))).toEqual([]);
  });

  it('should parse every message and keep the same arguments in each translation', () => {
    for (const locale of ['fr', 'pt']) {
      for (const [key, message] of catalogue(locale)) {
        expect({ key, args: argumentsOf(locale, message) }).toEqual({
          key,
          args: argumentsOf('en', english.get(key)!),
        });
      }
    }
  });
});
