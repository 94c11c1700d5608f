import { describe, expect, it } from 'vitest';
import { encodeReceiptCode, hmacSha256, keyFromHex } from './code.ts';
import { receiptVectors } from '../../test/receipt-vectors.ts';
import { RECEIPT_FILE_MESSAGES, receiptFileMessage, signReceiptFile, verifyReceiptFile } from './file.ts';

const vectors = receiptVectors;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const health = vectors.files[1]!;

describe('receipt files', () => {
  it('should reproduce every file vector byte for byte', async () => {
    for (const v of vectors.files) {
      const signed = await signReceiptFile({
        key: keyFromHex(v.keyHex),
        siteId: v.siteId,
        version: v.version,
        outcome: v.outcome,
        at: new Date(v.at),
        detailsText: v.detailsText,
      });
      expect(signed, v.name).toEqual({
        json: v.expected.json,
        code: v.expected.code,
        hmac: v.expected.hmac,
        message: v.expected.message,
      });
      expect(v.expected.message, v.name).toContain(`details-sha256:${v.expected.detailsSha256}\n`);
    }
  });

  it('should verify every file vector and return its authenticated fields', async () => {
    for (const v of vectors.files) {
      const r = await verifyReceiptFile({
        key: keyFromHex(v.keyHex),
        siteId: v.siteId.toUpperCase(),
        json: v.expected.json,
      });
      expect(r, v.name).toEqual({
        ok: true,
        siteId: v.siteId.toLowerCase(),
        version: v.version,
        outcome: v.outcome,
        at: new Date(v.at),
        details: JSON.parse(v.detailsText),
        code: v.expected.code,
      });
    }
  });

  it('should refuse every invalid file vector with the expected reason', async () => {
    for (const v of vectors.invalidFiles) {
      const r = await verifyReceiptFile({ key: keyFromHex(v.keyHex), siteId: v.siteId, json: v.json });
      expect(r.ok ? 'ok' : r.reason, v.name).toBe(v.expected.reason);
    }
  });

  it('should refuse a file with any authenticated field tampered with', async () => {
    const key = keyFromHex(health.keyHex);
    const original = JSON.parse(health.expected.json) as Record<string, unknown>;
    const otherCode = await encodeReceiptCode({
      key,
      siteId: health.siteId,
      version: '2.4.1',
      outcome: 'installed',
      at: new Date(health.at),
    });
    const edits: [string, (t: string) => string, string][] = [
      ['version', (t) => t.replace('"2.4.1-hotfix"', '"2.4.1"'), 'bad-hmac'],
      ['outcome', (t) => t.replace('"installed"', '"rolled_back"'), 'bad-hmac'],
      ['at', (t) => t.replace('2025-03-04T10:58:00Z', '2025-03-05T10:58:00Z'), 'bad-hmac'],
      [
        'details value',
        (t) => t.replace('"previousVersion": "2.3.0"', '"previousVersion": "2.2.0"'),
        'bad-hmac',
      ],
      ['details whitespace', (t) => t.replace('"ok": true, "ms"', '"ok": true,  "ms"'), 'bad-hmac'],
      [
        'details member added',
        (t) => t.replace('"durationSeconds"', '"forged": 1, "durationSeconds"'),
        'bad-hmac',
      ],
      ['code (another valid code)', (t) => t.replace(health.expected.code, otherCode), 'bad-hmac'],
      [
        'hmac',
        (t) =>
          t.replace(
            health.expected.hmac,
            health.expected.hmac.replace(/^./, (c) => (c === '0' ? '1' : '0')),
          ),
        'bad-hmac',
      ],
      ['site id', (t) => t.replace(health.siteId, 'c9bf9e57-1685-4c89-bafb-ff5af830be8a'), 'wrong-site'],
      ['format', (t) => t.replace('outpost-receipt/1', 'outpost-receipt/2'), 'malformed'],
      ['outcome unknown', (t) => t.replace('"installed"', '"exploded"'), 'malformed'],
      ['at not whole seconds', (t) => t.replace('10:58:00Z', '10:58:00.000Z'), 'malformed'],
      ['at impossible date', (t) => t.replace('2025-03-04', '2025-02-30'), 'malformed'],
      [
        'details not an object',
        (t) => t.slice(0, t.indexOf('"details": ') + 11) + '[]' + t.slice(t.indexOf(',\n  "code"')),
        'malformed',
      ],
      [
        'hmac upper case',
        (t) => t.replace(health.expected.hmac, health.expected.hmac.toUpperCase()),
        'malformed',
      ],
      [
        'code mistyped',
        (t) =>
          t.replace(
            health.expected.code,
            health.expected.code.slice(0, -1) + (health.expected.code.endsWith('2') ? '3' : '2'),
          ),
        'malformed',
      ],
    ];
    for (const [name, edit, reason] of edits) {
      const json = edit(health.expected.json);
      expect(json, name).not.toBe(health.expected.json);
      const r = await verifyReceiptFile({ key, siteId: health.siteId, json });
      expect(r.ok ? 'ok' : r.reason, name).toBe(reason);
    }
    expect(original.hmac).toBe(health.expected.hmac);
  });

  it('should refuse a file whose MAC is valid but whose code says something else', async () => {
    const key = keyFromHex(health.keyHex);
    // An outcome the code does not carry, signed with the real key: only a broken writer does this.
    const code = await encodeReceiptCode({
      key,
      siteId: health.siteId,
      version: health.version,
      outcome: 'failed',
      at: new Date(health.at),
    });
    const detailsSha256 = health.expected.detailsSha256;
    const message = receiptFileMessage({
      siteId: health.siteId,
      version: health.version,
      outcome: 'installed',
      at: health.at,
      code,
      detailsSha256,
    });
    const hmac = hex(await hmacSha256(key, message));
    const json = health.expected.json.replace(health.expected.code, code).replace(health.expected.hmac, hmac);
    expect(await verifyReceiptFile({ key, siteId: health.siteId, json })).toEqual({
      ok: false,
      reason: 'code-mismatch',
      message: RECEIPT_FILE_MESSAGES.codeMismatch,
    });
  });

  it('should accept a byte-order mark and any layout outside the details', async () => {
    const key = keyFromHex(health.keyHex);
    const compact = health.expected.json
      .replace(/\n {2}"(format|siteId|version|outcome|at|details|code|hmac)": /g, '"$1":')
      .replace(/\n}\n$/, '}');
    expect(compact).not.toBe(health.expected.json);
    expect(await verifyReceiptFile({ key, siteId: health.siteId, json: compact })).toMatchObject({
      ok: true,
    });
    expect(
      await verifyReceiptFile({ key, siteId: health.siteId, json: '\ufeff' + health.expected.json }),
    ).toMatchObject({ ok: true });
    const reordered = JSON.parse(health.expected.json) as Record<string, unknown>;
    const detailsRaw = health.expected.json.slice(
      health.expected.json.indexOf('"details": ') + 11,
      health.expected.json.indexOf(',\n  "code"'),
    );
    const text =
      `{"hmac":${JSON.stringify(reordered.hmac)},"det\\u0061ils":${detailsRaw},"code":${JSON.stringify(reordered.code)},"at":${JSON.stringify(reordered.at)},` +
      `"outcome":${JSON.stringify(reordered.outcome)},"version":${JSON.stringify(reordered.version)},"siteId":${JSON.stringify(reordered.siteId)},"format":"outpost-receipt/1","extra":[1,{"a":"}"}]}`;
    expect(await verifyReceiptFile({ key, siteId: health.siteId, json: text })).toMatchObject({
      ok: true,
      version: health.version,
    });
  });

  it('should refuse details text that is not a JSON object when signing', async () => {
    const base = {
      key: keyFromHex(health.keyHex),
      siteId: health.siteId,
      version: '1.0',
      outcome: 'installed' as const,
      at: new Date(health.at),
    };
    await expect(signReceiptFile({ ...base, detailsText: '[1,2]' })).rejects.toThrow(TypeError);
    await expect(signReceiptFile({ ...base, detailsText: '{"a":' })).rejects.toThrow(TypeError);
    const signed = await signReceiptFile(base);
    expect(signed.json).toContain('"details": {},');
  });
});
