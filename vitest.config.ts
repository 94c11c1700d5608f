import { defineConfig } from 'vitest/config';

// One run, three projects: each package's tests get their own set-up. `npx vitest run` (and `npm test`)
// runs them all; a path (`npx vitest run bundler/src/…`) runs just that file in its project.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'api',
          include: ['api/src/**/*.test.ts'],
          globalSetup: ['api/src/test/global-setup.ts'],
        },
      },
      {
        extends: true,
        // The web's tests start the real server (e2e) or read the catalogues: no shared S3 server.
        test: {
          name: 'web',
          include: ['web/src/**/*.test.ts', 'web/e2e/**/*.test.ts', 'web/build-tools/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'bundler',
          include: ['bundler/src/**/*.test.ts'],
          globalSetup: ['bundler/src/test-support/global-setup.ts'],
        },
      },
    ],
  },
});
