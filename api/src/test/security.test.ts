import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, count, eq } from 'drizzle-orm';
import {
  allowTestHost,
  buildTestImage,
  pushImage,
  startRegistry,
  type TestImage,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { createTestDb } from './db.ts';
import { makeTestApp } from './app.ts';
import { zipOf } from './zip.ts';
import { makeApiToken, makeOrg, makeSite, makeUser } from './factories.ts';
import {
  login,
  LOGIN_EMAIL_BACKOFF_SECONDS,
  LOGIN_MAX_FAILURES,
  LOGIN_MAX_FAILURES_PER_ADDRESS,
} from '../services/auth/login.ts';
import { expectEnvelope, withToken } from './http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, bundleDownloads, bundles } from '../db/schema/index.ts';
import type { BuildRunner } from '../services/bundles/build-runner.ts';
import { settleBuilds, testBuildRunner } from './build-runner.ts';
import { ONE_IMAGE_TEMPLATE } from './compose.ts';
import { STATUS_OF } from '../app.ts';
import type { AppError, TooManyRequestsError } from '../lib/errors.ts';

// The security suite: the holes found probing the API as an attacker (issue 13), each replayed
// against the real app, a real registry holding organisation A's private image, a hostile registry
// on loopback written here (allowed for this test through the same allow-list production reads),
// PGlite and the run's S3 server. Every test here failed before its fix.

const PRIVATE = { username: 'org-a', password: 'org-a-registry-password' };
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

let registryA: TestRegistry;
let work: string;
let secret: TestImage;

/** A registry an attacker controls: its manifest names any layer digest it likes, and it answers 404 for blobs it does not have. */
interface Hostile {
  host: string;
  requests: { method: string; url: string; authorization?: string }[];
  close(): Promise<void>;
}
async function hostileRegistry(
  layers: { digest: string; size: number; mediaType: string }[],
): Promise<Hostile> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map(() => `sha256:${'0'.repeat(64)}`) },
    }),
  );
  const configDigest = `sha256:${sha(config)}`;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers,
    }),
  );
  const manifestDigest = `sha256:${sha(manifest)}`;
  const requests: Hostile['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({
      method: req.method!,
      url: req.url!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const url = req.url ?? '';
    if (url === '/v2/') return res.writeHead(200).end('{}');
    if (/\/manifests\/(latest|sha256:)/.test(url)) {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': manifestDigest,
        'content-length': manifest.length,
      });
      return res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (url.endsWith(`/blobs/${configDigest}`)) {
      res.writeHead(200, { 'content-length': config.length });
      return res.end(req.method === 'HEAD' ? undefined : config);
    }
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const disallow = allowTestHost(host);
  return {
    host,
    requests,
    async close() {
      disallow();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

beforeAll(async () => {
  registryA = await startRegistry({ htpasswd: PRIVATE });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-security-'));
  secret = await buildTestImage({
    dir: path.join(work, 'secret'),
    tag: '1.0',
    layers: [
      { files: { 'app/secret.txt': `organisation A's private code ${sha(String(Math.random()))}\n` } },
    ],
  });
  await pushImage(secret.dir, '1.0', `${registryA.host}/private/app:1.0`, PRIVATE);
}, 120_000);

afterAll(async () => {
  await registryA?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('security: two organisations, a private registry and a hostile one', () => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let runner: BuildRunner;
  beforeAll(async () => {
    h = await createTestDb('pglite');
    t = await makeTestApp(h);
    runner = testBuildRunner(h.db, t);
  }, 180_000); // a first PGlite open is slow on a busy machine
  afterAll(async () => {
    await h.close();
  });

  const settle = () => settleBuilds(h.db, runner);

  async function organisation() {
    const org = await makeOrg(h.db);
    return { org, api: withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token) };
  }

  async function bundleOf(o: Awaited<ReturnType<typeof organisation>>, reference: string) {
    const rel = await o.api('/api/v1/releases', {
      method: 'POST',
      json: { version: '1.0.0', composeTemplate: ONE_IMAGE_TEMPLATE },
    });
    expect(rel.status, await rel.clone().text()).toBe(201);
    const { id: releaseId } = (await rel.json()) as { id: string };
    const add = await o.api(`/api/v1/releases/${releaseId}/images`, {
      method: 'POST',
      json: { name: 'app', reference },
    });
    expect(add.status, await add.clone().text()).toBe(201);
    expect((await o.api(`/api/v1/releases/${releaseId}/publish`, { method: 'POST' })).status).toBe(200);
    const site = await makeSite(h.db, o.org.id);
    const asked = await o.api('/api/v1/bundles', { method: 'POST', json: { releaseId, siteIds: [site.id] } });
    expect(asked.status, await asked.clone().text()).toBe(202);
    const {
      bundles: [b],
    } = (await asked.json()) as { bundles: { id: string }[] };
    await settle();
    const [row] = await h.db.select().from(bundles).where(eq(bundles.id, b!.id));
    return { releaseId, bundle: row! };
  }

  describe("finding 1: shared blobs are not another tenant's to take", () => {
    it("should not put organisation A's private layer into B's bundle when B's registry does not serve it", async () => {
      const a = await organisation();
      expect(
        (
          await a.api('/api/v1/registry-credentials', {
            method: 'PUT',
            json: { registry: registryA.host, ...PRIVATE },
          })
        ).status,
      ).toBe(200);
      const built = await bundleOf(a, `${registryA.host}/private/app:1.0`);
      expect(built.bundle.state).toBe('ready');

      const layer = secret.layers[0]!;
      const hostile = await hostileRegistry([
        { digest: layer.digest, size: layer.size, mediaType: layer.mediaType },
      ]);
      try {
        const b = await organisation();
        const stolen = await bundleOf(b, `${hostile.host}/evil/app:latest`);
        expect(stolen.bundle.state).toBe('failed');
        // B's registry was asked for the layer (and said no); the answer is the one B would get if nobody had it.
        expect(
          hostile.requests.some((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${layer.digest}`)),
        ).toBe(true);
        expect(stolen.bundle.error).toMatch(/has no blob/);
        expect(stolen.bundle.error).not.toMatch(/store|another|exist/i);
      } finally {
        await hostile.close();
      }
    });

    it('should not tell an organisation that another one uploaded the same content package (no existed oracle)', async () => {
      const zip = await zipOf({ 'forms/intake.json': `{"form":"${sha(String(Math.random()))}"}` });
      const upload = async (o: Awaited<ReturnType<typeof organisation>>, version: string) => {
        const res = await o.api(`/api/v1/content-packages?name=forms&version=${version}`, {
          method: 'POST',
          body: new Uint8Array(zip),
          headers: { 'content-type': 'application/zip' },
        });
        expect(res.status, await res.clone().text()).toBe(201);
        const { id } = (await res.json()) as { id: string };
        const [entry] = await h.db
          .select()
          .from(auditLog)
          .where(and(eq(auditLog.objectId, id), eq(auditLog.action, 'content_package.upload')));
        return (entry!.details as { existed: boolean }).existed;
      };
      const a = await organisation();
      const b = await organisation();
      expect(await upload(a, '1')).toBe(false);
      expect(await upload(b, '1')).toBe(false);
      // The same organisation uploading its own bytes again may be told.
      expect(await upload(b, '2')).toBe(true);
    });
  });

  describe('finding 5: NUL bytes and control characters are refused with a 400 naming the field', () => {
    const NUL = 'x\u0000y';
    async function refused(res: Response, field: string) {
      const error = await expectEnvelope(res, 400, 'VALIDATION_FAILED');
      expect(JSON.stringify(error.details)).toContain(field);
      return error;
    }

    it('should refuse NUL in every kind of body field, and never log the failing SQL or a password hash', async () => {
      const { org, api } = await organisation();
      const site = await makeSite(h.db, org.id);
      const logsBefore = t.logs.length;
      await refused(
        await api('/api/v1/users', {
          method: 'POST',
          json: {
            email: `n${Date.now()}@example.org`,
            name: NUL,
            role: 'viewer',
            password: 'a long enough password',
          },
        }),
        'name',
      );
      await refused(
        await api('/api/v1/sites', { method: 'POST', json: { code: 'NUL-1', name: NUL } }),
        'name',
      );
      await refused(
        await api(`/api/v1/sites/${site.id}`, { method: 'PATCH', json: { region: NUL } }),
        'region',
      );
      await refused(
        await api('/api/v1/tokens', { method: 'POST', json: { name: NUL, role: 'viewer' } }),
        'name',
      );
      await refused(
        await api('/api/v1/releases', { method: 'POST', json: { version: '1.0.0', notes: NUL } }),
        'notes',
      );
      await refused(
        await api('/api/v1/registry-credentials', {
          method: 'PUT',
          json: { registry: 'ghcr.io', username: NUL, password: 'p' },
        }),
        'username',
      );
      await refused(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: NUL, siteIds: [] } }),
        'releaseId',
      );
      await refused(
        await api('/api/v1/sites', {
          method: 'POST',
          json: { code: 'NUL-2', name: 'ok', tags: ['a\u001b[31mred'] },
        }),
        'tags.0',
      );
      const logged = JSON.stringify(t.logs.slice(logsBefore));
      expect(logged).not.toMatch(/pbkdf2|Failed query|params/);
      expect(t.logs.slice(logsBefore).filter((l) => l.level === 'error')).toEqual([]);
    });

    it('should refuse NUL in query parameters (search, facets, the CSV export) and in a path, without logging the query', async () => {
      const { api } = await organisation();
      const logsBefore = t.logs.length;
      await refused(await api('/api/v1/sites?q=%00'), 'q');
      await refused(await api('/api/v1/sites/facets?region=%00'), 'region');
      await refused(await api('/api/v1/sites/export.csv?q=a%00b'), 'q');
      await refused(await api('/api/v1/audit?action=%01'), 'action');
      const path = await api('/api/v1/sites/%00');
      expect(path.status).toBeLessThan(500);
      expect(JSON.stringify(t.logs.slice(logsBefore))).not.toContain('%00');
    });

    it('should import CSV rows with NUL as row errors, not a 500', async () => {
      const { api } = await organisation();
      const res = await api('/api/v1/sites/import?mode=partial', {
        method: 'POST',
        body: 'code,name\nC-1,Good clinic\nC-2,Bad\u0000clinic\n',
        headers: { 'content-type': 'text/csv' },
      });
      expect(res.status).toBeLessThan(500);
      const report = (await res.json()) as {
        failed: number;
        errors: { row: number; column: string | null }[];
      };
      expect(report.failed).toBe(1);
      expect(report.errors).toEqual([expect.objectContaining({ row: 3, column: 'name' })]);
    });

    it('should answer a login with Origin: null with 403, not 500', async () => {
      const res = await t.app.request('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'null', host: 'outpost.example' },
        body: JSON.stringify({ email: 'someone@example.org', password: 'whatever it is' }),
      });
      await expectEnvelope(res, 403, 'CSRF_FAILED');
    });
  });

  describe('finding 6: a revoked release can no longer be downloaded in any way', () => {
    it('should mark its bundles and refuse the download, the links and the links already handed out with 409 RELEASE_REVOKED', async () => {
      const a = await organisation();
      expect(
        (
          await a.api('/api/v1/registry-credentials', {
            method: 'PUT',
            json: { registry: registryA.host, ...PRIVATE },
          })
        ).status,
      ).toBe(200);
      const { releaseId, bundle } = await bundleOf(a, `${registryA.host}/private/app:1.0`);
      expect(bundle.state).toBe('ready');
      const links = (await (await a.api(`/api/v1/bundles/${bundle.id}/links`)).json()) as {
        files: { path: string; url: string; extract: boolean }[];
      };
      const archiveUrl = new URL(links.files.find((f) => f.path.endsWith('images.tgz'))!.url);
      const sitePartUrl = links.files.find((f) => f.extract)!.url;
      expect((await t.app.request(archiveUrl.pathname + archiveUrl.search)).status).toBe(200);
      expect((await fetch(sitePartUrl)).status).toBe(200);

      const revoke = await a.api(`/api/v1/releases/${releaseId}/revoke`, {
        method: 'POST',
        json: { reason: 'a data-loss bug' },
      });
      expect(revoke.status, await revoke.clone().text()).toBe(200);

      const [after] = await h.db.select().from(bundles).where(eq(bundles.id, bundle.id));
      expect(after).toMatchObject({ state: 'failed', errorCode: 'RELEASE_REVOKED' });
      const viewed = (await (await a.api(`/api/v1/bundles/${bundle.id}`)).json()) as {
        state: string;
        error: { code: string } | null;
      };
      expect(viewed).toMatchObject({ state: 'failed', error: { code: 'RELEASE_REVOKED' } });
      const download = await expectEnvelope(
        await a.api(`/api/v1/bundles/${bundle.id}/download`),
        409,
        'RELEASE_REVOKED',
      );
      expect(download.message).toMatch(/revoked/);
      await expectEnvelope(
        await a.api(`/api/v1/bundles/${bundle.id}/download`, { headers: { range: 'bytes=0-99' } }),
        409,
        'RELEASE_REVOKED',
      );
      await expectEnvelope(await a.api(`/api/v1/bundles/${bundle.id}/links`), 409, 'RELEASE_REVOKED');
      await expectEnvelope(
        await t.app.request(archiveUrl.pathname + archiveUrl.search),
        409,
        'RELEASE_REVOKED',
      );
      // The presigned link to the bundle's own part was handed out before: the object is gone from the store.
      expect((await fetch(sitePartUrl)).status).not.toBe(200);
    });
  });

  describe('finding 8: login throttling is atomic, per e-mail and per client address', () => {
    const attempt = (email: string, password: string, address: string) =>
      t.app.request('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-test-client-address': address },
        body: JSON.stringify({ email, password }),
      });

    it('should give 20 concurrent wrong logins exactly 10 tries', async () => {
      const { org } = await organisation();
      const u = await makeUser(h.db, org.id, 'viewer');
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => attempt(u.email, `wrong-${i}`, '203.0.113.7')),
      );
      const statuses = answers.map((r) => r.status);
      expect(statuses.filter((s) => s === 401)).toHaveLength(LOGIN_MAX_FAILURES);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20 - LOGIN_MAX_FAILURES);
    });

    it('should not lock the owner out from another address for longer than a short back-off', async () => {
      const { org } = await organisation();
      const u = await makeUser(h.db, org.id, 'viewer');
      const t0 = new Date('2026-12-03T09:00:00Z');
      const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
      const tryAt = (password: string, address: string, seconds: number) =>
        login({
          db: h.db,
          input: { email: u.email, password },
          clientAddress: address,
          now: at(seconds),
        }).then(
          () => 'ok',
          // The status and Retry-After app.onError answers this error with.
          (e: AppError & Partial<Pick<TooManyRequestsError, 'retryAfterSeconds'>>) =>
            `${STATUS_OF[e.kind]}:${e.retryAfterSeconds ?? ''}`,
        );
      for (let i = 0; i < LOGIN_MAX_FAILURES; i++)
        expect(await tryAt(`wrong-${i}`, '198.51.100.1', i)).toBe('401:');
      // The attacker's address is locked for the window.
      expect(await tryAt('still-wrong', '198.51.100.1', 20)).toBe('429:900');
      // The owner, elsewhere, waits at most the back-off, then gets in with the right password.
      const right = await tryAt(u.password, '192.0.2.55', 20);
      expect(right === 'ok' || /^429:\d+$/.test(right)).toBe(true);
      if (right !== 'ok')
        expect(Number(right.split(':')[1])).toBeLessThanOrEqual(LOGIN_EMAIL_BACKOFF_SECONDS);
      expect(await tryAt(u.password, '192.0.2.55', 20 + LOGIN_EMAIL_BACKOFF_SECONDS + 1)).toBe('ok');
    });

    it('should give an attacker spread over many addresses one guess per back-off once the account had its failures', async () => {
      const { org } = await organisation();
      const u = await makeUser(h.db, org.id, 'viewer');
      const t0 = Date.parse('2026-12-03T10:00:00Z');
      const tryAt = (address: string, seconds: number) =>
        login({
          db: h.db,
          input: { email: u.email, password: 'guess' },
          clientAddress: address,
          now: new Date(t0 + seconds * 1000),
        }).then(
          () => 200,
          (e: AppError) => STATUS_OF[e.kind],
        );
      for (let i = 0; i < LOGIN_MAX_FAILURES; i++) expect(await tryAt(`198.18.0.${i + 1}`, i)).toBe(401);
      const soon = await Promise.all([1, 2, 3].map((n) => tryAt(`198.18.1.${n}`, 10)));
      expect(soon).toEqual([429, 429, 429]);
      const later = await Promise.all(
        [1, 2, 3].map((n) => tryAt(`198.18.2.${n}`, 10 + LOGIN_EMAIL_BACKOFF_SECONDS)),
      );
      expect(later.filter((s) => s === 401)).toHaveLength(1);
      expect(later.filter((s) => s === 429)).toHaveLength(2);
    });

    it('should throttle one address spraying many accounts', async () => {
      const results: number[] = [];
      for (let i = 0; i < LOGIN_MAX_FAILURES_PER_ADDRESS + 1; i++) {
        results.push(
          (await attempt(`nobody-${i}-${Date.now()}@example.org`, 'spray', '198.51.100.99')).status,
        );
      }
      expect(results.slice(0, LOGIN_MAX_FAILURES_PER_ADDRESS).every((s) => s === 401)).toBe(true);
      expect(results.at(-1)).toBe(429);
    });
  });

  describe('finding 9: smaller holes', () => {
    it("should not count listing a bundle's links as a download (a GET changes nothing), and answer 416 with the error envelope", async () => {
      const a = await organisation();
      expect(
        (
          await a.api('/api/v1/registry-credentials', {
            method: 'PUT',
            json: { registry: registryA.host, ...PRIVATE },
          })
        ).status,
      ).toBe(200);
      const { bundle } = await bundleOf(a, `${registryA.host}/private/app:1.0`);
      expect(bundle.state).toBe('ready');
      const before = await h.db
        .select({ n: count() })
        .from(bundleDownloads)
        .where(eq(bundleDownloads.bundleId, bundle.id));
      for (let i = 0; i < 2; i++)
        expect((await a.api(`/api/v1/bundles/${bundle.id}/links`)).status).toBe(200);
      const after = await h.db
        .select({ n: count() })
        .from(bundleDownloads)
        .where(eq(bundleDownloads.bundleId, bundle.id));
      expect(after[0]!.n).toBe(before[0]!.n);
      expect(
        ((await (await a.api(`/api/v1/bundles/${bundle.id}`)).json()) as { downloads: number }).downloads,
      ).toBe(0);

      const beyond = await a.api(`/api/v1/bundles/${bundle.id}/download`, {
        headers: { range: `bytes=${bundle.size! + 10}-` },
      });
      const error = await expectEnvelope(beyond, 416, 'RANGE_NOT_SATISFIABLE');
      expect(error.requestId).toBe(beyond.headers.get('x-request-id'));
    });
  });
});
