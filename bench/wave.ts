// `BENCH_ONLY=wave npm run bench` (the last part of the full run): a 5,000-site wave bundled end to end
// once the release's images archive exists — bundles asked for through the service, built by the
// real build runner (job queue in PostgreSQL, site parts signed, written to S3 and read back), until every
// bundle is ready. Target (issue 5): ≥ 200 sites/s, so < 60 s for 5,000 sites; < 100 KB stored per site.
//
// Uses a scratch PostgreSQL database (dropped at the end), the embedded S3 server (s3rver) and a
// real registry with a small image.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { count, eq, sql } from 'drizzle-orm';
import { buildTestImage, pushImage, startRegistry, testRegistryPolicy } from '@outpost/bundler/test-support';
import { createPgDb } from '../api/src/db/client-pg.ts';
import { MIGRATIONS_DIR } from '../api/src/db/select-node.ts';
import { bundles, imageArchives, releases, sites } from '../api/src/db/schema/index.ts';
import { createScratchPgDatabase } from '../api/src/test/db.ts';
import { makeOrg } from '../api/src/test/factories.ts';
import { spawn } from 'node:child_process';
import { spawnTs, waitForLine } from './bundler/common.ts';
import { createObjectStore } from '../api/src/lib/object-store.ts';
import { createSecretBox } from '../api/src/lib/secret-box.ts';
import { registryImageResolver } from '../api/src/services/releases/registry-resolver.ts';
import { addReleaseImage } from '../api/src/services/releases/write.ts';
import { requestBundles } from '../api/src/services/bundles/request.ts';
import { BuildRunner } from '../api/src/services/bundles/build-runner.ts';

if (process.env.BENCH_ONLY && !process.env.BENCH_ONLY.split(',').includes('wave')) process.exit(0);

const WAVE = Number(process.env.BENCH_WAVE_SITES ?? 5000);
const WORKERS = Number(process.env.BENCH_WAVE_WORKERS ?? 2);
// BENCH_WAVE_PROCESSES=N: the wave is built by N `npm run build-runner` processes instead (as on several machines).
const PROCESSES = Number(process.env.BENCH_WAVE_PROCESSES ?? 0);
const line = (s: string) => process.stdout.write(s + '\n');

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-bench-wave-'));
const scratch = await createScratchPgDatabase();
const handle = await createPgDb(scratch.url, { max: 10 });
// The object store in a process of its own, as a real one would be (the bundler bench's server).
const s3Child = spawnTs('s3-server.ts', { BENCH_S3_DIR: path.join(work, 's3') });
const [, s3Port] = await waitForLine(s3Child, /READY (\d+)/);
const s3 = {
  endpoint: `http://127.0.0.1:${s3Port}`,
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
  bucket: 'outpost-bench',
};
const registry = await startRegistry();
try {
  await handle.migrate(MIGRATIONS_DIR);
  const db = handle.db;
  const store = createObjectStore({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: 'us-east-1',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
  const secretKey = crypto.getRandomValues(new Uint8Array(32));
  const secretBox = await createSecretBox(secretKey);
  const image = await buildTestImage({
    dir: path.join(work, 'image'),
    tag: '1.0',
    layers: [{ files: { 'app/emr.txt': 'emr\n' } }],
  });
  await pushImage(image.dir, '1.0', `${registry.host}/emr/backend:1.0`);

  const org = await makeOrg(db, 'Wave Ministry');
  const ctx = { db, orgId: org.id, actor: { userId: null, tokenId: null, role: 'owner' as const } };
  const [release] = await db
    .insert(releases)
    .values({
      orgId: org.id,
      version: '2.4.0',
      state: 'draft',
      composeTemplate:
        'services:\n  emr:\n    image: {{ image.backend }}\n    environment:\n      SITE_CODE: {{ site.code }}\n      SITE_NAME: {{ site.name }}\n      FACILITY: {{ site.facilityType }}\n    ports:\n      - "80:8080"\n    restart: unless-stopped\n',
    })
    .returning();
  await addReleaseImage({
    ctx,
    resolver: registryImageResolver(testRegistryPolicy()),
    box: secretBox,
    input: { releaseId: release!.id, name: 'backend', reference: `${registry.host}/emr/backend:1.0` },
  });
  await db
    .update(releases)
    .set({ state: 'published', publishedAt: new Date() })
    .where(eq(releases.id, release!.id));
  for (let i = 0; i < WAVE; i += 1000) {
    await db.insert(sites).values(
      Array.from({ length: Math.min(1000, WAVE - i) }, (_, k) => ({
        orgId: org.id,
        code: `W-${String(i + k).padStart(5, '0')}`,
        name: `Wave Health Centre ${i + k}`,
        region: 'Coast',
        facilityType: 'health_centre',
        bandwidthKbps: 384,
      })),
    );
  }

  const runners = Array.from(
    { length: WORKERS },
    (_, i) =>
      new BuildRunner({
        db,
        store,
        secretBox,
        logger: () => {},
        registry: testRegistryPolicy(),
        runnerId: `bench-${i}`,
        pollMs: 20,
        waitMs: 20,
        batch: Number(process.env.BENCH_WAVE_BATCH ?? 100),
        concurrency: Number(process.env.BENCH_WAVE_CONCURRENCY ?? 16),
      }),
  );
  // The release archive first (the target counts from "once the release archive exists").
  const first = await db.select({ id: sites.id }).from(sites).where(eq(sites.orgId, org.id)).limit(1);
  await requestBundles({ ctx, input: { releaseId: release!.id, siteIds: [first[0]!.id], mode: 'full' } });
  await runners[0]!.drain();
  const [archive] = await db.select().from(imageArchives).where(eq(imageArchives.releaseId, release!.id));
  if (archive?.state !== 'ready') throw new Error(`archive not built: ${archive?.error}`);

  const t0 = performance.now();
  const asked = await requestBundles({
    ctx,
    input: { releaseId: release!.id, filter: { region: 'Coast' }, mode: 'full' },
  });
  const tAsked = performance.now();
  if (PROCESSES > 0) {
    const children = Array.from({ length: PROCESSES }, () =>
      spawn(
        process.execPath,
        ['--import', 'tsx', path.join(import.meta.dirname, '../api/src/build-runner-cli.ts')],
        {
          stdio: 'ignore',
          env: {
            ...process.env,
            DATABASE_URL: scratch.url,
            S3_ENDPOINT: s3.endpoint,
            S3_BUCKET: s3.bucket,
            S3_ACCESS_KEY_ID: s3.accessKeyId,
            S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
            OUTPOST_SECRET_KEY: Buffer.from(secretKey).toString('base64'),
            OUTPOST_DATA_DIR: path.join(work, 'worker'),
            LOG_LEVEL: 'error',
          },
        },
      ),
    );
    try {
      for (;;) {
        const [n] = await db
          .select({ n: count() })
          .from(bundles)
          .where(sql`${bundles.releaseId} = ${release!.id} and ${bundles.state} in ('ready', 'failed')`);
        if (n!.n >= WAVE) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const c of children) c.kill('SIGTERM');
    }
  } else {
    await Promise.all(runners.map((w) => w.drain()));
  }
  const seconds = (performance.now() - t0) / 1000;
  const [ready] = await db
    .select({
      n: count(),
      avgPart: sql<number>`avg(${bundles.sitePartSize})::float`,
      maxPart: sql<number>`max(${bundles.sitePartSize})`,
    })
    .from(bundles)
    .where(sql`${bundles.releaseId} = ${release!.id} and ${bundles.state} = 'ready'`);
  const rate = asked.created / seconds;
  line(
    `\nBundle wave (issue 5) — ${WAVE.toLocaleString('en')} sites, ${PROCESSES > 0 ? `${PROCESSES} build-runner processes (npm run build-runner)` : `${WORKERS} build runners in one process`}, PostgreSQL + s3rver`,
  );
  line(`  ready: ${ready!.n} of ${WAVE}; request took ${((tAsked - t0) / 1000).toFixed(2)} s`);
  line(
    `  site bundles end to end ............ ${rate.toFixed(0)} sites/s, ${seconds.toFixed(1)} s for the wave   target ≥ 200 sites/s, < 60 s   ${rate >= 200 && seconds < 60 ? 'met' : 'NOT met'}`,
  );
  line(
    `  stored per extra site (site part) .. ${(ready!.avgPart / 1024).toFixed(1)} KB avg, ${(ready!.maxPart / 1024).toFixed(1)} KB max   target < 100 KB   ${ready!.maxPart < 100 * 1024 ? 'met' : 'NOT met'}`,
  );
  if (ready!.n !== WAVE) throw new Error('not every bundle became ready');
} finally {
  await handle.close();
  await scratch.drop();
  s3Child.kill('SIGTERM');
  await new Promise((resolve) => s3Child.once('exit', resolve));
  await registry.stop();
  await fs.rm(work, { recursive: true, force: true });
}
