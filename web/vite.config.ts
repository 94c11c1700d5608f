import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    // In development the API runs separately (npm run dev -w api); same origin through the proxy,
    // so the session cookie and CSRF rules behave as in production.
    proxy: { '/api': { target: 'http://localhost:8787', changeOrigin: false } },
  },
});
