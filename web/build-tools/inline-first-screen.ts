import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { init, parse } from 'es-module-lexer';
import type { Plugin, ResolvedConfig } from 'vite';

/**
 * Puts the first screen's scripts and stylesheet inside index.html, so that a cold load on a slow link
 * needs one round trip before the app starts instead of two (HTML, then the entry file): on "Fast 3G"
 * a round trip is 0.56 s of the 1.5 s the dashboard has to become interactive (#14,
 * docs/decisions.md "The first screen's code travels inside index.html").
 *
 * The modules stay modules, and stay shared with the pages loaded later. An import map names each
 * inlined module's usual address (`/_app/immutable/chunks/X.js`) and points it at a `blob:` URL holding
 * the module's code. A lazily loaded page that imports `./X.js` resolves to that address, the map turns
 * it into the same `blob:` URL, and the browser hands back the module it already evaluated: one Svelte
 * runtime, one router. Inside a `blob:` module relative addresses mean nothing, so its own imports are
 * rewritten to bare names the map resolves (`@outpost-app/_app/…`), and `import.meta.url` to the
 * module's usual address (Vite's preloading of a page's CSS and chunks is relative to it).
 */

/** The prefix of the bare names an inlined module's imports are rewritten to. */
export const BARE = '@outpost-app';

/** The file at a site path (`/_app/immutable/chunks/X.js`) of the build. */
export type ReadAsset = (sitePath: string) => string;

export interface Inlined {
  html: string;
  /** Site paths of the modules and stylesheets now inside the page. */
  inlined: string[];
}

/** `./X.js` seen from `/_app/immutable/chunks/Y.js` → `/_app/immutable/chunks/X.js`. */
function sitePathOf(specifier: string, from: string): string | null {
  if (!/^\.{1,2}\/|^\//.test(specifier)) return null;
  return new URL(specifier, `http://x${from}`).pathname;
}

/** A JS value that can sit inside a `<script>` element: no `</script>`, no `<!--`. */
function scriptValue(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

interface Module {
  path: string;
  code: string;
  /** What es-module-lexer found in `code`, read once. */
  imports: ReturnType<typeof parse>[0];
  /** Site paths it imports statically (evaluated before it runs). */
  staticImports: string[];
}

function readModule(path: string, read: ReadAsset): Module {
  const code = read(path);
  const [imports] = parse(code, path);
  const staticImports: string[] = [];
  for (const i of imports) {
    if (i.t !== 1 || !i.n) continue;
    const target = sitePathOf(i.n, path);
    if (target) staticImports.push(target);
  }
  return { path, code, imports, staticImports };
}

/**
 * The module's code with every relative import turned into a bare name of the map, and `import.meta`
 * into an object whose `url` is the module's usual address (and no `resolve`, so callers fall back to
 * `new URL(x, import.meta.url)`).
 */
function rewrite(module: Module): string {
  const { code, path, imports } = module;
  let out = '';
  let at = 0;
  let usesMeta = false;
  for (const i of imports) {
    if (i.d === -2) {
      out += code.slice(at, i.s) + '__outpostImportMeta';
      at = i.e;
      usesMeta = true;
      continue;
    }
    if (!i.n) {
      // A computed address (`import(x)`) would resolve against the blob: URL and fail.
      if (i.d > -1) throw new Error(`${path}: a dynamic import of a computed address cannot be inlined`);
      continue;
    }
    const target = sitePathOf(i.n, path);
    if (!target) continue;
    // Static imports span the bare specifier; dynamic ones its quotes (or backticks) as well.
    const quoted = i.d > -1;
    const replacement = quoted ? JSON.stringify(BARE + target) : BARE + target;
    out += code.slice(at, i.s) + replacement;
    at = i.e;
  }
  out += code.slice(at);
  if (!usesMeta) return out;
  return `const __outpostImportMeta={url:new URL(${JSON.stringify(path)},document.baseURI).href};${out}`;
}

/**
 * index.html as SvelteKit's static adapter wrote it, with the first screen's modules and stylesheet
 * inside: the import map goes before the first `modulepreload`, the inlined modules' preloads and the
 * stylesheet's link go, the stylesheet's rules go into a `<style>` in its place.
 */
export async function inlineFirstScreen(html: string, read: ReadAsset): Promise<Inlined> {
  await init;
  // SvelteKit's start: `import("/_app/immutable/bundle.X.js").then((app) => app.start(…))`.
  const boot = /import\("(\/_app\/immutable\/[^"]+\.js)"\)/.exec(html);
  if (!boot) throw new Error('index.html: SvelteKit’s start (import("/_app/immutable/….js")) was not found');
  let out = html;
  let first = boot[1]!;
  // Usually a façade, `export{n as app,t as start}from"./chunks/X.js"`: the start imports X itself, so
  // that X is inlined once (a module imported by another inlined one is named twice in the map).
  const facade = /^export\s*\{([^}]*)\}\s*from\s*"(\.[^"]+)";?\s*$/.exec(read(first));
  if (facade) {
    const names = facade[1]!.split(',').map((n) => n.trim().split(/\s+as\s+/));
    const target = sitePathOf(facade[2]!, first)!;
    const picks = names.map(([local, exported]) => `${exported ?? local}:m.${local}`).join(',');
    out = out.replace(boot[0], () => `import(${JSON.stringify(target)}).then((m)=>({${picks}}))`);
    out = out.replace(new RegExp(`[ \\t]*<link href="${escapeRegExp(first)}" rel="modulepreload">\\n?`), '');
    first = target;
  }

  // The start module and everything it imports statically: what runs before the first screen.
  const modules = new Map<string, Module>();
  const queue = [first];
  while (queue.length) {
    const path = queue.shift()!;
    if (modules.has(path)) continue;
    const m = readModule(path, read);
    modules.set(path, m);
    queue.push(...m.staticImports);
  }
  const importedByInlined = new Set([...modules.values()].flatMap((m) => m.staticImports));

  // Each inlined module: its code, and whether an inlined module imports it (by its bare name).
  const sources: Record<string, [string, 0 | 1]> = {};
  for (const m of modules.values()) sources[m.path] = [rewrite(m), importedByInlined.has(m.path) ? 1 : 0];

  const inlined = [...modules.keys()];
  for (const path of inlined)
    out = out.replace(new RegExp(`[ \\t]*<link href="${escapeRegExp(path)}" rel="modulepreload">\\n?`), '');
  out = out.replace(
    /<link href="(\/_app\/immutable\/assets\/[^"]+\.css)" rel="stylesheet">/g,
    (_link, path: string) => {
      inlined.push(path);
      return `<style>${read(path).replace(/<\/style/gi, '<\\/style')}</style>`;
    },
  );
  // A link per inlined module that fetches nothing (an unknown `rel`): Vite's preloading of a later
  // page skips any module some `<link>` already names, so these are not downloaded a second time.
  const marks = Object.keys(sources)
    .map((p) => `<link rel="outpost-inlined" href="${p}">\n`)
    .join('');
  const map = `<script>${importMapScript(sources)}</script>\n${marks}`;
  const anchor = /[ \t]*<link href="[^"]+" rel="modulepreload">|<style>|<\/head>/.exec(out);
  if (!anchor) throw new Error('index.html: no </head>');
  out = out.slice(0, anchor.index) + map + out.slice(anchor.index);
  return { html: out, inlined };
}

/**
 * A classic script that turns each module's code into a `blob:` URL and adds the import map naming
 * them, before any module loads. (`data:` URLs in a static map work too, but Chromium took 0.7 s
 * resolving a 200 kB one: docs/decisions.md.)
 */
function importMapScript(sources: Record<string, [string, 0 | 1]>): string {
  return `(function(m,i){for(var p in m){var u=URL.createObjectURL(new Blob([m[p][0]],{type:"text/javascript"}));i[p]=u;if(m[p][1])i[${scriptValue(BARE)}+p]=u}var s=document.createElement("script");s.type="importmap";s.textContent=JSON.stringify({imports:i});document.currentScript.after(s)})(${scriptValue(sources)},${scriptValue({ [`${BARE}/`]: '/' })})`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Rewrites `build/index.html` (and its brotli and gzip copies) once SvelteKit's adapter has written it:
 * the adapter runs while the server build writes its bundle, so this runs when that build closes.
 */
export function inlineFirstScreenPlugin(buildDir: string): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'outpost:inline-first-screen',
    apply: 'build',
    configResolved(resolved) {
      config = resolved;
    },
    async closeBundle() {
      if (!config.build.ssr) return;
      const index = path.join(buildDir, 'index.html');
      if (!fs.existsSync(index))
        throw new Error(`${index} was not written by the adapter before the build closed`);
      const read = (sitePath: string) => fs.readFileSync(path.join(buildDir, sitePath), 'utf8');
      const { html } = await inlineFirstScreen(fs.readFileSync(index, 'utf8'), read);
      fs.writeFileSync(index, html);
      // The adapter's copies are of the old page (`precompress`); the server sends them as they are.
      fs.writeFileSync(
        `${index}.br`,
        zlib.brotliCompressSync(html, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(html),
          },
        }),
      );
      fs.writeFileSync(`${index}.gz`, zlib.gzipSync(html, { level: zlib.constants.Z_BEST_COMPRESSION }));
    },
  };
}
