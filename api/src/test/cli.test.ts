import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImage,
  pushImage,
  runProcess,
  startRegistry,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { createTestDb, TEST_DRIVERS } from './db.ts';
import { makeTestApp, type LogLine } from './app.ts';
import { makeApiToken, makeOrg, makeSite } from './factories.ts';
import { withToken } from './http.ts';
import type { DbHandle } from '../db/types.ts';
import type { BuildRunner } from '../services/bundles/build-runner.ts';
import { testBuildRunner } from './build-runner.ts';

// `npx outpost` end to end, as an operator runs it: the real API served over HTTP on loopback
// (PGlite or PostgreSQL, the run's S3 server), a build runner running beside it, a real registry,
// and the CLI's bin in a child process talking to all of them with an API token.
const BIN = path.resolve(import.meta.dirname, '../../../bundler/bin/outpost.mjs');
const driver = TEST_DRIVERS[0]!;

let reg: TestRegistry;
let work: string;
let h: DbHandle;
let server: ServerType;
let url: string;
let runner: BuildRunner;
let token: string;
let fingerprint: string;
let orgId: string;
let logs: LogLine[];
let startRunner: () => BuildRunner;

const TEMPLATE = `services:
  backend:
    image: {{ image.backend }}
    environment:
      SITE_NAME: {{ site.name }}
`;

// Asynchronous on purpose: the API answering the CLI runs in this very process.
const outpost = (args: string[], env: Record<string, string> = {}) =>
  runProcess(process.execPath, [BIN, ...args], {
    OUTPOST_URL: url,
    OUTPOST_TOKEN: token,
    OUTPOST_POLL_MS: '100',
    ...env,
  });

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk('');
  return out.sort();
}

beforeAll(async () => {
  reg = await startRegistry();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-cli-e2e-'));
  const image = await buildTestImage({
    dir: path.join(work, 'backend'),
    tag: '1.0',
    layers: [
      { files: { 'etc/os-release': 'NAME=outpost-test\n' } },
      { random: { path: 'app/data.bin', size: 3_000_000, seed: 'cli' } },
    ],
  });
  await pushImage(image.dir, '1.0', `${reg.host}/emr/backend:1.0`);

  h = await createTestDb(driver);
  const t = await makeTestApp(h);
  server = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  logs = t.logs;
  startRunner = () => {
    const w = testBuildRunner(h.db, t, {
      logger: (level, msg, fields) => t.logs.push({ level, msg, fields }),
      waitMs: 20,
    });
    w.start();
    return w;
  };
  runner = startRunner();

  const org = await makeOrg(h.db);
  orgId = org.id;
  token = (await makeApiToken(h.db, org.id, 'admin')).token;
  const api = withToken(t.app, token);
  const created = await api('/api/v1/releases', {
    method: 'POST',
    json: { version: '1.0.0', composeTemplate: TEMPLATE },
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const add = await api(`/api/v1/releases/${id}/images`, {
    method: 'POST',
    json: { name: 'backend', reference: `${reg.host}/emr/backend:1.0` },
  });
  expect(add.status, await add.clone().text()).toBe(201);
  const pub = await api(`/api/v1/releases/${id}/publish`, { method: 'POST' });
  expect(pub.status, await pub.clone().text()).toBe(200);
  for (const code of ['CLI-A', 'CLI-B', 'CLI-C'])
    await makeSite(h.db, org.id, { code, name: `Clinic ${code}`, region: 'Coast' });
  await makeSite(h.db, org.id, { code: 'CLI-X', name: 'Elsewhere', region: 'Highlands' });
  // A code that cannot name a bundle folder: its bundle fails to build, the others do not.
  await makeSite(h.db, org.id, { code: 'CLI D', name: 'Clinic with a space', region: 'Coast' });
}, 180_000);

afterAll(async () => {
  await runner?.stop();
  await new Promise((r) => server?.close(r));
  await h?.close();
  await reg?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe(`outpost against the API (${driver})`, () => {
  it("should build one site's bundle, wait for it, download it and check it", async () => {
    const out = path.join(work, 'dl', 'a.tar');
    const r = await outpost([
      'bundle',
      'build',
      '--site',
      'CLI-A',
      '--release',
      '1.0.0',
      '--wait',
      '--out',
      out,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/State: ready/);
    expect(r.stdout).toMatch(/OK: signature valid/);
    expect(r.stdout + r.stderr).not.toContain(token);
    fingerprint = /signed with (SHA256:\S+)/.exec(r.stdout)![1]!;
    const v = await outpost(['bundle', 'verify', out, '--fingerprint', fingerprint]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('site CLI-A (Clinic CLI-A), release 1.0.0');
  }, 120_000);

  it('should resume a broken download from where it stopped (Range + If-Range), and start over when the ETag differs', async () => {
    const whole = await fs.readFile(path.join(work, 'dl', 'a.tar'));
    const head = await fetch(`${url}/api/v1/bundles/${await bundleId('CLI-A')}/download`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}` },
    });
    const etag = head.headers.get('etag')!;

    const resumed = path.join(work, 'dl', 'resumed.tar');
    await fs.writeFile(`${resumed}.part`, whole.subarray(0, 1_000_000));
    await fs.writeFile(`${resumed}.part.etag`, etag);
    const r = await outpost(['bundle', 'build', '--site', 'CLI-A', '--release', '1.0.0', '--out', resumed]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1\.0 MB kept from an earlier try/);
    expect(Buffer.compare(await fs.readFile(resumed), whole)).toBe(0);
    await expect(fs.stat(`${resumed}.part`)).rejects.toThrow();

    // A partial file from another version of the bundle: the server answers 200 and it starts over.
    const stale = path.join(work, 'dl', 'stale.tar');
    await fs.writeFile(`${stale}.part`, Buffer.alloc(1_000_000, 7));
    await fs.writeFile(`${stale}.part.etag`, '"not-this-bundle"');
    const s = await outpost(['bundle', 'build', '--site', 'CLI-A', '--release', '1.0.0', '--out', stale]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).not.toMatch(/kept from an earlier try/);
    expect(Buffer.compare(await fs.readFile(stale), whole)).toBe(0);
  }, 120_000);

  it('should export three sites for USB: the shared object once, a folder per site that verifies, a README', async () => {
    const to = path.join(work, 'usb');
    const r = await outpost(['export', '--release', '1.0.0', '--to', to, '--sites', 'CLI-A,CLI-B,CLI-C']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3\/3 ready/);
    expect(r.stdout).toMatch(/Sites: 3 of 3 exported/);
    expect(r.stdout).toMatch(/Shared objects: 1 /);

    const shared = await fs.readdir(path.join(to, 'shared', 'sha256'));
    expect(shared).toHaveLength(1);
    expect(shared[0]).toMatch(/^[0-9a-f]{64}$/);
    expect((await fs.readdir(to)).sort()).toEqual(['CLI-A', 'CLI-B', 'CLI-C', 'README.txt', 'shared']);
    expect(await fs.readFile(path.join(to, 'README.txt'), 'utf8')).toMatch(
      /needs the "shared" folder next to it/,
    );
    for (const code of ['CLI-A', 'CLI-B', 'CLI-C']) {
      const folder = path.join(to, code, `outpost-${code}-1.0.0`);
      const files = await listFiles(folder);
      expect(files).toEqual(
        expect.arrayContaining([
          'README.txt',
          'compose/.env',
          'compose/docker-compose.yml',
          'keys/signing-key.pem',
          'manifest.json',
          'manifest.sig',
          'scripts/lib/receipt-code.sh',
        ]),
      );
      expect(files.some((f) => f.startsWith('images/'))).toBe(false);
      expect(await fs.readdir(path.join(to, code))).toEqual([`outpost-${code}-1.0.0`]);
      const v = await outpost(['bundle', 'verify', folder, '--fingerprint', fingerprint]);
      expect(v.stdout).toContain('OK: signature valid');
      expect(v.code).toBe(0);
    }
  }, 120_000);

  it('should skip everything on a second run, and resume a partial shared object', async () => {
    const to = path.join(work, 'usb');
    const again = await outpost(['export', '--release', '1.0.0', '--to', to, '--sites', 'CLI-A,CLI-B,CLI-C']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/Written: 0 B; already there \(skipped\): [1-9]/);

    const [hex] = await fs.readdir(path.join(to, 'shared', 'sha256'));
    const file = path.join(to, 'shared', 'sha256', hex!);
    const bytes = await fs.readFile(file);
    await fs.rm(file);
    await fs.writeFile(`${file}.part`, bytes.subarray(0, 500_000));
    const resumed = await outpost([
      'export',
      '--release',
      '1.0.0',
      '--to',
      to,
      '--sites',
      'CLI-A,CLI-B,CLI-C',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/500 kB kept from before/);
    expect(Buffer.compare(await fs.readFile(file), bytes)).toBe(0);

    // A damaged copy is noticed and replaced.
    const damaged = Buffer.from(bytes);
    damaged[1000] = damaged[1000]! ^ 0xff;
    await fs.writeFile(file, damaged);
    const fixed = await outpost(['export', '--release', '1.0.0', '--to', to, '--sites', 'CLI-A,CLI-B,CLI-C']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/does not match its checksum: downloading it again/);
    expect(Buffer.compare(await fs.readFile(file), bytes)).toBe(0);
  }, 120_000);

  it('should wait out a slow build with one small request a poll, reading the bundle list only when states move', async () => {
    await makeSite(h.db, orgId, { code: 'CLI-W', name: 'Clinic CLI-W', region: 'Lakes' });
    await runner.stop(); // nothing gets built for a while: the export waits
    const from = logs.length;
    const exported = outpost(
      ['export', '--release', '1.0.0', '--to', path.join(work, 'usb-wait'), '--sites', 'CLI-W'],
      { OUTPOST_POLL_MS: '50' },
    );
    const requests = () =>
      logs
        .slice(from)
        .filter((l) => l.msg === 'request')
        .map((l) => `${l.fields!.method} ${l.fields!.path}`);
    const statusPolls = () =>
      requests().filter((r) => /^GET \/api\/v1\/releases\/[^/]+\/bundle-status$/.test(r)).length;
    let listings: number;
    try {
      // However long the CLI takes to start on a loaded machine, wait for eight polls of a build that does not move.
      for (const deadline = Date.now() + 60_000; statusPolls() < 8 && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 50));
      expect(statusPolls()).toBeGreaterThanOrEqual(8);
      listings = requests().filter((r) => r === 'GET /api/v1/bundles').length;
      expect(listings).toBe(1);
    } finally {
      runner = startRunner(); // the tests after this one need a runner, whatever happened here
    }
    const r = await exported;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Sites: 1 of 1 exported/);
    // Once the bundle moved, the list was read again to pick it up.
    expect(requests().filter((x) => x === 'GET /api/v1/bundles').length).toBeGreaterThan(listings);
  }, 120_000);

  it('should export by region, report the bundle that failed, carry on with the others and exit 1', async () => {
    const to = path.join(work, 'usb-region');
    const r = await outpost(['export', '--release', '1.0.0', '--to', to, '--region', 'Coast']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Sites: 3 of 4 exported, 1 failed/);
    expect(r.stdout).toMatch(/FAILED CLI D: /);
    expect((await fs.readdir(to)).sort()).toEqual(['CLI-A', 'CLI-B', 'CLI-C', 'README.txt', 'shared']);
  }, 120_000);

  it('should say in one line what is wrong: a bad token, an unknown release, an unknown site', async () => {
    const bad = await outpost(
      ['export', '--release', '1.0.0', '--to', path.join(work, 'x'), '--sites', 'CLI-A'],
      { OUTPOST_TOKEN: 'op_not_a_real_token' },
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(
      'outpost: The server refused the API token (401): check OUTPOST_TOKEN or --token; tokens are made in Outpost → Settings → API tokens.',
    );
    expect(bad.stderr).not.toContain('op_not_a_real_token');

    const release = await outpost(['bundle', 'build', '--site', 'CLI-A', '--release', '9.9.9']);
    expect(release.code).toBe(1);
    expect(release.stderr.trim()).toBe(
      'outpost: There is no release 9.9.9 in this organisation (published: 1.0.0).',
    );

    const site = await outpost(['bundle', 'build', '--site', 'NOPE-1', '--release', '1.0.0']);
    expect(site.code).toBe(1);
    expect(site.stderr.trim()).toBe('outpost: Unknown site: NOPE-1 (or archived); nothing was asked for.');

    const failed = await outpost(['bundle', 'build', '--site', 'CLI D', '--release', '1.0.0', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim()).toMatch(/^outpost: The bundle failed to build: .* \(INVALID_BUNDLE\)\.$/);
  }, 120_000);
});

// A real full disk: a 256 kB tmpfs (mounting needs root, as on the test machines; elsewhere the case is skipped, and says so).
const small = path.join(os.tmpdir(), `outpost-cli-full-${process.pid}`);
const canMount = await (async () => {
  if (process.getuid?.() !== 0) return false;
  await fs.mkdir(small, { recursive: true });
  const ok = await new Promise<boolean>((resolve) => {
    spawn('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small])
      .on('close', (code) => resolve(code === 0))
      .on('error', () => resolve(false));
  });
  if (!ok) await fs.rm(small, { recursive: true, force: true });
  return ok;
})();

describe('a full disk', () => {
  afterAll(async () => {
    if (!canMount) return;
    await new Promise((r) => spawn('umount', [small]).on('close', r));
    await fs.rm(small, { recursive: true, force: true });
  });

  it.skipIf(!canMount)(
    'should say in one line that the disk is full, and which file',
    async () => {
      const r = await outpost(['export', '--release', '1.0.0', '--to', small, '--sites', 'CLI-A']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(
        /^outpost: The disk is full \(writing .*shared\/sha256\/[0-9a-f]{64}\.part\): free some space and run the same command again; it carries on where it stopped\.$/,
      );
    },
    60_000,
  );
});

async function bundleId(code: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/bundles?limit=500`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const { items } = (await res.json()) as { items: { id: string; state: string; site: { code: string } }[] };
  return items.find((b) => b.site.code === code && b.state === 'ready')!.id;
}
