// The first screen's modules inlined into index.html, checked in real Chromium on a small build made
// here: the page starts with no script request, a page loaded later shares the inlined modules (one
// instance, not a second copy from the network), import.meta.url still names the usual address, and
// code holding `</script>`, `#`, `%` and newlines arrives byte for byte.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { BARE, inlineFirstScreen } from './inline-first-screen';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A build shaped like SvelteKit's: a façade start, an entry, a helpers chunk, a lazily loaded page. */
const FILES: Record<string, string> = {
  '/_app/immutable/bundle.abc.js': 'export{s as start,a as app}from"./chunks/entry.js";',
  '/_app/immutable/chunks/helpers.js': 'export const twice=(x)=>x*2;export const box={count:0};',
  '/_app/immutable/chunks/entry.js': [
    'import{twice as t,box as b}from"./helpers.js";',
    // Text a careless inliner would break: an end tag, a fragment mark, a percent sign, a newline.
    'const odd=`</script><!-- #top 100% done\nsecond line`;',
    'const a={name:"app"};',
    'function s(el){b.count++;window.__started={odd,url:import.meta.url,twice:t(21)};',
    // A page loaded later, as SvelteKit's router does: relative to this module.
    'return import(`./page.js`).then((p)=>{window.__page=p.describe()})}',
    'export{s,a};',
  ].join(''),
  '/_app/immutable/chunks/page.js':
    'import{box}from"./helpers.js";import{a}from"./entry.js";export function describe(){return{count:box.count,app:a.name}}',
  '/_app/immutable/assets/first.css': 'body{color:rgb(1, 2, 3)}',
};

const INDEX = `<!doctype html>
<html>
  <head>
    <title>t</title>
    <link href="/_app/immutable/bundle.abc.js" rel="modulepreload">
\t\t<link href="/_app/immutable/chunks/entry.js" rel="modulepreload">
\t\t<link href="/_app/immutable/chunks/helpers.js" rel="modulepreload">
\t\t<link href="/_app/immutable/assets/first.css" rel="stylesheet">
  </head>
  <body>
    <div><script>
      import("/_app/immutable/bundle.abc.js").then((app) => { app.start(document.body) });
    </script></div>
  </body>
</html>
`;

const read = (p: string) => {
  const f = FILES[p];
  if (f === undefined) throw new Error(`no ${p}`);
  return f;
};

let server: http.Server;
let base: string;
let browser: Browser;
let html: string;
const requested: string[] = [];

beforeAll(async () => {
  ({ html } = await inlineFirstScreen(INDEX, read));
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requested.push(url);
    if (url === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      return;
    }
    const body = FILES[url];
    if (body === undefined) res.writeHead(404).end();
    else
      res.writeHead(200, { 'content-type': url.endsWith('.css') ? 'text/css' : 'text/javascript' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
});

describe('inlineFirstScreen', () => {
  it('should start the app from the page alone, sharing its modules with a page loaded later', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    requested.length = 0;
    await page.goto(`${base}/`);
    await page.waitForFunction(() => (window as { __page?: unknown }).__page !== undefined);
    const seen = await page.evaluate(() => {
      const w = window as unknown as { __started: Record<string, unknown>; __page: Record<string, unknown> };
      return { started: w.__started, page: w.__page, color: getComputedStyle(document.body).color };
    });
    await page.close();

    expect(errors).toEqual([]);
    expect(seen.started).toEqual({
      odd: '</script><!-- #top 100% done\nsecond line',
      url: `${base}/_app/immutable/chunks/entry.js`,
      twice: 42,
    });
    // The later page saw the counter the start bumped and the entry's object: the same instances.
    expect(seen.page).toEqual({ count: 1, app: 'app' });
    expect(seen.color).toBe('rgb(1, 2, 3)');
    // Only the page and the lazily loaded one came over the network.
    expect(requested.filter((u) => u !== '/favicon.ico')).toEqual(['/', '/_app/immutable/chunks/page.js']);
  });

  it('should drop the inlined files’ links and name what it inlined', async () => {
    const out = await inlineFirstScreen(INDEX, read);
    expect(out.inlined.sort()).toEqual([
      '/_app/immutable/assets/first.css',
      '/_app/immutable/chunks/entry.js',
      '/_app/immutable/chunks/helpers.js',
    ]);
    expect(out.html).not.toMatch(/modulepreload|rel="stylesheet"|bundle\.abc\.js/);
    // Named for Vite's preloading (which then skips them), with a `rel` that fetches nothing.
    expect(out.html).toContain('<link rel="outpost-inlined" href="/_app/immutable/chunks/helpers.js">');
    expect(out.html).toContain(BARE);
    // The map is made before the start script runs.
    expect(out.html.indexOf('importmap')).toBeLessThan(
      out.html.indexOf('import("/_app/immutable/chunks/entry.js")'),
    );
  });

  it('should refuse a page without SvelteKit’s start, and a computed import it cannot rewrite', async () => {
    await expect(inlineFirstScreen('<html><head></head></html>', read)).rejects.toThrow(/start/);
    const computed: Record<string, string> = {
      ...FILES,
      '/_app/immutable/chunks/helpers.js': 'export const twice=(x)=>import(x);',
    };
    await expect(inlineFirstScreen(INDEX, (p) => computed[p]!)).rejects.toThrow(/computed address/);
  });
});
