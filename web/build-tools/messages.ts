import fs from 'node:fs';
import path from 'node:path';
import MessageFormat from '@messageformat/core';
import compileModule from '@messageformat/core/lib/compile-module.js';
import type { Plugin } from 'vite';

/**
 * The message catalogues (`src/lib/i18n/locales/<lang>/<namespace>.json`, ICU MessageFormat) compiled
 * into JavaScript functions when the app is built, by messageformat: the browser neither downloads a
 * message parser nor parses a message (on the dashboard's first screen that was 32 kB of parser and
 * 0.1–0.2 s of parsing and formatter set-up on a slow machine: docs/decisions.md, #14).
 *
 * An import of a catalogue file resolves to `<file>.messages.js`, whose code `compileMessages` writes:
 * a module whose default export has the file's shape with a function in place of each message.
 */

const CATALOGUE = /[\\/]locales[\\/](\w+)[\\/](\w+)\.json$/;
const SUFFIX = '.messages.js';

/** The JSON of one catalogue file as the source of an ES module of message functions. */
export function compileMessages(locale: string, json: string): string {
  // The catalogues' apostrophes follow ICU's usual rule (`'` quotes only before `{`, `}` or `#`).
  const mf = new MessageFormat(locale, { strict: false });
  return compileModule(mf, JSON.parse(json) as Parameters<typeof compileModule>[1]);
}

export function messagesPlugin(): Plugin {
  let root = process.cwd();
  return {
    name: 'outpost:messages',
    enforce: 'pre',
    configResolved(config) {
      root = config.root;
    },
    async resolveId(source, importer, options) {
      // Already ours (or, in development, the browser asking for it by its root-relative URL).
      if (source.endsWith(SUFFIX)) {
        const file = source.slice(0, -SUFFIX.length);
        for (const candidate of [file, path.join(root, file)])
          if (CATALOGUE.test(candidate) && fs.existsSync(candidate)) return `${candidate}${SUFFIX}`;
        return null;
      }
      if (!importer || !source.endsWith('.json')) return null;
      const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
      if (!resolved || !CATALOGUE.test(resolved.id)) return null;
      return `${resolved.id}${SUFFIX}`;
    },
    load(id) {
      if (!id.endsWith(SUFFIX)) return null;
      const file = id.slice(0, -SUFFIX.length);
      const match = CATALOGUE.exec(file);
      if (!match || !path.isAbsolute(file)) return null;
      this.addWatchFile(file);
      return compileMessages(match[1]!, fs.readFileSync(file, 'utf8'));
    },
  };
}
