// Runs edge-scripts/lib/receipt-code.sh — the site-side implementation — under dash and under
// busybox sh, and holds it to the same vectors as the TypeScript. The busybox run gets a PATH
// of busybox applets plus openssl only, like a minimal site server.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeReceiptCode, keyFromHex, RECEIPT_OUTCOMES } from './code.ts';
import { signReceiptFile, verifyReceiptFile } from './file.ts';
import { receiptVectors } from '../../test/receipt-vectors.ts';

const SCRIPT = fileURLToPath(new URL('../../../../edge-scripts/lib/receipt-code.sh', import.meta.url));
const vectors = receiptVectors;

function which(name: string): string | null {
  try {
    return execFileSync('/bin/sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'receipt-sh-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const dash = which('dash');
const busybox = which('busybox');
const openssl = which('openssl');
const busyboxBin = path.join(tmp, 'bin');
if (busybox && openssl) {
  mkdirSync(busyboxBin);
  for (const applet of ['sh', 'cat', 'sed', 'tr', 'wc']) symlinkSync(busybox, path.join(busyboxBin, applet));
  symlinkSync(openssl, path.join(busyboxBin, 'openssl'));
}

interface Shell {
  name: string;
  file: string | null;
  args: string[];
  env: NodeJS.ProcessEnv;
  missing: string;
}
const shells: Shell[] = [
  {
    name: 'dash',
    file: dash,
    args: [],
    env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' },
    missing: 'dash is not installed (apt-get install -y dash)',
  },
  {
    name: 'busybox sh',
    file: busybox,
    args: ['sh'],
    env: { PATH: busyboxBin, LC_ALL: 'C.UTF-8' },
    missing: 'busybox is not installed (apt-get install -y busybox)',
  },
];

function run(shell: Shell, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  if (!shell.file || !openssl) throw new Error(shell.file ? 'openssl is not installed' : shell.missing);
  return new Promise((resolve) => {
    execFile(
      shell.file!,
      [...shell.args, ...args],
      { env: shell.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function rng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

let detailsFiles = 0;
function detailsFile(text: string): string {
  const f = path.join(tmp, `details-${detailsFiles++}.json`);
  writeFileSync(f, text);
  return f;
}

describe.each(shells)('receipt-code.sh under $name', (shell) => {
  it('should be available to run', () => {
    expect(shell.file, shell.missing).toBeTruthy();
    expect(openssl, 'openssl is not installed').toBeTruthy();
  });

  it('should print the code of every vector', async () => {
    const results = await Promise.all(
      vectors.codes.map((v) =>
        run(shell, [SCRIPT, 'encode', v.keyHex, v.siteId, v.version, v.outcome, String(v.epochSeconds)]),
      ),
    );
    results.forEach((r, i) => {
      const v = vectors.codes[i]!;
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }, v.name).toEqual({
        status: 0,
        stdout: `${v.expected.code}\n`,
        stderr: '',
      });
    });
  });

  it('should print the file time, hmac and whole receipt file of every file vector, byte for byte', async () => {
    for (const v of vectors.files) {
      const details = detailsFile(v.detailsText);
      const args = [v.keyHex, v.siteId, v.version, v.outcome, String(v.epochSeconds), details];
      const [iso, hmac, file] = await Promise.all([
        run(shell, [SCRIPT, 'iso', String(v.epochSeconds)]),
        run(shell, [SCRIPT, 'file-hmac', ...args]),
        run(shell, [SCRIPT, 'file', ...args]),
      ]);
      expect(iso.stdout, v.name).toBe(`${v.at}\n`);
      expect(hmac.stdout, `${v.name}: ${hmac.stderr}`).toBe(`${v.expected.hmac}\n`);
      expect(file.stdout, `${v.name}: ${file.stderr}`).toBe(v.expected.json);
      expect(
        await verifyReceiptFile({ key: keyFromHex(v.keyHex), siteId: v.siteId, json: file.stdout }),
        v.name,
      ).toMatchObject({ ok: true });
    }
  });

  it('should agree with the TypeScript on random inputs, odd characters included', async () => {
    const rand = rng(shell.name.length * 101);
    const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
    const pool = [
      '1',
      '2',
      '.',
      '-',
      '+',
      ' ',
      '"',
      '\\',
      '$',
      '`',
      "'",
      '%',
      '*',
      '?',
      '[',
      ']',
      '~',
      '!',
      '#',
      'é',
      '✓',
      'ж',
      '/',
      '&',
      ';',
      '(',
      'x',
      'rc',
    ];
    const cases = Array.from({ length: 24 }, (_, i) => {
      const version = Array.from(
        { length: 1 + Math.floor(rand() * 12) },
        () => pool[Math.floor(rand() * pool.length)],
      ).join('');
      const seconds = 1_704_067_200 + Math.floor(rand() * 2 ** 24 * 60);
      return {
        key: hex(64),
        siteId: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
        version,
        outcome: RECEIPT_OUTCOMES[i % 3]!,
        seconds,
      };
    });
    const detailsText = '{"checks":[{"name":"http","ok":true}],"note":"50% done \\\\ \\"ok\\""}';
    const details = detailsFile(detailsText);
    const outputs = await Promise.all(
      cases.map((c) =>
        Promise.all([
          run(shell, [SCRIPT, 'encode', c.key, c.siteId, c.version, c.outcome, String(c.seconds)]),
          run(shell, [SCRIPT, 'file', c.key, c.siteId, c.version, c.outcome, String(c.seconds), details]),
        ]),
      ),
    );
    for (const [i, c] of cases.entries()) {
      const [code, file] = outputs[i]!;
      const key = keyFromHex(c.key);
      const at = new Date(c.seconds * 1000);
      const label = JSON.stringify(c);
      expect(code.stdout, `${label} ${code.stderr}`).toBe(
        `${await encodeReceiptCode({ key, siteId: c.siteId, version: c.version, outcome: c.outcome, at })}\n`,
      );
      expect(file.stdout, `${label} ${file.stderr}`).toBe(
        (
          await signReceiptFile({
            key,
            siteId: c.siteId,
            version: c.version,
            outcome: c.outcome,
            at,
            detailsText,
          })
        ).json,
      );
    }
  });

  it('should print the same calendar time as JavaScript for times across the range', async () => {
    const seconds = [
      1_704_067_200, 1_709_164_800, 1_709_251_199, 1_735_689_599, 1_735_689_600, 2_147_483_648, 4_107_542_399,
      2_710_700_159,
    ];
    const results = await Promise.all(seconds.map((s) => run(shell, [SCRIPT, 'iso', String(s)])));
    results.forEach((r, i) =>
      expect(r.stdout).toBe(`${new Date(seconds[i]! * 1000).toISOString().replace('.000Z', 'Z')}\n`),
    );
  });

  it('should refuse bad input with a plain message and a non-zero exit', async () => {
    const v = vectors.codes[0]!;
    const ok = [v.keyHex, v.siteId, v.version, v.outcome, String(v.epochSeconds)];
    const bad: [string, string[], RegExp][] = [
      ['short key', ['encode', v.keyHex.slice(2), ...ok.slice(1)], /64 hex digits/],
      ['site id not a UUID', ['encode', v.keyHex, 'site-42', ...ok.slice(2)], /UUID/],
      [
        'newline in version',
        ['encode', v.keyHex, v.siteId, '2.4.1\nminute:0', ...ok.slice(3)],
        /control character/,
      ],
      ['empty version', ['encode', v.keyHex, v.siteId, '', ...ok.slice(3)], /empty/],
      ['129-byte version', ['encode', v.keyHex, v.siteId, 'x'.repeat(129), ...ok.slice(3)], /128 bytes/],
      [
        'unknown outcome',
        ['encode', ...ok.slice(0, 3), 'exploded', ok[4]!],
        /installed, failed or rolled_back/,
      ],
      ['clock before 2024', ['encode', ...ok.slice(0, 4), '1700000000'], /clock is probably wrong/],
      ['after the range', ['encode', ...ok.slice(0, 4), '2710700160'], /cannot carry/],
      ['leading zero', ['encode', ...ok.slice(0, 4), `0${ok[4]}`], /seconds since 1970/],
      ['too few arguments', ['encode', ...ok.slice(0, 4)], /usage/],
      ['details not an object', ['file', ...ok, detailsFile('[1, 2]\n')], /JSON object/],
      ['missing details file', ['file-hmac', ...ok, path.join(tmp, 'nope.json')], /cannot read/],
      ['unknown command', ['sign', ...ok], /unknown command/],
    ];
    const results = await Promise.all(bad.map(([, args]) => run(shell, [SCRIPT, ...args])));
    results.forEach((r, i) => {
      const [name, , message] = bad[i]!;
      expect(r.status, name).not.toBe(0);
      expect(r.stdout, name).toBe('');
      expect(r.stderr, name).toMatch(message);
    });
  });

  it('should work when sourced by a set -eu script, without changing its locale', async () => {
    const v = vectors.codes[3]!;
    const caller = path.join(tmp, 'install.sh');
    writeFileSync(
      caller,
      [
        '#!/bin/sh',
        'set -eu',
        `. "${SCRIPT}"`,
        `code=$(receipt_code_encode "$1" "$2" "$3" "$4" "$5")`,
        'printf "%s %s\\n" "$code" "${LC_ALL:-unset}"',
        'if receipt_code_encode "$1" "$2" "$3" bogus "$5" 2>/dev/null; then echo accepted; else echo refused; fi',
        '',
      ].join('\n'),
    );
    const r = await run(shell, [caller, v.keyHex, v.siteId, v.version, v.outcome, String(v.epochSeconds)]);
    expect(r).toEqual({ status: 0, stdout: `${v.expected.code} C.UTF-8\nrefused\n`, stderr: '' });
  });
});
