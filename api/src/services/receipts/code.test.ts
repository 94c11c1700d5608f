import { describe, expect, it } from 'vitest';
import {
  RECEIPT_CODE_ALPHABET as ALPHABET,
  RECEIPT_CODE_MESSAGES,
  RECEIPT_OUTCOMES,
  checkReceiptCode,
  decodeReceiptCode,
  encodeReceiptCode,
  keyFromHex,
  receiptCodeMessage,
  receiptVersionHint,
  verifyReceiptCode,
  type ReceiptOutcome,
} from './code.ts';
import { receiptVectors } from '../../test/receipt-vectors.ts';

const vectors = receiptVectors;

const SITE = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const OTHER_SITE = 'c9bf9e57-1685-4c89-bafb-ff5af830be8a';
const KEY = keyFromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
const OTHER_KEY = keyFromHex('ff'.repeat(32));

// Deterministic so a failure can be replayed.
function rng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const symbolsOf = (code: string) => [...code.replace(/-/g, '')].map((ch) => ALPHABET.indexOf(ch));
const codeOf = (symbols: number[]) => symbols.map((v) => ALPHABET[v]).join('');
const inverse = (w: number) => [...Array(31).keys()].find((x) => (w * x) % 31 === 1)!;

describe('receipt codes', () => {
  it('should reproduce every code vector and its intermediate values', async () => {
    for (const v of vectors.codes) {
      const key = keyFromHex(v.keyHex);
      const code = await encodeReceiptCode({
        key,
        siteId: v.siteId,
        version: v.version,
        outcome: v.outcome,
        at: new Date(v.at),
      });
      expect(code, v.name).toBe(v.expected.code);
      expect(receiptCodeMessage(v.siteId, v.version, v.outcome, v.expected.minute), v.name).toBe(
        v.expected.message,
      );
      expect(await receiptVersionHint(v.version), v.name).toBe(v.expected.versionHint);
      const decoded = decodeReceiptCode(code);
      expect(decoded, v.name).toMatchObject({
        ok: true,
        normalized: code,
        format: 1,
        outcome: v.outcome,
        minute: v.expected.minute,
        versionHint: v.expected.versionHint,
      });
      const verified = await verifyReceiptCode({
        key,
        siteId: v.siteId,
        code,
        candidateVersions: ['0.0.1', v.version, '9.9.9'],
      });
      expect(verified, v.name).toEqual({
        ok: true,
        normalized: code,
        version: v.version,
        outcome: v.outcome,
        at: new Date(Math.floor(new Date(v.at).getTime() / 60_000) * 60_000),
      });
    }
  });

  it('should fail every invalid vector with the expected reason', async () => {
    for (const v of vectors.invalid) {
      const r = await verifyReceiptCode({
        key: keyFromHex(v.keyHex),
        siteId: v.siteId,
        code: v.input,
        candidateVersions: v.candidateVersions,
      });
      expect(r.ok, v.name).toBe(false);
      if (r.ok) continue;
      expect(r.reason, v.name).toBe(v.expected.reason);
      if (v.expected.message) expect(r.message, v.name).toBe(v.expected.message);
    }
  });

  it('should round-trip random inputs through encode, decode and verify', async () => {
    const rand = rng(7);
    const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
    for (let i = 0; i < 200; i++) {
      const key = keyFromHex(hex(64));
      const siteId = `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
      const version = `${i % 7}.${Math.floor(rand() * 40)}.${Math.floor(rand() * 300)}${i % 3 ? '' : '-hotfix.' + i}`;
      const outcome = RECEIPT_OUTCOMES[i % 3]!;
      const at = new Date(
        Date.UTC(2024, 0, 1) + Math.floor(rand() * 2 ** 24) * 60_000 + Math.floor(rand() * 60_000),
      );
      const code = await encodeReceiptCode({ key, siteId, version, outcome, at });
      expect(code).toMatch(/^[8-9A-E][2-9A-HJKMNP-Z]{3}(-[2-9A-HJKMNP-Z]{4}){3}$/);
      const r = await verifyReceiptCode({ key, siteId, code, candidateVersions: ['1.0.0', version] });
      expect(r).toEqual({
        ok: true,
        normalized: code,
        version,
        outcome,
        at: new Date(Math.floor(at.getTime() / 60_000) * 60_000),
      });
    }
  });

  it('should give two installs a minute apart on the same day different codes', async () => {
    const base = { key: KEY, siteId: SITE, version: '2.4.1', outcome: 'installed' as const };
    const a = await encodeReceiptCode({ ...base, at: new Date('2025-03-04T10:22:59Z') });
    const b = await encodeReceiptCode({ ...base, at: new Date('2025-03-04T10:23:00Z') });
    expect(a).not.toBe(b);
    expect(decodeReceiptCode(b)).toMatchObject({ at: new Date('2025-03-04T10:23:00Z') });
  });

  it('should catch every single-character substitution with the check character', async () => {
    const codes = vectors.codes.map((v) => v.expected.code);
    for (const code of codes) {
      const symbols = symbolsOf(code);
      for (let pos = 0; pos < 16; pos++) {
        for (let v = 0; v < 31; v++) {
          if (v === symbols[pos]) continue;
          const typo = symbols.slice();
          typo[pos] = v;
          const r = checkReceiptCode(codeOf(typo));
          expect(r.ok ? 'ok' : r.reason, `${code} with ${ALPHABET[v]} at ${pos + 1}`).toBe('checksum');
        }
      }
    }
  });

  it('should catch every adjacent transposition, exhaustively over positions and symbol pairs', () => {
    let checked = 0;
    for (let i = 0; i < 15; i++) {
      for (let a = 0; a < 31; a++) {
        for (let b = 0; b < 31; b++) {
          if (a === b) continue;
          // A code with a, b at positions i, i+1 and a valid check sum, solved at a free position.
          const s = Array.from({ length: 16 }, (_, k) => (k * 7 + 3) % 31);
          s[i] = a;
          s[i + 1] = b;
          const free = i >= 2 ? 0 : 15;
          s[free] = 0;
          const sum = s.reduce((acc, d, k) => acc + (k + 1) * d, 0) % 31;
          s[free] = ((31 - sum) * inverse(free + 1)) % 31;
          const good = checkReceiptCode(codeOf(s));
          expect(good.ok || good.reason !== 'checksum', `valid sum ${codeOf(s)}`).toBe(true);
          [s[i], s[i + 1]] = [s[i + 1]!, s[i]!];
          const swapped = checkReceiptCode(codeOf(s));
          expect(swapped.ok ? 'ok' : swapped.reason, `swap at ${i + 1}`).toBe('checksum');
          checked++;
        }
      }
    }
    expect(checked).toBe(15 * 31 * 30);
  });

  it('should catch adjacent transpositions of real codes, across the group dashes too', () => {
    for (const {
      expected: { code },
    } of vectors.codes) {
      const s = symbolsOf(code);
      for (let i = 0; i < 15; i++) {
        if (s[i] === s[i + 1]) continue;
        const t = s.slice();
        [t[i], t[i + 1]] = [t[i + 1]!, t[i]!];
        const r = checkReceiptCode(codeOf(t));
        expect(r.ok ? 'ok' : r.reason, `${code} swap ${i + 1}`).toBe('checksum');
      }
    }
  });

  it('should answer no-match for a wrong key, a wrong site or a version not among the candidates', async () => {
    const code = await encodeReceiptCode({
      key: KEY,
      siteId: SITE,
      version: '2.4.1',
      outcome: 'failed',
      at: new Date('2025-05-05T05:05:05Z'),
    });
    const noMatch = { ok: false, reason: 'no-match', message: RECEIPT_CODE_MESSAGES.noMatch };
    expect(
      await verifyReceiptCode({ key: OTHER_KEY, siteId: SITE, code, candidateVersions: ['2.4.1'] }),
    ).toEqual(noMatch);
    expect(
      await verifyReceiptCode({ key: KEY, siteId: OTHER_SITE, code, candidateVersions: ['2.4.1'] }),
    ).toEqual(noMatch);
    expect(
      await verifyReceiptCode({
        key: KEY,
        siteId: SITE,
        code,
        candidateVersions: ['2.4.0', '2.4.1 ', '2.4.1-hotfix'],
      }),
    ).toEqual(noMatch);
    expect(await verifyReceiptCode({ key: KEY, siteId: SITE, code, candidateVersions: [] })).toEqual(noMatch);
    expect(
      await verifyReceiptCode({ key: KEY, siteId: SITE.toUpperCase(), code, candidateVersions: ['2.4.1'] }),
    ).toMatchObject({ ok: true });
  });

  it('should pick the right version among candidates that share its hint', async () => {
    const hint = await receiptVersionHint('2.4.1');
    const sameHint: string[] = [];
    for (let i = 0; sameHint.length < 5; i++) {
      const v = `2.${i}.0`;
      if (v !== '2.4.1' && (await receiptVersionHint(v)) === hint) sameHint.push(v);
    }
    const code = await encodeReceiptCode({
      key: KEY,
      siteId: SITE,
      version: '2.4.1',
      outcome: 'installed',
      at: new Date('2025-01-01T00:00:00Z'),
    });
    const r = await verifyReceiptCode({
      key: KEY,
      siteId: SITE,
      code,
      candidateVersions: [...sameHint, '2.4.1', ...sameHint],
    });
    expect(r).toMatchObject({ ok: true, version: '2.4.1' });
  });

  it('should accept lower case, spaces, missing or odd dashes and full-width characters', async () => {
    for (const f of vectors.inputForms) {
      expect(checkReceiptCode(f.input), f.name).toEqual({ ok: true, normalized: f.expected.normalized });
    }
    const code = vectors.codes[0]!.expected.code;
    const fullWidth = [...code]
      .map((ch) => (ch === '-' ? '－' : String.fromCharCode(ch.charCodeAt(0) + 0xfee0)))
      .join('');
    expect(checkReceiptCode(fullWidth)).toEqual({ ok: true, normalized: code });
    expect(checkReceiptCode(`\u00a0${code.toLowerCase().replace(/-/g, '—')}\n`)).toEqual({
      ok: true,
      normalized: code,
    });
    const v = vectors.codes[0]!;
    expect(
      await verifyReceiptCode({
        key: keyFromHex(v.keyHex),
        siteId: v.siteId,
        code: ` ${code.replace(/-/g, ' ').toLowerCase()} `,
        candidateVersions: [v.version],
      }),
    ).toMatchObject({ ok: true, normalized: code });
  });

  it('should explain confusable characters in plain words instead of guessing', () => {
    const code = vectors.codes[0]!.expected.code;
    const cases: [string, string][] = [
      ['O', 'The code has no letter O. Check the code again.'],
      ['o', 'The code has no letter O. Check the code again.'],
      ['0', 'The code has no number 0 (zero). Check the code again.'],
      ['1', 'The code has no number 1 (one). Check the code again.'],
      ['I', 'The code has no letter I. Check the code again.'],
      ['i', 'The code has no letter I. Check the code again.'],
      ['L', 'The code has no letter L. Check the code again.'],
      ['l', 'The code has no letter L. Check the code again.'],
    ];
    for (const [ch, message] of cases) {
      expect(checkReceiptCode(code.slice(0, 6) + ch + code.slice(7)), ch).toEqual({
        ok: false,
        reason: 'malformed',
        message,
      });
    }
  });

  it('should say plainly what else is wrong with what was typed', () => {
    const code = vectors.codes[0]!.expected.code;
    expect(checkReceiptCode('  ')).toEqual({
      ok: false,
      reason: 'malformed',
      message: RECEIPT_CODE_MESSAGES.empty,
    });
    expect(checkReceiptCode(code.slice(0, -1))).toMatchObject({
      ok: false,
      reason: 'malformed',
      message: expect.stringMatching(/too short.*16.*typed 15/),
    });
    expect(checkReceiptCode(code + 'A')).toMatchObject({
      ok: false,
      reason: 'malformed',
      message: expect.stringMatching(/too long.*typed 17/),
    });
    expect(checkReceiptCode(code.replace('-', '#'))).toEqual({
      ok: false,
      reason: 'malformed',
      message: 'The code has only letters and numbers. Remove the “#”.',
    });
    const typo = codeOf(symbolsOf(code).map((v, i) => (i === 3 ? (v + 1) % 31 : v)));
    expect(checkReceiptCode(typo)).toEqual({
      ok: false,
      reason: 'checksum',
      message: RECEIPT_CODE_MESSAGES.checksum,
    });
  });

  it('should check codes synchronously without a key, for the browser', () => {
    const r = checkReceiptCode(vectors.codes[0]!.expected.code);
    expect(r).not.toBeInstanceOf(Promise);
    expect(r.ok).toBe(true);
  });

  it('should refuse programming errors loudly when encoding', async () => {
    const base = {
      key: KEY,
      siteId: SITE,
      version: '2.4.1',
      outcome: 'installed' as const,
      at: new Date('2025-01-01T00:00:00Z'),
    };
    await expect(encodeReceiptCode({ ...base, key: KEY.subarray(1) })).rejects.toThrow(TypeError);
    await expect(encodeReceiptCode({ ...base, siteId: 'site-42' })).rejects.toThrow(TypeError);
    await expect(encodeReceiptCode({ ...base, version: '' })).rejects.toThrow(TypeError);
    await expect(encodeReceiptCode({ ...base, version: '2.4.1\nminute:0' })).rejects.toThrow(TypeError);
    await expect(encodeReceiptCode({ ...base, version: 'x'.repeat(129) })).rejects.toThrow(TypeError);
    await expect(encodeReceiptCode({ ...base, outcome: 'exploded' as ReceiptOutcome })).rejects.toThrow(
      TypeError,
    );
    await expect(encodeReceiptCode({ ...base, at: new Date('2023-12-31T23:59:59Z') })).rejects.toThrow(
      RangeError,
    );
    await expect(encodeReceiptCode({ ...base, at: new Date('2055-11-24T20:16:00Z') })).rejects.toThrow(
      RangeError,
    );
    await expect(encodeReceiptCode({ ...base, at: new Date('nonsense') })).rejects.toThrow(RangeError);
    await expect(
      verifyReceiptCode({
        key: KEY.subarray(2),
        siteId: SITE,
        code: vectors.codes[0]!.expected.code,
        candidateVersions: [],
      }),
    ).rejects.toThrow(TypeError);
  });
});
