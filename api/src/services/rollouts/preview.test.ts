import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeOrg, makeRelease, makeSite } from '../../test/factories.ts';
import type { DbHandle } from '../../db/types.ts';
import { releaseImages, rolloutTargets } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import type { PlanInput } from './input.ts';
import { createRollout } from './create.ts';
import { previewRollout } from './preview.ts';
import { assignWaves, downloadSeconds, loadPlanSites, loadRolloutRelease, sizeModel } from './plan.ts';

// The preview and create resolve waves and sum their figures in SQL; here they are checked against
// the same plan worked out in JavaScript from every site's row (assignWaves, sizeModel), on a fleet
// mixing letter case, tags, regions, bandwidths, base releases, sneakernet sites and a conflict.
describe.each(TEST_DRIVERS)('rollout preview against a JavaScript reference on %s', (driver) => {
  let h: DbHandle;
  beforeAll(async () => {
    h = await createTestDb(driver);
  });
  afterAll(async () => {
    await h.close();
  });
  const ctxOf = (orgId: string): ServiceCtx => ({
    db: h.db,
    orgId,
    actor: { userId: null, tokenId: null, role: 'owner' },
  });
  const image = (orgId: string, releaseId: string, digest: string, layers: [string, number][]) => ({
    orgId,
    releaseId,
    name: 'app',
    reference: `registry.example/app@${digest}`,
    registry: 'registry.example',
    repository: 'app',
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platform: 'linux/amd64',
    totalSize: 1_000 + layers.reduce((n, [, size]) => n + size, 0),
    config: {
      digest: `${digest}-config`,
      size: 1_000,
      mediaType: 'application/vnd.oci.image.config.v1+json',
    },
    layers: layers.map(([d, size]) => ({
      digest: d,
      size,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
    })),
  });

  async function fleet() {
    const org = await makeOrg(h.db);
    const r1 = await makeRelease(h.db, org.id, '1.0.0');
    const r15 = await makeRelease(h.db, org.id, '1.5.0');
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    await h.db.insert(releaseImages).values([
      image(org.id, r1.id, 'sha256:a1', [
        ['sha256:base', 50_000_000],
        ['sha256:v1', 7_000_000],
      ]),
      image(org.id, r2.id, 'sha256:a2', [
        ['sha256:base', 50_000_000],
        ['sha256:v2', 9_000_000],
      ]),
    ]);
    const regions = ['North', 'north', 'South', 'Île', null];
    const bandwidths = [null, 0, 64, 384, 2048, 777];
    const conns = ['online', 'intermittent', 'offline'] as const;
    const reported = [null, r1.id, r15.id, r2.id];
    const sites = [];
    for (let i = 0; i < 80; i++) {
      sites.push(
        await makeSite(h.db, org.id, {
          code: i % 9 === 0 ? `s${String(i).padStart(3, '0')}` : `S${String(i).padStart(3, '0')}`,
          region: regions[i % regions.length]!,
          district: i % 2 ? 'Hills' : 'Coast',
          tags: i % 4 === 0 ? ['Pilot'] : i % 4 === 1 ? ['pilot', 'school'] : [],
          connectivity: conns[i % 3]!,
          bandwidthKbps: bandwidths[i % bandwidths.length]!,
          reportedReleaseId: reported[(i * 7) % reported.length]!,
          reportedVersion: ['1.0.0', '1.5.0', '2.0.0'][i % 3]!,
        }),
      );
    }
    return { org, r2, sites };
  }

  const hours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
  const planOf = (releaseId: string): PlanInput => ({
    name: 'Mixed',
    releaseId,
    seed: 'ref',
    policy: {
      successThreshold: 0.9,
      failureThreshold: 0.2,
      autoAdvance: true,
      soakMinutes: 0,
      bundleLeadHours: 0,
      buildBundles: false,
    },
    waves: [
      {
        name: 'Pilot share',
        selector: { tags: ['PILOT'], share: 30 },
        startsAt: hours(1),
        deadlineAt: hours(2),
      },
      {
        name: 'North by hand',
        selector: { regions: ['NORTH', 'île'], siteCodes: ['S001', 's009', 'S999'], excludeCodes: ['s010'] },
        startsAt: hours(2),
        deadlineAt: hours(3),
      },
      {
        name: 'Coast count',
        selector: { districts: ['coast'], count: 7 },
        startsAt: hours(3),
        deadlineAt: hours(4),
      },
      {
        name: 'Rest',
        selector: { all: true, excludeCodes: ['S079'] },
        startsAt: hours(4),
        deadlineAt: hours(5),
      },
    ],
  });

  /** The preview as the JavaScript reference works it out from every site's row. */
  async function reference(ctx: ServiceCtx, plan: PlanInput) {
    const release = await loadRolloutRelease(ctx, plan.releaseId);
    const all = await loadPlanSites(ctx);
    const { waves, unknownCodes } = assignWaves(all, plan.waves, plan.seed!);
    const sizes = await sizeModel(ctx, release, [
      ...new Set(all.map((s) => s.reportedReleaseId).filter((x): x is string => !!x)),
    ]);
    const live = await h.db.select().from(rolloutTargets);
    const conflictOf = new Set(live.filter((t) => t.active && t.orgId === ctx.orgId).map((t) => t.siteId));
    return {
      unknownCodes,
      sitesInFleet: all.length,
      waves: waves.map((w) => {
        const secs: number[] = [];
        let unknownBandwidth = 0;
        for (const s of w.sites) {
          const on = s.reportedReleaseId === release.release.id;
          const t = downloadSeconds(sizes.forSite(s).bytes, s.bandwidthKbps);
          if (!on && s.connectivity !== 'offline') {
            if (t === null) unknownBandwidth++;
            else secs.push(t);
          }
        }
        secs.sort((a, b) => a - b);
        return {
          sites: w.sites.length,
          alreadyOnRelease: w.sites.filter((s) => s.reportedReleaseId === release.release.id).length,
          sneakernet: w.sites.filter((s) => s.connectivity === 'offline').length,
          deltas: w.sites.filter((s) => sizes.forSite(s).delta).length,
          bytes: w.sites.reduce((n, s) => n + sizes.forSite(s).bytes, 0),
          medianDownloadSeconds: secs.length ? secs[Math.floor(secs.length / 2)]! : null,
          maxDownloadSeconds: secs.length ? secs.at(-1)! : null,
          unknownBandwidth,
          conflicts: w.sites.filter((s) => conflictOf.has(s.id)).length,
          sample: w.sites.slice(0, 50).map((s) => ({
            code: s.code,
            bytes: sizes.forSite(s).bytes,
            delta: sizes.forSite(s).delta,
            downloadSeconds: downloadSeconds(sizes.forSite(s).bytes, s.bandwidthKbps),
          })),
          codes: w.sites.map((s) => s.code),
        };
      }),
    };
  }

  it('should give the figures and samples of share, region, code, count and all waves that the reference gives', async () => {
    const { org, r2 } = await fleet();
    const ctx = ctxOf(org.id);
    const plan = planOf(r2.id);
    const got = await previewRollout({ ctx, input: plan });
    const want = await reference(ctx, plan);
    expect(want.waves.map((w) => w.sites).every((n) => n > 0)).toBe(true);
    expect(got.unknownCodes).toEqual(want.unknownCodes);
    expect(got.unknownCodes).toEqual(['S999']);
    expect(got.sitesInFleet).toBe(want.sitesInFleet);
    expect(got.unassigned).toBe(want.sitesInFleet - want.waves.reduce((n, w) => n + w.sites, 0));
    expect(got.waves.map(({ sample, ...w }) => ({ ...w, sample: sample.map((s) => s.code) }))).toEqual(
      want.waves.map(({ codes, ...w }, i) => ({
        ...w,
        position: i,
        name: plan.waves[i]!.name,
        startsAt: plan.waves[i]!.startsAt,
        deadlineAt: plan.waves[i]!.deadlineAt,
        toInstall: w.sites - w.alreadyOnRelease,
        sample: codes.slice(0, 50),
      })),
    );
    expect(
      got.waves.map((w) =>
        w.sample.map(({ code, bytes, delta, downloadSeconds }) => ({ code, bytes, delta, downloadSeconds })),
      ),
    ).toEqual(want.waves.map((w) => w.sample));
    // Deltas and full downloads both occur, so the size model is exercised either way.
    expect(got.waves.some((w) => w.deltas > 0 && w.deltas < w.toInstall)).toBe(true);
  });

  it('should count sites another rollout holds, and create exactly the targets the reference assigns', async () => {
    const { org, r2, sites } = await fleet();
    const ctx = ctxOf(org.id);
    const plan = planOf(r2.id);
    // Another live rollout holds three sites of the "North by hand" wave.
    const want0 = await reference(ctx, plan);
    // (Sites already on the release are kept as skipped and hold nothing, so take three that are not.)
    const onRelease = new Set(sites.filter((s) => s.reportedReleaseId === r2.id).map((s) => s.code));
    const held = want0.waves[1]!.codes.filter((c) => !onRelease.has(c)).slice(0, 3);
    expect(held).toHaveLength(3);
    await createRollout({
      ctx,
      input: {
        ...plan,
        name: 'Holder',
        draft: false,
        waves: [{ ...plan.waves[1]!, selector: { siteCodes: held } }],
      },
    });
    const got = await previewRollout({ ctx, input: plan });
    const want = await reference(ctx, plan);
    expect(got.waves.map((w) => w.conflicts)).toEqual(want.waves.map((w) => w.conflicts));
    expect(got.conflictCount).toBe(3);
    expect(got.conflicts.map((c) => c.code)).toEqual([...held].sort());
    expect(got.conflicts.every((c) => c.rolloutName === 'Holder')).toBe(true);
    expect(got.waves[1]!.sample.filter((s) => s.conflict === 'Holder').map((s) => s.code)).toEqual(
      [...held].sort(),
    );

    const other = await makeOrg(h.db);
    await makeSite(h.db, other.id, { code: 'S001', tags: ['pilot'] });
    const fresh = {
      ...plan,
      name: 'Fresh',
      waves: plan.waves.map((w) => ({ ...w, selector: { ...w.selector, siteCodes: undefined } })),
    };
    const created = await createRollout({ ctx, input: { ...fresh, draft: true } });
    const rows = await h.db.select().from(rolloutTargets);
    const mine = rows.filter((t) => t.rolloutId === created.id);
    const codeOf = new Map(sites.map((s) => [s.id, s]));
    const wantFresh = await reference(ctx, fresh);
    expect(created.sites).toBe(wantFresh.waves.reduce((n, w) => n + w.sites, 0));
    expect(mine.map((t) => codeOf.get(t.siteId)!.code).sort()).toEqual(
      wantFresh.waves.flatMap((w) => w.codes).sort(),
    );
    for (const t of mine) {
      const s = codeOf.get(t.siteId)!;
      expect(t.fromReleaseId).toBe(s.reportedReleaseId);
      expect(t.state).toBe(s.reportedReleaseId === r2.id ? 'skipped' : 'pending');
      expect(t.reason).toBe(s.reportedReleaseId === r2.id ? 'already on the release' : null);
      expect(t.active).toBe(false);
    }
  });
});
