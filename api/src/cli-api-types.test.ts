import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_API_TYPES, cliApiTypes, openApiDocument } from '../scripts/cli-api-types.ts';

describe("the CLI's types of the API (bundler/src/cli/api-types.generated.ts)", () => {
  it("should be what the API's OpenAPI document gives today (else run npm run gen:cli-types -w api)", async () => {
    const expected = await cliApiTypes(await openApiDocument());
    expect(fs.readFileSync(CLI_API_TYPES, 'utf8')).toBe(expected);
  });

  it('should describe the answers the CLI reads', async () => {
    const doc = (await openApiDocument()) as unknown as { paths: Record<string, Record<string, unknown>> };
    for (const [path, method] of [
      ['/api/v1/releases', 'get'],
      ['/api/v1/bundles', 'get'],
      ['/api/v1/bundles', 'post'],
      ['/api/v1/bundles/{id}', 'get'],
      ['/api/v1/bundles/{id}/links', 'get'],
      ['/api/v1/releases/{id}/bundle-status', 'get'],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
  });
});
