import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    // In development the API runs separately (npm run dev -w api) and is reached through this proxy,
    // so the dashboard stays same-origin: the session cookie works, and keeping the Host header
    // (changeOrigin: false) lets the login's Origin-vs-Host check pass as in production.
    proxy: { '/api': { target: 'http://localhost:8787', changeOrigin: false } },
  },
});
