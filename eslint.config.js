// Lint and architecture rules for the whole workspace (one config, flat format).
// Formatting is Prettier's job; eslint-config-prettier switches off every rule that would fight it.
// The boundary rules at the end are the layers of docs/architecture.md, enforced.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import svelte from 'eslint-plugin-svelte';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

const DRIVERS = [
  'pg',
  '@electric-sql/pglite',
  '@electric-sql/pglite/*',
  '@neondatabase/serverless',
  'drizzle-orm/node-postgres',
  'drizzle-orm/node-postgres/*',
  'drizzle-orm/pglite',
  'drizzle-orm/pglite/*',
  'drizzle-orm/neon-serverless',
  'drizzle-orm/neon-serverless/*',
  'drizzle-orm/neon-http',
];
const driverRule = {
  group: DRIVERS,
  message: 'Database drivers are imported only by api/src/db/client-*.ts; take a Db from the caller.',
};
// A later block's no-restricted-imports replaces an earlier one's for the same file (flat config does
// not merge a rule's options), so every layer's list starts again from the driver rule.
const restrictImports = (...patterns) => ['error', { patterns: [driverRule, ...patterns] }];
const TESTS = ['**/*.test.ts', '**/test/**', '**/test-support/**', 'bench/**'];

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'web/build/**',
      'web/.svelte-kit/**',
      '.wrangler/**',
      '.outpost/**',
      'migrations/**',
      'api/src/services/releases/compose-validate.generated.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs['flat/recommended'],
  prettier,
  ...svelte.configs['flat/prettier'],
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // The dashboard is served by the API at its origin's root (paths.base is always ''), so links need
      // no resolve(); wrapping 56 plain hrefs would add noise without changing one URL.
      'svelte/no-navigation-without-resolve': 'off',
      // Outpost refuses control characters on purpose (the NUL/control middleware, plain-text README and
      // CLI output, receipt codes): every control character in a regular expression here is deliberate.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },

  // ── Boundaries ────────────────────────────────────────────────────────────────────────────────
  {
    // Only entry files read the environment; everything below them receives explicit config.
    files: ['api/src/**/*.ts', 'bundler/src/**/*.ts', 'web/src/**/*.ts', 'web/src/**/*.svelte'],
    ignores: [
      'api/src/node.ts',
      'api/src/**/*-cli.ts',
      'api/src/seed.ts',
      'bundler/src/cli/main.ts',
      ...TESTS,
    ],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Only entry files read process.env; pass config down.',
        },
      ],
    },
  },
  {
    files: ['api/**/*.ts', 'bundler/**/*.ts', 'web/**/*.ts', 'web/**/*.svelte', 'scripts/**'],
    ignores: ['api/src/db/client-*.ts', ...TESTS],
    rules: { 'no-restricted-imports': restrictImports() },
  },
  {
    files: ['api/src/services/**/*.ts'],
    ignores: TESTS,
    rules: {
      'no-restricted-imports': restrictImports(
        { group: ['hono', 'hono/*', '@hono/*'], message: 'Services know nothing of HTTP: no hono.' },
        { group: ['**/routes/**'], message: 'Services do not import routes; routes call services.' },
      ),
      'no-restricted-globals': [
        'error',
        { name: 'Response', message: 'Services return data or a byte source; routes build the Response.' },
        { name: 'Request', message: 'Services take typed input, not an HTTP request.' },
        { name: 'Headers', message: 'Services know nothing of HTTP headers.' },
      ],
    },
  },
  {
    files: ['bundler/**/*.ts'],
    ignores: TESTS,
    rules: {
      'no-restricted-imports': restrictImports(
        {
          group: ['@outpost/api', '@outpost/api/*', '**/api/src/**'],
          message: 'The bundler sits below the API.',
        },
        { group: ['drizzle-orm', 'drizzle-orm/*'], message: 'The bundler imports no database.' },
      ),
    },
  },
  {
    files: ['web/**/*.ts', 'web/**/*.svelte'],
    rules: {
      'no-restricted-imports': restrictImports({
        group: ['**/api/src/**', '@outpost/api/src/**'],
        message: "The web reaches the API's code only through @outpost/api's declared exports.",
      }),
    },
  },
);
