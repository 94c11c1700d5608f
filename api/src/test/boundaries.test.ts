import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';

// The layer rules of docs/architecture.md live in eslint.config.js and `npm test` lints the tree;
// this test proves the rules themselves are still there, by linting code that breaks each one.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function ruleMessages(code: string, filePath: string) {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.ruleId);
}

describe('layer rules (eslint.config.js)', () => {
  it('should keep HTTP, the environment and drivers out of services', async () => {
    const code = [
      "import { Hono } from 'hono';",
      "import pg from 'pg';",
      "export const r = new Response('');",
      'export const e = process.env.X;',
      'export { Hono, pg };',
    ].join('\n');
    expect(await ruleMessages(code, 'api/src/services/sites/example.ts')).toEqual([
      'no-restricted-imports',
      'no-restricted-imports',
      'no-restricted-globals',
      'no-restricted-properties',
    ]);
  });

  it('should let routes use HTTP but not drivers, and let only the db clients import a driver', async () => {
    const code = "import { Hono } from 'hono';\nimport pg from 'pg';\nexport { Hono, pg };";
    expect(await ruleMessages(code, 'api/src/routes/example.ts')).toEqual(['no-restricted-imports']);
    expect(await ruleMessages(code, 'api/src/db/client-example.ts')).toEqual([]);
  });

  it('should keep the bundler below the API and away from the database', async () => {
    const code =
      "import { createApp } from '@outpost/api';\nimport { sql } from 'drizzle-orm';\nexport { createApp, sql };";
    expect(await ruleMessages(code, 'bundler/src/example.ts')).toEqual([
      'no-restricted-imports',
      'no-restricted-imports',
    ]);
  });

  it("should let the web reach the API's code only through its package exports", async () => {
    const relative =
      "import { normalise } from '../../../api/src/services/receipts/code.ts';\nexport { normalise };";
    expect(await ruleMessages(relative, 'web/src/lib/example.ts')).toEqual(['no-restricted-imports']);
    const exported = "import { normalise } from '@outpost/api/receipt-code';\nexport { normalise };";
    expect(await ruleMessages(exported, 'web/src/lib/example.ts')).toEqual([]);
  });
});
