import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED, generateComposeValidator } from '../../../scripts/compose-validator.ts';

describe('precompiled compose-spec validator', () => {
  it('should match compose-spec.json (run `npm run gen:compose -w api` after updating the schema)', () => {
    expect(fs.readFileSync(GENERATED, 'utf8')).toBe(generateComposeValidator());
  });

  it('should not compile code at run time (Workers forbid new Function)', () => {
    const code = fs.readFileSync(GENERATED, 'utf8');
    expect(code).not.toMatch(/new Function|\beval\(|require\(/);
  });
});
