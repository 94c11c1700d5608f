import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { count, eq, sql } from 'drizzle-orm';
import {
  buildLargeTestImage,
  buildTestImage,
  pushImage,
  startRegistry,
  testRegistryPolicy,
  type TestImage,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { createScratchPgDatabase } from '../../test/db.ts';
import { makeTestApp } from '../../test/app.ts';
import { makeApiToken, makeOrg, makeSite } from '../../test/factories.ts';
import { withToken } from '../../test/http.ts';
import { bundleJobs, bundles, imageArchives } from '../../db/schema/index.ts';
import type { DbHandle } from '../../db/types.ts';
import { MIGRATIONS_DIR } from '../../db/select-node.ts';
import { BuildRunner } from './build-runner.ts';

// `npm run build-runner` as a real separate process on PostgreSQL, killed with SIGKILL in the middle of
// building a large images archive: the bundle must not become ready, and another runner must take
// the job over once the dead one's lease lapses and finish it.
const ROOT = path.resolve(import.meta.dirname, '../../../..');
let reg: TestRegistry;
let work: string;
let big: TestImage;
let small: TestImage;
let scratch: { url: string; drop(): Promise<void> };
let h: DbHandle;
const secretKey = crypto.getRandomValues(new Uint8Array(32));

beforeAll(async () => {
  reg = await startRegistry();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-worker-kill-'));
  // Large enough that the archive is still being written when the runner is killed.
  big = await buildLargeTestImage({
    dir: path.join(work, 'big'),
    tag: '1.0',
    layerSize: 96 * 1024 * 1024,
    seed: `kill-${Date.now()}`,
  });
  small = await buildTestImage({
    dir: path.join(work, 'small'),
    tag: '1.0',
    layers: [{ files: { 'app/x.txt': 'x\n' } }],
  });
  await pushImage(big.dir, '1.0', `${reg.host}/emr/backend:1.0`);
  await pushImage(small.dir, '1.0', `${reg.host}/emr/frontend:1.0`);
  scratch = await createScratchPgDatabase();
  const { createPgDb } = await import('../../db/client-pg.ts');
  h = await createPgDb(scratch.url, { max: 5 });
  await h.migrate(MIGRATIONS_DIR);
}, 180_000);

afterAll(async () => {
  await h?.close();
  await scratch?.drop();
  await reg?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

function startWorkerProcess(): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api/src/build-runner-cli.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: scratch.url,
      S3_ENDPOINT: inject('s3Endpoint'),
      S3_BUCKET: 'outpost-test',
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: inject('s3Secret'),
      S3_FORCE_PATH_STYLE: 'true',
      OUTPOST_SECRET_KEY: Buffer.from(secretKey).toString('base64'),
      OUTPOST_WORKER_LEASE_MS: '1500',
      OUTPOST_DATA_DIR: path.join(work, 'worker-data'),
      LOG_LEVEL: 'debug',
      OUTPOST_REGISTRY_ALLOW_INSECURE: [...testRegistryPolicy().allowInsecure].join(','),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  return { child, output: () => output };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a build runner process killed mid-build', () => {
  it('should leave the bundle not ready, and another runner should finish it after the lease lapses', async () => {
    const t = await makeTestApp(h, { secretKey });
    const org = await makeOrg(h.db);
    const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
    const created = (await (
      await api('/api/v1/releases', {
        method: 'POST',
        json: {
          version: '1.0.0',
          composeTemplate:
            'services:\n  backend:\n    image: {{ image.backend }}\n  frontend:\n    image: {{ image.frontend }}\n',
        },
      })
    ).json()) as { id: string };
    expect(
      (
        await api(`/api/v1/releases/${created.id}/images`, {
          method: 'POST',
          json: { name: 'backend', reference: `${reg.host}/emr/backend:1.0` },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await api(`/api/v1/releases/${created.id}/images`, {
          method: 'POST',
          json: { name: 'frontend', reference: `${reg.host}/emr/frontend:1.0` },
        })
      ).status,
    ).toBe(201);
    expect((await api(`/api/v1/releases/${created.id}/publish`, { method: 'POST' })).status).toBe(200);
    const site = await makeSite(h.db, org.id, { code: 'KE-KILL' });
    const asked = await api('/api/v1/bundles', {
      method: 'POST',
      json: { releaseId: created.id, siteIds: [site.id] },
    });
    expect(asked.status).toBe(202);
    const bundleId = ((await asked.json()) as { bundles: { id: string }[] }).bundles[0]!.id;

    const proc = startWorkerProcess();
    try {
      // Wait until the separate runner holds the archive job and is writing the archive.
      await waitFor('the runner process to start building', async () => {
        const [a] = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, created.id));
        return a?.state === 'building';
      });
      await new Promise((r) => setTimeout(r, 300));
      proc.child.kill('SIGKILL');
      await new Promise((r) => proc.child.once('exit', r));
    } catch (e) {
      proc.child.kill('SIGKILL');
      throw new Error(`${(e as Error).message}\n${proc.output()}`, { cause: e });
    }
    const [job] = await h.db.select().from(bundleJobs).where(eq(bundleJobs.kind, 'image-archive'));
    expect(job).toMatchObject({ state: 'running', attempts: 1 });
    expect(job!.lockedBy).toMatch(/:\d+:/);
    const [stillBuilding] = await h.db.select().from(bundles).where(eq(bundles.id, bundleId));
    expect(stillBuilding!.state).toBe('queued');

    // A runner in this process takes over once the dead runner's 1.5 s lease has lapsed.
    const w = new BuildRunner({
      db: h.db,
      store: t.objectStore,
      secretBox: t.secretBox,
      logger: () => {},
      pollMs: 50,
      leaseMs: 10_000,
      registry: testRegistryPolicy(),
    });
    expect(await w.runOnce()).toBe(false);
    await waitFor(
      'the bundle to be built by the second worker',
      async () => {
        await w.runOnce();
        const [b] = await h.db.select().from(bundles).where(eq(bundles.id, bundleId));
        return b!.state === 'ready' || b!.state === 'failed' ? b : null;
      },
      120_000,
    );
    const view = (await (await api(`/api/v1/bundles/${bundleId}`)).json()) as { state: string; size: number };
    expect(view.state).toBe('ready');
    const [done] = await h.db.select().from(bundleJobs).where(eq(bundleJobs.id, job!.id));
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
    // The downloaded file is whole: its length is the advertised size and its images archive is listed with the right size.
    const res = await api(`/api/v1/bundles/${bundleId}/download`, {
      headers: { range: `bytes=${view.size - 1024}-` },
    });
    expect(res.status).toBe(206);
    expect((await res.arrayBuffer()).byteLength).toBe(1024);
    const [openJobs] = await h.db
      .select({ n: count() })
      .from(bundleJobs)
      .where(sql`state in ('queued', 'running')`);
    expect(openJobs!.n).toBe(0);
  }, 240_000);

  it('should end failed with a plain message when the registry goes away in the middle of copying, never ready', async () => {
    const t = await makeTestApp(h, { secretKey });
    const org = await makeOrg(h.db);
    const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
    const mid = await startRegistry();
    let stopped = false;
    try {
      const huge = await buildLargeTestImage({
        dir: path.join(work, 'huge'),
        tag: '2.0',
        layerSize: 96 * 1024 * 1024,
        seed: `mid-${Date.now()}`,
      });
      await pushImage(huge.dir, '2.0', `${mid.host}/emr/backend:2.0`);
      const r = (await (
        await api('/api/v1/releases', {
          method: 'POST',
          json: {
            version: '2.0.0',
            composeTemplate: 'services:\n  backend:\n    image: {{ image.backend }}\n',
          },
        })
      ).json()) as { id: string };
      expect(
        (
          await api(`/api/v1/releases/${r.id}/images`, {
            method: 'POST',
            json: { name: 'backend', reference: `${mid.host}/emr/backend:2.0` },
          })
        ).status,
      ).toBe(201);
      expect((await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' })).status).toBe(200);
      const site = await makeSite(h.db, org.id, { code: 'KE-MID' });
      const asked = await api('/api/v1/bundles', {
        method: 'POST',
        json: { releaseId: r.id, siteIds: [site.id] },
      });
      const bundleId = ((await asked.json()) as { bundles: { id: string }[] }).bundles[0]!.id;

      const w = new BuildRunner({
        db: h.db,
        store: t.objectStore,
        secretBox: t.secretBox,
        logger: () => {},
        pollMs: 20,
        backoffMs: 10,
        registry: { retries: 0, timeoutMs: 3000, ...testRegistryPolicy() },
      });
      const running = (async () => {
        for (let i = 0; i < 200; i++) {
          await w.runOnce();
          const [b] = await h.db.select().from(bundles).where(eq(bundles.id, bundleId));
          if (b!.state === 'failed' || b!.state === 'ready') return b!;
          await new Promise((res) => setTimeout(res, 20));
        }
        throw new Error('the bundle never settled');
      })();
      // Stop the registry while the layer is being copied (the archive row says building; bytes are flowing).
      await waitFor('the copy to start', async () => {
        const [a] = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, r.id));
        return a?.state === 'building';
      });
      await new Promise((res) => setTimeout(res, 150));
      await mid.stop();
      stopped = true;
      const settled = await running;
      expect(settled.state).toBe('failed');
      expect(settled.errorCode).toBe('REGISTRY_UNREACHABLE');
      expect(settled.error).toMatch(/^The images archive could not be built: .*(reach|connect)/i);
      const [archive] = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, r.id));
      expect(archive).toMatchObject({ state: 'failed', sha256: null, errorCode: 'REGISTRY_UNREACHABLE' });
      const [job] = await h.db.select().from(bundleJobs).where(eq(bundleJobs.targetId, archive!.id));
      expect(job).toMatchObject({ state: 'failed', attempts: 5 });
    } finally {
      if (!stopped) await mid.stop();
    }
  }, 240_000);
});
