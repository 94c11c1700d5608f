// `npm run bench` (rollouts part): the rollout targets on the 100,000-site seed, each against a
// baseline measured in this same run (absolute times on shared machines lie).
//
//   preview of a 3-wave plan over 100,000 sites ........ < 2 s     (baseline: reading the sites it needs)
//   create and schedule it ............................. < 5 s
//   a scheduler pass with 100,000 running targets ...... < 500 ms  (baseline: counting them)
//   the progress view's data (rollout + attention) ..... p95 < 100 ms
//   check-ins while the rollout runs ................... ≥ 2,000/s, and vs check-ins with no rollout
//
// Uses its own PostgreSQL database `outpost_bench_rollouts` (seeded once, like bench/run.ts; another
// name with BENCH_ROLLOUTS_DB). BENCH_PG_URL / BENCH_SITES as in bench/run.ts.
import autocannon from 'autocannon';
import { asc, eq, inArray, sql } from 'drizzle-orm';
import { benchDbUrl, openBenchFleet, startBenchServer } from './bench-fleet.ts';
import { releases, rollouts, sites } from '../api/src/db/schema/index.ts';
import { createSecretBox } from '../api/src/lib/secret-box.ts';
import { issueDeviceToken } from '../api/src/services/sites/device-token.ts';
import type { ServiceCtx } from '../api/src/services/context.ts';
import { previewRollout } from '../api/src/services/rollouts/preview.ts';
import { createRollout } from '../api/src/services/rollouts/create.ts';
import { runSchedulerPass } from '../api/src/services/rollouts/scheduler.ts';
import { getRollout } from '../api/src/services/rollouts/view.ts';
import { listAttention } from '../api/src/services/rollouts/attention.ts';
import { cancelRollout } from '../api/src/services/rollouts/controls.ts';
import { loadPlanSites } from '../api/src/services/rollouts/plan.ts';

const SITES = Number(process.env.BENCH_SITES ?? 100_000);
const DB = process.env.BENCH_ROLLOUTS_DB ?? 'outpost_bench_rollouts';
const dbUrl = benchDbUrl(DB);
function line(s: string) {
  process.stdout.write(s + '\n');
}
function pct(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}
async function runs(n: number, f: () => Promise<unknown>) {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push((await timed(f))[1]);
  return ms.sort((a, b) => a - b);
}
const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');

// --- database (its own, seeded once) -------------------------------------------------------------
const { handle, org } = await openBenchFleet({ db: DB, sites: SITES, pool: { max: 10 }, line });
// Each run starts from no rollouts and no site targets.
await handle.db.delete(rollouts).where(eq(rollouts.orgId, org.id));
await handle.db.update(sites).set({ targetReleaseId: null }).where(eq(sites.orgId, org.id));
await handle.db.execute(sql`analyze`);
const ctx: ServiceCtx = {
  db: handle.db,
  orgId: org.id,
  actor: { userId: null, tokenId: null, role: 'owner' },
};
const [latest] = await handle.db
  .select()
  .from(releases)
  .where(eq(releases.orgId, org.id))
  .orderBy(sql`published_at desc`)
  .limit(1);
const regions = (
  await handle.db.selectDistinct({ r: sites.region }).from(sites).where(eq(sites.orgId, org.id))
)
  .map((x) => x.r!)
  .sort();

const now = new Date();
const at = (h: number) => new Date(now.getTime() + h * 3_600_000).toISOString();
const plan = {
  name: 'Bench: three waves',
  releaseId: latest!.id,
  seed: 'bench',
  policy: {
    successThreshold: 0.95,
    failureThreshold: 0.1,
    autoAdvance: true,
    soakMinutes: 60,
    bundleLeadHours: 0,
    buildBundles: false,
  },
  waves: [
    { name: 'Pilot', selector: { tags: ['pilot'], share: 20 }, startsAt: at(0), deadlineAt: at(72) },
    {
      name: 'Two regions',
      selector: { regions: regions.slice(0, 2) },
      startsAt: at(96),
      deadlineAt: at(240),
    },
    { name: 'Everyone else', selector: { all: true }, startsAt: at(264), deadlineAt: at(600) },
  ],
};

line(`\nRollouts on ${SITES.toLocaleString()} sites (PostgreSQL, in-process services)`);

// 1. Preview.
const baselineRead = await runs(5, () => loadPlanSites(ctx));
await previewRollout({ ctx, input: plan, now }); // warm
const preview = await runs(5, () => previewRollout({ ctx, input: plan, now }));
const p = await previewRollout({ ctx, input: plan, now });
line(
  `1. Preview of 3 waves (${p.waves.map((w) => w.sites.toLocaleString()).join(' + ')} sites): median ${fmt(pct(preview, 0.5))}, max ${fmt(preview.at(-1)!)}`,
);
line(
  `   baseline, reading the plan's columns of every site: median ${fmt(pct(baselineRead, 0.5))} → preview = ${(pct(preview, 0.5) / pct(baselineRead, 0.5)).toFixed(1)}× the read; target < 2 s → ${verdict(preview.at(-1)! < 2000)}`,
);

// 2. Create and schedule.
const [created, createMs] = await timed(() => createRollout({ ctx, input: { ...plan, draft: false }, now }));
line(
  `2. Create and schedule (${created.sites.toLocaleString()} targets): ${fmt(createMs)}; target < 5 s → ${verdict(createMs < 5000)}`,
);

// 3. Scheduler pass: open the pilot, then, to have 100,000 targets live, open every wave.
await runSchedulerPass(handle.db, { now: new Date(now.getTime() + 60_000) });
await handle.db.execute(
  sql`update rollout_waves set state = 'open', opened_at = ${now.toISOString()}::timestamptz where rollout_id = ${created.id}`,
);
await handle.db.execute(
  sql`update sites s set target_release_id = ${latest!.id} from rollout_targets t where t.rollout_id = ${created.id} and t.site_id = s.id and t.state <> 'skipped'`,
);
await handle.db.execute(sql`analyze rollout_targets`);
const passAt = new Date(now.getTime() + 2 * 60_000);
await runSchedulerPass(handle.db, { now: passAt });
const baselineCount = await runs(10, () =>
  handle.db.execute(sql`select count(*) from rollout_targets where rollout_id = ${created.id}`),
);
const passes = await runs(10, () => runSchedulerPass(handle.db, { now: passAt }));
line(
  `3. Scheduler pass, ${created.sites.toLocaleString()} targets in a running rollout, every wave open: median ${fmt(pct(passes, 0.5))}, p95 ${fmt(pct(passes, 0.95))}`,
);
line(
  `   baseline, counting the rollout's targets: median ${fmt(pct(baselineCount, 0.5))} → ${(pct(passes, 0.5) / pct(baselineCount, 0.5)).toFixed(1)}×; target < 500 ms → ${verdict(pct(passes, 0.95) < 500)}`,
);

// 4. Progress view data.
const baselineProgress = await runs(50, () =>
  handle.db.execute(
    sql`select wave_id, state, healthy, count(*) from rollout_targets where rollout_id = ${created.id} group by 1, 2, 3`,
  ),
);
const progressRead = () =>
  Promise.all([
    getRollout({ ctx, input: { id: created.id } }),
    listAttention({ ctx, input: { id: created.id, limit: 200 } }),
  ]);
// The first reads after 100,000 targets and sites were rewritten also set those rows' hint bits (and
// read them from disk): a once-per-bulk-change cost, printed apart from the steady reads a person
// watching the page makes.
const firstReads = [];
for (let i = 0; i < 3; i++) firstReads.push((await timed(progressRead))[1]);
const progress = await runs(50, progressRead);
line(
  `   the first 3 reads after the waves opened and the sites' targets were set: ${firstReads.map(fmt).join(', ')}`,
);
line(
  `4. Progress view data (rollout with counts + timeline, attention page of 200), 50 reads: p50 ${fmt(pct(progress, 0.5))}, p95 ${fmt(pct(progress, 0.95))}; target p95 < 100 ms → ${verdict(pct(progress, 0.95) < 100)}`,
);
line(
  `   baseline, counting the rollout's targets per wave and state (what the view did before the kept counts): p50 ${fmt(pct(baselineProgress, 0.5))}, p95 ${fmt(pct(baselineProgress, 0.95))}`,
);

// 5. Check-ins through the API while the rollout runs (their sites have live targets), vs with no rollout.
const secretKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
const box = await createSecretBox(Buffer.from(secretKey, 'base64'));
const targeted = (
  (await handle.db.execute(
    sql`select site_id from rollout_targets where rollout_id = ${created.id} and state = 'pending' order by site_id limit 2000`,
  )) as unknown as { rows: { site_id: string }[] }
).rows.map((r) => r.site_id);
const untargetedIds = (
  await handle.db
    .select({ id: sites.id })
    .from(sites)
    .where(eq(sites.orgId, org.id))
    .orderBy(asc(sites.code))
    .limit(2000)
).map((s) => s.id);
const tokensFor = async (ids: string[]) => {
  const out: string[] = [];
  for (const id of ids) out.push((await issueDeviceToken({ ctx, box, input: { siteId: id } })).token);
  return out;
};
const liveTokens = await tokensFor(targeted);
const { child, base } = await startBenchServer({ dbUrl, secretKey });
const cannon = (tokens: string[], version: string) =>
  new Promise<autocannon.Result>((resolve, reject) => {
    let i = 0;
    autocannon(
      {
        url: `${base}/api/v1/checkin`,
        connections: 100,
        duration: 8,
        method: 'POST',
        requests: [
          {
            setupRequest: (req: autocannon.Request) => {
              const k = i++;
              return {
                ...req,
                headers: {
                  'content-type': 'application/json',
                  authorization: `Bearer ${tokens[k % tokens.length]}`,
                },
                body: JSON.stringify({
                  version,
                  status: 'installing',
                  idempotencyKey: `bench-${k}-${Date.now()}`,
                }),
              };
            },
          },
        ],
      },
      (e: Error | null, r: autocannon.Result) => (e ? reject(e) : resolve(r)),
    );
  });
try {
  await cannon(liveTokens, '0.0.0-warm');
  const live = await cannon(liveTokens, '1.0.0');
  await cancelRollout({ ctx, input: { id: created.id } });
  const idleTokens = await tokensFor(untargetedIds);
  const idle = await cannon(idleTokens, '1.0.0');
  line(
    `5. Check-ins (autocannon, 100 connections, 8 s), 2,000 sites whose targets move with each report: ${live.requests.average.toFixed(0)} req/s, p99 ${live.latency.p99} ms, non-2xx ${live.non2xx}`,
  );
  line(
    `   baseline, the same with no rollout (no target to move): ${idle.requests.average.toFixed(0)} req/s, p99 ${idle.latency.p99} ms → ${((live.requests.average / idle.requests.average) * 100).toFixed(0)} %; target ≥ 2,000/s → ${verdict(live.requests.average >= 2000)}`,
  );
} finally {
  child.kill('SIGTERM');
}
await handle.db.delete(rollouts).where(inArray(rollouts.orgId, [org.id]));
await handle.close();
