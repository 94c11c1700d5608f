import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'api/src/**/*.test.ts',
      'bundler/src/**/*.test.ts',
      'web/src/**/*.test.ts',
      'web/e2e/**/*.test.ts',
    ],
    globalSetup: ['api/src/test/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
