import fs from 'node:fs';
import path from 'node:path';
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig, type Plugin } from 'vite';
import { inlineFirstScreenPlugin } from './build-tools/inline-first-screen';
import { messagesPlugin } from './build-tools/messages';

/**
 * Route files whose code the first screen (the dashboard at `/`) needs. On a slow link every wave of
 * modules costs a round trip (0.56 s on "Fast 3G"), so these go into the entry file itself, which
 * build-tools/inline-first-screen.ts then puts inside index.html (docs/benchmarks.md, #14;
 * docs/decisions.md).
 */
const FIRST_SCREEN = [
  'src/routes/+layout.',
  'src/routes/+error.',
  'src/routes/(app)/+layout.',
  'src/routes/(app)/+error.',
  'src/routes/(app)/+page.',
];

/**
 * With `bundleStrategy: 'single'` SvelteKit builds one file and turns code splitting off. This puts
 * splitting back, and makes the first screen's route nodes static imports of the generated manifest:
 * the entry file then holds the app shell and the dashboard, and every other page (and the chart
 * library, the other languages) stays in lazily loaded chunks.
 */
/** Keep in step with FIRST_NAMESPACES in src/lib/i18n/index.ts. */
const FIRST_NAMESPACES = new Set(['auth', 'common', 'dashboard', 'errors', 'nav', 'shell', 'states']);

function firstScreenInEntry(): Plugin {
  return {
    name: 'outpost:first-screen-in-entry',
    apply: 'build',
    configResolved(config) {
      if (config.build.ssr) return;
      const output = config.build.rollupOptions.output;
      for (const o of Array.isArray(output) ? output : output ? [output] : [])
        (o as { codeSplitting?: unknown }).codeSplitting = {
          // Everything the entry imports statically in one chunk, not in common chunks by importer.
          groups: [
            { name: 'first', tags: ['$initial'] },
            // The other messages: one chunk per language (and its first screens' part), not one per file.
            {
              name: (id: string) => {
                const m = /locales[\\/](\w+)[\\/](\w+)\.json(?:\.messages\.js)?$/.exec(id);
                if (!m) return null;
                return `messages-${m[1]}${FIRST_NAMESPACES.has(m[2]!) ? '-first' : ''}`;
              },
            },
          ],
        };
    },
    transform(code, id) {
      if (!/generated[\\/]client-optimized[\\/]app\.js$/.test(id)) return;
      const dir = path.dirname(id);
      const eager: string[] = [];
      const rewritten = code.replace(/\(\) => import\('\.\/nodes\/(\d+)'\)/g, (call, n: string) => {
        const node = fs.readFileSync(path.join(dir, 'nodes', `${n}.js`), 'utf8');
        if (!FIRST_SCREEN.some((route) => node.includes(route))) return call;
        eager.push(`import * as node_${n} from './nodes/${n}';`);
        return `() => Promise.resolve(node_${n})`;
      });
      return { code: `${eager.join('\n')}\n${rewritten}`, map: null };
    },
  };
}

export default defineConfig({
  plugins: [
    messagesPlugin(),
    sveltekit(),
    firstScreenInEntry(),
    inlineFirstScreenPlugin(path.resolve(import.meta.dirname, 'build')),
  ],
  server: {
    // In development the API runs separately (npm run dev -w api) and is reached through this proxy,
    // so the dashboard stays same-origin: the session cookie works, and keeping the Host header
    // (changeOrigin: false) lets the login's Origin-vs-Host check pass as in production.
    proxy: { '/api': { target: 'http://localhost:8787', changeOrigin: false } },
  },
});
