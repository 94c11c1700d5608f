import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IntlMessageFormat } from 'intl-messageformat';
import MessageFormat from '@messageformat/core';

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

  // The app's messages are compiled at build time by messageformat (build-tools/messages.ts); the
  // reference here is formatjs's ICU formatter, which the app used before. Every message of every
  // language, with each argument taking values that exercise its branches, reads the same.
  it('should format every message as an ICU formatter does, compiled as the app compiles it', () => {
    const differences: string[] = [];
    let checked = 0;
    for (const locale of ['en', 'fr', 'pt']) {
      const compiler = new MessageFormat(locale, { strict: false });
      for (const [key, message] of catalogue(locale)) {
        const reference = new IntlMessageFormat(message, locale, undefined, { ignoreTag: true });
        const compiled = compiler.compile(message);
        for (const values of sampleValues(reference.getAst())) {
          checked++;
          const want = String(reference.format(values));
          const got = compiled(values);
          if (got !== want) differences.push(`${locale} ${key} ${JSON.stringify(values)}: ${got} ≠ ${want}`);
        }
      }
    }
    expect(differences).toEqual([]);
    expect(checked).toBeGreaterThan(english.size);
  });
});

interface AstNode {
  type: number;
  value?: string;
  options?: Record<string, { value: AstNode[] }>;
  children?: AstNode[];
}

/**
 * Values for a message's arguments: a plural's counts across the plural rules (0, 1, 2, 5, 21, 1,000
 * and a large one), each of a select's cases and one it lacks, a word for the others. One argument
 * varies at a time, the others keep their first value.
 */
function sampleValues(ast: unknown[]): Record<string, string | number>[] {
  const choices = new Map<string, (string | number)[]>();
  const walk = (nodes: AstNode[]) => {
    for (const n of nodes) {
      // formatjs: 1 argument, 5 select, 6 plural (the others are text, `#`, number, date, time, tag).
      if (n.type === 6 && n.value) choices.set(n.value, [0, 1, 2, 5, 21, 1000, 1234567]);
      else if (n.type === 5 && n.value)
        choices.set(n.value, [...Object.keys(n.options ?? {}).filter((k) => k !== 'other'), 'zz-unlisted']);
      else if (n.type === 1 && n.value && !choices.has(n.value)) choices.set(n.value, ['Kisumu']);
      for (const o of Object.values(n.options ?? {})) walk(o.value);
      if (n.children) walk(n.children);
    }
  };
  walk(ast as AstNode[]);
  const base = Object.fromEntries([...choices].map(([k, v]) => [k, v[0]!]));
  const out = [base];
  for (const [k, values] of choices) for (const v of values.slice(1)) out.push({ ...base, [k]: v });
  return out;
}
