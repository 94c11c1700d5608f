import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  kit: {
    // A single-page app: the API serves build/ and falls back to index.html for every path.
    // `precompress`: brotli and gzip copies of every file, which the Node server sends as they are.
    adapter: adapter({
      pages: 'build',
      assets: 'build',
      fallback: 'index.html',
      precompress: true,
      strict: true,
    }),
    // One entry file holding the first screen's code (vite.config.ts splits the other pages back out):
    // on a slow link each wave of modules is a round trip (docs/decisions.md, #14).
    output: { bundleStrategy: 'single' },
  },
};
