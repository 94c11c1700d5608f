import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { releases, rollouts, rolloutTargets, sites, type WaveSelector } from '../../db/schema/index.ts';
import { AppError, ValidationError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';
import { diffImages, downloadSize, imagesOfReleases } from '../releases/list.ts';
import { loadRelease } from '../releases/view.ts';
import type { PlanInput } from './input.ts';

export interface PlanSite {
  id: string;
  code: string;
  name: string;
  region: string | null;
  district: string | null;
  tags: string[];
  connectivity: 'online' | 'intermittent' | 'offline';
  bandwidthKbps: number | null;
  reportedReleaseId: string | null;
  reportedVersion: string | null;
}

export interface PlannedWave {
  position: number;
  name: string;
  selector: WaveSelector;
  startsAt: Date;
  deadlineAt: Date;
  sites: PlanSite[];
}

/** A start this far in the past still counts as "now" (the form took a moment to send). */
const START_SLACK_MS = 5 * 60_000;

/** FNV-1a over seed and site id: a stable pseudo-random order, the same in preview and create. */
export function pickKey(seed: string, siteId: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}:${siteId}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Takes each wave's sites, in order, from those not taken by an earlier wave: the filters (regions,
 * districts and tags each narrow; within one, any value matches) plus explicit codes, minus
 * exclusions, then a share or count of them in the seed's order. Reproducible: same sites, same
 * seed, same waves.
 */
export function assignWaves(
  all: PlanSite[],
  waves: PlanInput['waves'],
  seed: string,
): { waves: PlannedWave[]; unknownCodes: string[] } {
  const taken = new Set<string>();
  const byCode = new Map(all.map((s) => [s.code.toLowerCase(), s]));
  const unknownCodes: string[] = [];
  const planned = waves.map((w, position) => {
    const sel = w.selector;
    const regions = sel.regions?.length ? new Set(sel.regions.map((x) => x.toLowerCase())) : null;
    const districts = sel.districts?.length ? new Set(sel.districts.map((x) => x.toLowerCase())) : null;
    const tags = sel.tags?.length ? new Set(sel.tags.map((x) => x.toLowerCase())) : null;
    const exclude = new Set((sel.excludeCodes ?? []).map((c) => c.toLowerCase()));
    const filtered = sel.all || regions || districts || tags;
    const chosen = new Map<string, PlanSite>();
    if (filtered) {
      for (const s of all) {
        if (taken.has(s.id)) continue;
        if (regions && !regions.has((s.region ?? '').toLowerCase())) continue;
        if (districts && !districts.has((s.district ?? '').toLowerCase())) continue;
        if (tags && !s.tags.some((t) => tags.has(t.toLowerCase()))) continue;
        chosen.set(s.id, s);
      }
    }
    for (const code of sel.siteCodes ?? []) {
      const s = byCode.get(code.toLowerCase());
      if (!s) {
        unknownCodes.push(code);
        continue;
      }
      if (!taken.has(s.id)) chosen.set(s.id, s);
    }
    let list = [...chosen.values()].filter((s) => !exclude.has(s.code.toLowerCase()));
    if (sel.share !== undefined || sel.count !== undefined) {
      const n = sel.count ?? Math.ceil((sel.share! / 100) * list.length);
      list = list
        .map((s) => ({ s, k: pickKey(seed, s.id) }))
        .sort((a, b) => a.k - b.k || (a.s.id < b.s.id ? -1 : 1))
        .slice(0, n)
        .map((x) => x.s);
    }
    list.sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
    for (const s of list) taken.add(s.id);
    return {
      position,
      name: w.name,
      selector: sel,
      startsAt: new Date(w.startsAt),
      deadlineAt: new Date(w.deadlineAt),
      sites: list,
    };
  });
  return { waves: planned, unknownCodes };
}

/**
 * Every site a plan draws from, as rows. Preview and create resolve waves in SQL (`resolve.ts`); this
 * and `assignWaves` stay as the reference they are tested against, and as the benchmark's baseline.
 */
export async function loadPlanSites(ctx: ServiceCtx): Promise<PlanSite[]> {
  return ctx.db
    .select({
      id: sites.id,
      code: sites.code,
      name: sites.name,
      region: sites.region,
      district: sites.district,
      tags: sites.tags,
      connectivity: sites.connectivity,
      bandwidthKbps: sites.bandwidthKbps,
      reportedReleaseId: sites.reportedReleaseId,
      reportedVersion: sites.reportedVersion,
    })
    .from(sites)
    .where(and(eq(sites.orgId, ctx.orgId), isNull(sites.archivedAt)));
}

/** The release a rollout may install: this organisation's, published (or deprecated), not revoked. */
export async function loadRolloutRelease(ctx: ServiceCtx, releaseId: string) {
  const l = await loadRelease(ctx, releaseId);
  if (l.release.state === 'revoked') {
    throw new AppError(
      'conflict',
      'RELEASE_REVOKED',
      `Release ${l.release.version} was revoked; it cannot be rolled out.`,
      [{ path: 'releaseId', message: 'Revoked release' }],
    );
  }
  if (l.release.state === 'draft') {
    throw new AppError(
      'conflict',
      'RELEASE_NOT_PUBLISHED',
      `Release ${l.release.version} is a draft; publish it before rolling it out.`,
      [{ path: 'releaseId', message: 'Draft release' }],
    );
  }
  return l;
}

/** Checks of a plan that need the clock: starts not in the past, waves in order. */
export function checkSchedule(waves: PlanInput['waves'], now: Date) {
  const issues: { path: string; message: string }[] = [];
  waves.forEach((w, i) => {
    if (Date.parse(w.startsAt) < now.getTime() - START_SLACK_MS)
      issues.push({ path: `waves.${i}.startsAt`, message: 'The start is in the past.' });
    if (i > 0 && Date.parse(w.startsAt) < Date.parse(waves[i - 1]!.startsAt)) {
      issues.push({ path: `waves.${i}.startsAt`, message: 'A wave cannot start before the wave before it.' });
    }
  });
  if (issues.length) throw new ValidationError('The schedule is not valid.', issues);
}

/** Sites of this plan already in another scheduled, running or paused rollout. */
export async function activeConflicts(ctx: ServiceCtx, siteIds: string[], exceptRolloutId?: string) {
  if (siteIds.length === 0) return [];
  const rows = await ctx.db
    .select({
      siteId: rolloutTargets.siteId,
      rolloutId: rolloutTargets.rolloutId,
      rolloutName: rollouts.name,
    })
    .from(rolloutTargets)
    .innerJoin(rollouts, eq(rollouts.id, rolloutTargets.rolloutId))
    .where(
      and(
        eq(rolloutTargets.orgId, ctx.orgId),
        eq(rolloutTargets.active, true),
        exceptRolloutId ? sql`${rolloutTargets.rolloutId} <> ${exceptRolloutId}` : undefined,
      ),
    );
  const wanted = new Set(siteIds);
  return rows.filter((r) => wanted.has(r.siteId));
}

/** Bytes each site downloads: the full release, or a delta from the published release it reports. */
export async function sizeModel(
  ctx: ServiceCtx,
  target: Awaited<ReturnType<typeof loadRelease>>,
  baseIds: string[],
) {
  const contentSize = target.content?.size ?? 0;
  const full = downloadSize(target.images) + contentSize;
  const delta = new Map<string, number>();
  const ids = baseIds.filter((id) => id !== target.release.id);
  if (ids.length && target.images.length) {
    const bases = await ctx.db
      .select({ id: releases.id })
      .from(releases)
      .where(
        and(eq(releases.orgId, ctx.orgId), inArray(releases.id, ids), sql`${releases.state} <> 'draft'`),
      );
    const images = await imagesOfReleases(
      ctx,
      bases.map((b) => b.id),
    );
    for (const b of bases) {
      const mine = images.get(b.id)!;
      // A base without images cannot be the start of a delta: the site gets the full download.
      if (mine.length) delta.set(b.id, diffImages(mine, target.images).deltaSize + contentSize);
    }
  }
  return {
    full,
    forSite(s: Pick<PlanSite, 'reportedReleaseId'>): { bytes: number; delta: boolean } {
      if (s.reportedReleaseId === target.release.id) return { bytes: 0, delta: false };
      const d = s.reportedReleaseId ? delta.get(s.reportedReleaseId) : undefined;
      return d === undefined ? { bytes: full, delta: false } : { bytes: d, delta: true };
    },
  };
}

/** Seconds to download at the site's estimated bandwidth, or null when it has none. */
export function downloadSeconds(bytes: number, bandwidthKbps: number | null): number | null {
  if (!bandwidthKbps) return null;
  return Math.ceil((bytes * 8) / (bandwidthKbps * 1000));
}
