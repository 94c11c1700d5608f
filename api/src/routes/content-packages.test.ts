import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { zipOf } from '../test/zip.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg } from '../test/factories.ts';
import { expectEnvelope, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { contentPackages } from '../db/schema/index.ts';

describe.each(TEST_DRIVERS)('content packages over HTTP on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
    await t.objectStore.ensureBucket();
  });
  afterAll(async () => {
    await h.close();
  });

  async function operator() {
    const org = await makeOrg(h.db);
    return { org, api: withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token) };
  }
  const upload = (
    api: ReturnType<typeof withToken>,
    name: string,
    version: string,
    body: Buffer,
    type = 'application/zip',
  ) =>
    api(`/api/v1/content-packages?name=${name}&version=${encodeURIComponent(version)}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: new Uint8Array(body),
    });

  it('should store a package larger than the JSON body limit, by its sha256, and attach it to a release', async () => {
    const { api } = await operator();
    // Random bytes do not compress: the zip is ~2 MB, over the 1 MB limit of ordinary endpoints.
    const zip = await zipOf({
      'forms/anc.json': '{"form":"ANC"}',
      'concepts/big.bin': randomBytes(2_000_000),
    });
    const res = await upload(api, 'ke-forms', '2024.11', zip);
    expect(res.status, await res.clone().text()).toBe(201);
    const pkg = await res.json();
    expect(pkg).toMatchObject({
      name: 'ke-forms',
      version: '2024.11',
      size: zip.length,
      entries: 2,
      sha256: createHash('sha256').update(zip).digest('hex'),
    });
    const list = await (await api('/api/v1/content-packages')).json();
    expect(list.items.map((p: { id: string }) => p.id)).toEqual([pkg.id]);
    const rel = await (
      await api('/api/v1/releases', { method: 'POST', json: { version: '1.0.0', contentPackageId: pkg.id } })
    ).json();
    expect(rel.contentPackage).toMatchObject({ id: pkg.id, name: 'ke-forms' });
  });

  it('should refuse a duplicate version, a file that is not a zip, a wrong content type and an oversized upload', async () => {
    const { org, api } = await operator();
    const zip = await zipOf({ 'a.txt': 'a' });
    expect((await upload(api, 'forms', '1', zip)).status).toBe(201);
    await expectEnvelope(await upload(api, 'forms', '1', zip), 409, 'CONFLICT');
    await expectEnvelope(
      await upload(api, 'forms', '2', Buffer.from('this is not a zip at all')),
      400,
      'CONTENT_INVALID',
    );
    await expectEnvelope(await upload(api, 'forms', '3', zip, 'text/plain'), 415);
    await expectEnvelope(await upload(api, 'Bad Name', '4', zip), 400, 'VALIDATION_FAILED');
    const small = await makeTestApp(h, { maxContentPackageBytes: 1000 });
    const big = await zipOf({ 'b.bin': randomBytes(5000) });
    const tok = (await makeApiToken(h.db, org.id, 'operator')).token;
    await expectEnvelope(await upload(withToken(small.app, tok), 'forms', '5', big), 413, 'BODY_TOO_LARGE');
    const [{ n }] = (await h.db
      .select({ n: count() })
      .from(contentPackages)
      .where(eq(contentPackages.orgId, org.id))) as [{ n: number }];
    expect(n).toBe(1);
  });

  it('should keep packages to their organisation and refuse viewers', async () => {
    const a = await operator();
    const b = await operator();
    const pkg = await (await upload(a.api, 'private-forms', '1', await zipOf({ 'x.txt': 'x' }))).json();
    await expectEnvelope(await b.api(`/api/v1/content-packages/${pkg.id}`), 404);
    expect((await (await b.api('/api/v1/content-packages')).json()).items).toEqual([]);
    await expectEnvelope(
      await b.api('/api/v1/releases', {
        method: 'POST',
        json: { version: '1.0.0', contentPackageId: pkg.id },
      }),
      400,
    );
    const viewer = withToken(t.app, (await makeApiToken(h.db, a.org.id, 'viewer')).token);
    await expectEnvelope(await upload(viewer, 'v', '1', await zipOf({ 'y.txt': 'y' })), 403);
  });
});
