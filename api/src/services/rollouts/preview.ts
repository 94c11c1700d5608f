import type { ServiceCtx } from '../context.ts';
import type { PlanInput } from './input.ts';
import {
  activeConflicts,
  assignWaves,
  checkSchedule,
  downloadSeconds,
  loadPlanSites,
  loadRolloutRelease,
  sizeModel,
} from './plan.ts';

const SAMPLE = 50;

function percentile(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * What a plan would do, before anything is written: the sites of each wave, those already on the
 * release, the bytes each site downloads (full, or a delta from the release it reports) and how long
 * that takes at its bandwidth, the sites reachable only by sneakernet, and sites that another rollout
 * holds. The same resolution as create, so what the preview shows is what create schedules.
 */
export async function previewRollout({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: PlanInput;
  now?: Date;
}) {
  const release = await loadRolloutRelease(ctx, input.releaseId);
  checkSchedule(input.waves, now);
  const seed = input.seed ?? crypto.randomUUID().slice(0, 8);
  const all = await loadPlanSites(ctx);
  const { waves, unknownCodes } = assignWaves(all, input.waves, seed);
  const baseIds = [...new Set(all.map((s) => s.reportedReleaseId).filter((x): x is string => !!x))];
  const sizes = await sizeModel(ctx, release, baseIds);
  const conflicts = await activeConflicts(
    ctx,
    waves.flatMap((w) => w.sites.map((s) => s.id)),
  );
  const conflictBySite = new Map(conflicts.map((c) => [c.siteId, c]));
  const assigned = waves.reduce((n, w) => n + w.sites.length, 0);
  return {
    release: {
      id: release.release.id,
      version: release.release.version,
      state: release.release.state,
      fullBytes: sizes.full,
      bundlable: release.images.length > 0 && !!release.release.composeTemplate,
    },
    seed,
    sitesInFleet: all.length,
    unassigned: all.length - assigned,
    unknownCodes,
    waves: waves.map((w) => {
      let already = 0;
      let sneakernet = 0;
      let bytes = 0;
      let deltas = 0;
      let unknownBandwidth = 0;
      let conflicting = 0;
      const secs: number[] = [];
      const sample: {
        id: string;
        code: string;
        name: string;
        region: string | null;
        connectivity: string;
        reportedVersion: string | null;
        bytes: number;
        delta: boolean;
        downloadSeconds: number | null;
        conflict: string | null;
      }[] = [];
      for (const s of w.sites) {
        const size = sizes.forSite(s);
        const onRelease = s.reportedReleaseId === release.release.id;
        if (onRelease) already++;
        if (s.connectivity === 'offline') sneakernet++;
        if (size.delta) deltas++;
        bytes += size.bytes;
        const t = downloadSeconds(size.bytes, s.bandwidthKbps);
        if (!onRelease && s.connectivity !== 'offline') {
          if (t === null) unknownBandwidth++;
          else secs.push(t);
        }
        const c = conflictBySite.get(s.id);
        if (c) conflicting++;
        if (sample.length < SAMPLE) {
          sample.push({
            id: s.id,
            code: s.code,
            name: s.name,
            region: s.region,
            connectivity: s.connectivity,
            reportedVersion: s.reportedVersion,
            bytes: size.bytes,
            delta: size.delta,
            downloadSeconds: t,
            conflict: c ? c.rolloutName : null,
          });
        }
      }
      secs.sort((a, b) => a - b);
      return {
        position: w.position,
        name: w.name,
        startsAt: w.startsAt.toISOString(),
        deadlineAt: w.deadlineAt.toISOString(),
        sites: w.sites.length,
        alreadyOnRelease: already,
        toInstall: w.sites.length - already,
        sneakernet,
        deltas,
        bytes,
        medianDownloadSeconds: percentile(secs, 0.5),
        maxDownloadSeconds: secs.length ? secs[secs.length - 1]! : null,
        unknownBandwidth,
        conflicts: conflicting,
        sample,
      };
    }),
    conflicts: conflicts
      .slice(0, 100)
      .map((c) => ({
        siteId: c.siteId,
        code: all.find((s) => s.id === c.siteId)?.code ?? '',
        rolloutId: c.rolloutId,
        rolloutName: c.rolloutName,
      })),
    conflictCount: conflicts.length,
  };
}
