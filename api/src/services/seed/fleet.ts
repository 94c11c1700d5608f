import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { releases, siteReports, sites } from '../../db/schema/index.ts';
import { rebuildVersionSpans } from '../fleet/spans.ts';
import { seededRandom } from '../../lib/seeded-random.ts';

/**
 * A realistic fleet for demos and benchmarks: regions and districts, facility types, a
 * connectivity mix, a release history, version drift (most sites on the latest or one behind, a
 * tail further back, a few on local builds), months of report history, failures and silent sites.
 * Deterministic for a given seed so benchmark runs compare like with like.
 */
export interface SeedOptions {
  orgId: string;
  sites: number;
  /** Average reports per site over the history window. */
  reportsPerSite?: number;
  months?: number;
  seed?: number;
  now?: Date;
  onProgress?: (done: number, total: number) => void;
}

const REGIONS: Record<string, string[]> = {
  Nairobi: ['Kibra', 'Embakasi', 'Kasarani', 'Langata', 'Westlands'],
  Coast: ['Mombasa', 'Kilifi', 'Kwale', 'Lamu', 'Taita'],
  Rift: ['Nakuru', 'Eldoret', 'Kericho', 'Narok', 'Kajiado', 'Baringo'],
  Western: ['Kakamega', 'Bungoma', 'Busia', 'Vihiga'],
  Nyanza: ['Kisumu', 'Siaya', 'Homa Bay', 'Migori', 'Kisii'],
  Eastern: ['Machakos', 'Kitui', 'Meru', 'Embu', 'Marsabit'],
  Central: ['Nyeri', 'Muranga', 'Kiambu', 'Kirinyaga'],
  'North Eastern': ['Garissa', 'Wajir', 'Mandera'],
};
const FACILITY = [
  ['dispensary', 45],
  ['health_centre', 30],
  ['sub_county_hospital', 15],
  ['county_hospital', 7],
  ['referral_hospital', 3],
] as const;
const KIND_NAME: Record<string, string> = {
  dispensary: 'Dispensary',
  health_centre: 'Health Centre',
  sub_county_hospital: 'Sub-County Hospital',
  county_hospital: 'County Hospital',
  referral_hospital: 'Referral Hospital',
};
const PLACES = [
  'Amani',
  'Baraka',
  'Chemchemi',
  'Dawa',
  'Elimu',
  'Faraja',
  'Goshen',
  'Huruma',
  'Imani',
  'Jamii',
  'Kilimo',
  'Lulu',
  'Mwangaza',
  'Neema',
  'Upendo',
  'Pendo',
  'Riziki',
  'Subira',
  'Tumaini',
  'Umoja',
  'Vumilia',
  'Wema',
  'Yala',
  'Zawadi',
];
const VERSIONS = ['1.8.0', '1.9.0', '1.9.1', '2.0.0', '2.1.0', '2.2.0', '2.2.1', '2.3.0'];

function weighted<T>(r: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((a, [, w]) => a + w, 0);
  let x = r() * total;
  for (const [v, w] of items) if ((x -= w) < 0) return v;
  return items[items.length - 1]![0];
}

export async function seedFleet(db: Db, o: SeedOptions) {
  const r = seededRandom(o.seed ?? 42);
  const now = o.now ?? new Date();
  const months = o.months ?? 6;
  const perSite = o.reportsPerSite ?? 6;
  const day = 86_400_000;

  // Releases published over the history window, oldest first.
  const existing = await db.select().from(releases).where(eq(releases.orgId, o.orgId));
  const have = new Map(existing.map((x) => [x.version, x]));
  for (const [i, version] of VERSIONS.entries()) {
    if (have.has(version)) continue;
    const publishedAt = new Date(
      now.getTime() - (VERSIONS.length - i) * ((months * 30) / VERSIONS.length) * day,
    );
    const [row] = await db
      .insert(releases)
      .values({
        orgId: o.orgId,
        version,
        state: version === '1.8.0' ? 'deprecated' : 'published',
        channel: 'stable',
        notes: `Release ${version}.`,
        publishedAt,
        createdAt: publishedAt,
        edgeScriptsVersion: `1.${i}.0`,
      })
      .returning();
    have.set(version, row!);
  }
  const latest = have.get(VERSIONS.at(-1)!)!;
  const regionNames = Object.keys(REGIONS);
  const existingCount = (
    await db
      .select({ n: sql<number>`count(*)::int` })
      .from(sites)
      .where(eq(sites.orgId, o.orgId))
  )[0]!.n;

  const BATCH = 1000;
  let done = 0;
  for (let start = 0; start < o.sites; start += BATCH) {
    const siteRows: (typeof sites.$inferInsert)[] = [];
    const histories: {
      code: string;
      reports: Omit<typeof siteReports.$inferInsert, 'siteId' | 'orgId'>[];
    }[] = [];
    for (let i = start; i < Math.min(o.sites, start + BATCH); i++) {
      const n = existingCount + i + 1;
      const region = regionNames[Math.floor(r() * regionNames.length)]!;
      const district = REGIONS[region]![Math.floor(r() * REGIONS[region]!.length)]!;
      const kind = weighted(r, FACILITY);
      const connectivity = weighted(r, [
        ['online', 55],
        ['intermittent', 30],
        ['offline', 15],
      ] as const);
      const code = `${region.slice(0, 3).toUpperCase()}-${district.slice(0, 3).toUpperCase()}-${String(n).padStart(6, '0')}`;
      const tags = [
        r() < 0.05 ? 'pilot' : null,
        r() < 0.3 ? 'art-clinic' : null,
        r() < 0.2 ? 'maternity' : null,
        connectivity === 'offline' ? 'usb-delivery' : null,
      ].filter((x): x is string => x !== null);
      // Drift: most sites on the latest or one behind, a tail further back, a few local builds.
      const fate = r();
      const neverReported = fate < 0.04;
      const silent = !neverReported && fate < 0.1;
      const failed = !neverReported && !silent && fate < 0.13;
      const vIdx = Math.max(
        0,
        VERSIONS.length -
          1 -
          weighted(r, [
            [0, 55],
            [1, 25],
            [2, 10],
            [3, 5],
            [5, 5],
          ] as const),
      );
      const version = r() < 0.01 ? `${VERSIONS[vIdx]}-local` : VERSIONS[vIdx]!;
      const lastAt = neverReported
        ? null
        : silent
          ? new Date(now.getTime() - (8 + r() * 80) * day)
          : new Date(
              now.getTime() -
                r() * (connectivity === 'online' ? 1 : connectivity === 'intermittent' ? 3 : 6) * day,
            );
      const status = failed ? 'failed' : r() < 0.05 ? 'degraded' : 'healthy';
      const reports: (typeof histories)[number]['reports'] = [];
      // Heartbeats carry the scripts version; a few sites kept the scripts of an older install.
      const releaseScripts = have.get(version)?.edgeScriptsVersion ?? null;
      const scripts =
        connectivity === 'offline' || !lastAt
          ? null
          : r() < 0.06
            ? `1.${Math.max(0, vIdx - 1 - Math.floor(r() * 2))}.0`
            : releaseScripts;
      if (lastAt) {
        const count = Math.max(1, Math.round(perSite * (0.5 + r())));
        for (let k = count - 1; k >= 0; k--) {
          const at = new Date(lastAt.getTime() - k * ((months * 30 * day) / count) * (0.8 + r() * 0.4));
          const vAt = VERSIONS[Math.max(0, vIdx - Math.floor((k / count) * 3))]!;
          const v = k === 0 ? version : vAt;
          const source = connectivity === 'offline' ? (r() < 0.8 ? 'receipt_code' : 'manual') : 'heartbeat';
          reports.push({
            source,
            version: v,
            releaseId: have.get(v)?.id ?? null,
            status: k === 0 ? status : 'healthy',
            healthChecks:
              source === 'heartbeat'
                ? [
                    { name: 'web', ok: !(k === 0 && failed) },
                    { name: 'database', ok: true },
                  ]
                : [],
            dockerVersion: source === 'heartbeat' ? '27.3.1' : null,
            imageStore: source === 'heartbeat' ? (r() < 0.3 ? 'containerd' : 'overlay2') : null,
            diskFreeBytes: source === 'heartbeat' ? Math.round((5 + r() * 200) * 1e9) : null,
            edgeScriptsVersion: k === 0 ? scripts : null,
            idempotencyKey: `seed-${n}-${k}`,
            reportedAt: at,
            receivedAt: at,
          });
        }
      }
      siteRows.push({
        orgId: o.orgId,
        code,
        name: `${PLACES[Math.floor(r() * PLACES.length)]} ${district} ${KIND_NAME[kind]}`,
        region,
        district,
        facilityType: kind,
        tags,
        connectivity,
        bandwidthKbps: connectivity === 'online' ? 2048 : connectivity === 'intermittent' ? 384 : 64,
        timezone: 'Africa/Nairobi',
        maintenanceWindow: 'daily 22:00-04:00',
        latitude: -4.5 + r() * 9,
        longitude: 34 + r() * 7,
        contactName: `Coordinator ${n}`,
        contactPhone: `+2547${String(Math.floor(r() * 1e8)).padStart(8, '0')}`,
        reportedVersion: lastAt ? version : null,
        reportedReleaseId: lastAt ? (have.get(version)?.id ?? null) : null,
        reportedStatus: lastAt ? status : null,
        reportedAt: lastAt,
        reportedScriptsVersion: scripts,
        targetReleaseId: r() < 0.9 ? latest.id : have.get(VERSIONS.at(-2)!)!.id,
        createdAt: new Date(now.getTime() - (months * 30 + r() * 60) * day),
      });
      histories.push({ code, reports });
    }
    await db.transaction(async (tx) => {
      const inserted = await tx.insert(sites).values(siteRows).returning({ id: sites.id, code: sites.code });
      const ids = new Map(inserted.map((x) => [x.code, x.id]));
      const reportRows = histories.flatMap((hh) =>
        hh.reports.map((rep) => ({ ...rep, orgId: o.orgId, siteId: ids.get(hh.code)! })),
      );
      for (let k = 0; k < reportRows.length; k += 2000)
        await tx.insert(siteReports).values(reportRows.slice(k, k + 2000));
      await rebuildVersionSpans(tx as unknown as Db, { siteIds: inserted.map((x) => x.id) });
    });
    done += siteRows.length;
    o.onProgress?.(done, o.sites);
  }
  return { sites: done, releases: VERSIONS.length };
}
