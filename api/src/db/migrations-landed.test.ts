import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// A migration that has landed on main has been applied to databases we do not control: changing it
// afterwards makes those databases differ from new ones without anyone noticing. Landed migrations
// are listed with their sha256 in migrations/landed.sha256 (add a new one there when it lands).
const dir = join(import.meta.dirname, '../../../migrations');

function landed(): { file: string; sha256: string }[] {
  return readFileSync(join(dir, 'landed.sha256'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [sha256, file] = line.split(/\s+/);
      return { file: file!, sha256: sha256! };
    });
}

describe('landed migrations', () => {
  it('should keep every landed migration byte for byte', () => {
    const changed = landed().filter(
      ({ file, sha256 }) =>
        createHash('sha256')
          .update(readFileSync(join(dir, file)))
          .digest('hex') !== sha256,
    );
    expect(changed.map((c) => c.file)).toEqual([]);
  });

  it('should keep the landed migrations first in the journal, in their order', () => {
    const journal = JSON.parse(readFileSync(join(dir, 'meta/_journal.json'), 'utf8')) as {
      entries: { tag: string }[];
    };
    const files = landed().map((l) => l.file);
    expect(journal.entries.slice(0, files.length).map((e) => `${e.tag}.sql`)).toEqual(files);
  });
});
