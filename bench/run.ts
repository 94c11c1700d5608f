// `npm run bench`: the fleet registry's performance targets, each printed as a ratio or a
// percentile against a baseline measured in this same run (absolute times on shared machines lie).
//
//   site list (filters + search) through the API .... p95 < 50 ms
//   check-in throughput ................................ ≥ 50 % of a no-op Hono endpoint, p99 < 50 ms
//   CSV import of 50,000 rows ........................... < 10 s, flat memory
//
// Uses a PostgreSQL database `outpost_bench` (seeded once with 100,000 sites; reseeded if the
// count is off). Set BENCH_PG_URL to use another server; BENCH_SITES to change the fleet size.
import fs from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { and, asc, eq, sql } from 'drizzle-orm';
import { benchDbUrl, openBenchFleet, startBenchServer } from './bench-fleet.ts';
import { sites } from '../api/src/db/schema/index.ts';
import { makeApiToken } from '../api/src/test/factories.ts';
import { createSecretBox } from '../api/src/lib/secret-box.ts';
import { issueDeviceToken } from '../api/src/services/sites/device-token.ts';

const SITES = Number(process.env.BENCH_SITES ?? 100_000);
// BENCH_DB: a database of one's own (a helper measuring a migration must not migrate the shared one).
const DB = process.env.BENCH_DB ?? 'outpost_bench';
const dbUrl = benchDbUrl(DB);
const results: Record<string, unknown> = {};
// BENCH_ONLY=list,checkin,import runs a subset.
const only = (part: string) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(part);

function pct(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
function line(s: string) {
  process.stdout.write(s + '\n');
}

// --- database -------------------------------------------------------------------------------
const { handle, org, seeded } = await openBenchFleet({ db: DB, sites: SITES, line });
// Fresh planner statistics (this server may run without autovacuum; new extended statistics need one ANALYZE).
await handle.db.execute(seeded ? sql`analyze` : sql`analyze sites`);
const secretKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
const viewer = await makeApiToken(handle.db, org.id, 'viewer');
const operator = await makeApiToken(handle.db, org.id, 'operator');

// Device tokens for 2,000 sites (new ones each run; the old ones stop working, as in real life).
const box = await createSecretBox(Buffer.from(secretKey, 'base64'));
const some = await handle.db
  .select({ id: sites.id })
  .from(sites)
  .where(eq(sites.orgId, org.id))
  .orderBy(asc(sites.code))
  .limit(2000);
const deviceTokens: string[] = [];
for (const s of some) {
  const { token } = await issueDeviceToken({
    ctx: { db: handle.db, orgId: org.id, actor: { userId: null, tokenId: null, role: 'operator' } },
    box,
    input: { siteId: s.id },
  });
  deviceTokens.push(token);
}

// --- server ---------------------------------------------------------------------------------
// BENCH_PROF=<dir> writes a CPU profile of the API process (node --cpu-prof) when it stops.
const profile = process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : [];
const { child, base } = await startBenchServer({ dbUrl, secretKey, nodeArgs: profile });
/** utime + stime of a process, in clock ticks (100 per second on Linux). */
const ticksOf = (pid: string) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};
const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

try {
  // --- 1. site list -------------------------------------------------------------------------
  if (only('list')) {
    const mixes = [
      '',
      'q=tumaini',
      'q=NAI-KIB-0001',
      'region=Coast&status=behind',
      'status=silent',
      'status=never_reported',
      'tag=pilot&connectivity=offline',
      'version=2.1.0&sort=reportedAt&order=desc',
      'sort=name',
      'status=failed&region=Rift&district=Nakuru',
      'q=health&region=Nyanza&sort=name',
      'connectivity=intermittent&status=on_target',
    ];
    const get = async (qs: string) => {
      const t = performance.now();
      const res = await fetch(`${base}/api/v1/sites?limit=50&${qs}`, {
        headers: { authorization: `Bearer ${viewer.token}` },
      });
      const body = (await res.json()) as { nextCursor: string | null };
      if (res.status !== 200) throw new Error(`list ${qs}: ${res.status}`);
      return { ms: performance.now() - t, next: body.nextCursor };
    };
    for (const m of mixes) await get(m); // warm-up
    const all: number[] = [];
    const perMix: Record<string, number[]> = {};
    for (let round = 0; round < 20; round++) {
      for (const m of mixes) {
        const first = await get(m);
        (perMix[m || '(all)'] ??= []).push(first.ms);
        all.push(first.ms);
        if (first.next) {
          const second = await get(`${m}&cursor=${first.next}`);
          all.push(second.ms);
        }
      }
    }
    all.sort((a, b) => a - b);
    line(
      '\n1. Site list through the API (100,000 sites, 12 filter/search mixes × 20 rounds, first and next page)',
    );
    for (const [m, xs] of Object.entries(perMix)) {
      xs.sort((a, b) => a - b);
      line(
        `   ${m.padEnd(45)} p50 ${pct(xs, 0.5).toFixed(1).padStart(6)} ms  p95 ${pct(xs, 0.95).toFixed(1).padStart(6)} ms`,
      );
    }
    line(
      `   overall: p50 ${pct(all, 0.5).toFixed(1)} ms, p95 ${pct(all, 0.95).toFixed(1)} ms (target p95 < 50 ms) → ${pct(all, 0.95) < 50 ? 'MET' : 'NOT MET'}`,
    );
    results.listP95 = pct(all, 0.95);
  }

  // --- 2. check-in throughput vs a no-op endpoint ------------------------------------------
  if (only('checkin')) {
    const body = (i: number) =>
      JSON.stringify({
        version: '2.3.0',
        status: 'healthy',
        healthChecks: [{ name: 'web', ok: true }],
        dockerVersion: '27.3.1',
        imageStore: 'overlay2',
        composeVersion: '2.29.7',
        diskFreeBytes: 1e10,
        idempotencyKey: `bench-${Date.now()}-${i}`,
      });
    const cannon = (opts: autocannon.Options) =>
      new Promise<autocannon.Result>((resolve, reject) =>
        autocannon(opts, (e: Error | null, r: autocannon.Result) => (e ? reject(e) : resolve(r))),
      );
    let n = 0;
    // 100 connections: thousands of sites report independently, so many requests are in flight at once.
    const common = { connections: 100, duration: 10, pipelining: 1 };
    // Every run starts from the same table state, whatever earlier runs left behind: a development
    // server may run without autovacuum (this one does), and dead rows would slow each run more.
    await handle.db.execute(sql`vacuum analyze sites, site_reports`);
    // CPU time of the API process and of PostgreSQL (its background processes and the backends of
    // this database; Linux /proc), to say per request where the time goes: the API, PostgreSQL and
    // the load generator share the machine's cores.
    const pgTicks = () => {
      const byPid = new Map<string, number>();
      for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
          if (cmd.startsWith('postgres') && (cmd.includes(` ${DB} `) || !cmd.includes('(')))
            byPid.set(d, ticksOf(d));
        } catch {
          /* exited meanwhile */
        }
      }
      return byPid;
    };
    const cpu = () => ({ api: ticksOf(String(child.pid)), pg: pgTicks() });
    const pgDelta = (a: Map<string, number>, b: Map<string, number>) =>
      [...b].reduce((sum, [pid, t]) => sum + t - (a.get(pid) ?? 0), 0);
    // Busy ticks of the whole machine (/proc/stat), which shows what other jobs took meanwhile.
    const machine = () =>
      fs
        .readFileSync('/proc/stat', 'utf8')
        .split('\n')[0]!
        .split(/\s+/)
        .slice(1, 9)
        .map(Number)
        .reduce((busy, v, i) => (i === 3 || i === 4 ? busy : busy + v), 0);
    const measured = async (run: () => Promise<autocannon.Result>) => {
      const before = { ...cpu(), all: machine(), self: process.cpuUsage(), t: performance.now() };
      const r = await run();
      const after = { ...cpu(), all: machine() };
      const secs = (performance.now() - before.t) / 1000;
      const self = process.cpuUsage(before.self);
      const us = (ticks: number) => ((ticks * 1e6) / 100 / r.requests.total).toFixed(0);
      return {
        r,
        cpuPerRequest:
          `CPU per request: API ${us(after.api - before.api)} µs, PostgreSQL ${us(pgDelta(before.pg, after.pg))} µs; ` +
          `load generator ${((self.user + self.system) / 1e4 / secs).toFixed(0)} %, whole machine ${((after.all - before.all) / secs).toFixed(0)} % of ${os.cpus().length * 100} %`,
      };
    };
    // Each request a check-in of another site, with its own device token.
    const checkins = [
      {
        method: 'POST' as const,
        setupRequest: (req: autocannon.Request) => {
          const i = n++;
          return {
            ...req,
            body: body(i),
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${deviceTokens[i % deviceTokens.length]}`,
            },
          };
        },
      },
    ];
    await cannon({
      url: `${base}/bench/noop`,
      method: 'POST',
      body: body(0),
      headers: { 'content-type': 'application/json' },
      ...common,
      duration: 2,
    });
    const { r: noop, cpuPerRequest: noopCpu } = await measured(() =>
      cannon({
        url: `${base}/bench/noop`,
        method: 'POST',
        body: body(0),
        headers: { 'content-type': 'application/json' },
        ...common,
      }),
    );
    const { r: checkin, cpuPerRequest: checkinCpu } = await measured(() =>
      cannon({
        url: `${base}/api/v1/checkin`,
        ...common,
        requests: checkins,
      }),
    );
    // The same requests against a route that does only the API's side of a check-in without writing it
    // (bench/server.ts): how far the API itself stays from the no-op, whatever the database costs.
    const { r: dry, cpuPerRequest: dryCpu } = await measured(() =>
      cannon({
        url: `${base}/bench/checkin-dry`,
        ...common,
        requests: checkins,
      }),
    );
    const ratio = checkin.requests.average / noop.requests.average;
    line('\n2. Check-in ingestion (autocannon, 100 connections, 10 s each, same server)');
    line(
      `   no-op Hono endpoint: ${noop.requests.average.toFixed(0)} req/s, p99 ${noop.latency.p99} ms; ${noopCpu}`,
    );
    line(
      `   POST /api/v1/checkin: ${checkin.requests.average.toFixed(0)} req/s, p99 ${checkin.latency.p99} ms, non-2xx ${checkin.non2xx}, errors ${checkin.errors}; ${checkinCpu}`,
    );
    line(
      `   for scale, the check-in's API work without the database or middleware (token hash, body, validation, answer): ${dry.requests.average.toFixed(0)} req/s = ${((dry.requests.average / noop.requests.average) * 100).toFixed(0)} % of the no-op, non-2xx ${dry.non2xx}; ${dryCpu}`,
    );
    line(
      `   ratio ${(ratio * 100).toFixed(0)} % (target ≥ 50 %) → ${ratio >= 0.5 ? 'MET' : 'NOT MET'}; p99 ${checkin.latency.p99} ms (target < 50 ms) → ${checkin.latency.p99 < 50 ? 'MET' : 'NOT MET'}`,
    );
    results.checkinRatio = ratio;
  }

  // --- 3. CSV import of 50,000 rows ----------------------------------------------------------
  if (only('import')) {
    const rows = 50_000;
    const header =
      'code,name,region,district,facility_type,tags,connectivity,bandwidth_kbps,timezone,maintenance_window,latitude,longitude,contact_name,contact_phone,contact_email\n';
    let i = 0;
    const csvStream = () =>
      new ReadableStream<Uint8Array>({
        pull(ctl) {
          const enc = new TextEncoder();
          if (i === 0) ctl.enqueue(enc.encode(header));
          let chunk = '';
          for (let k = 0; k < 1000 && i < rows; k++, i++) {
            chunk += `IMP-${String(i).padStart(6, '0')},Imported clinic ${i},Coast,Kilifi,dispensary,pilot;imported,intermittent,384,Africa/Nairobi,daily 22:00-04:00,-3.6,39.8,Jane ${i},+254700${String(i).padStart(6, '0')},site${i}@example.org\n`;
          }
          if (chunk) ctl.enqueue(enc.encode(chunk));
          if (i >= rows) ctl.close();
        },
      });
    const rssBefore = rssOf(child.pid!);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssOf(child.pid!));
    }, 50);
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/sites/import?mode=partial`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv', authorization: `Bearer ${operator.token}` },
      body: csvStream(),
      duplex: 'half',
    } as RequestInit);
    const report = (await res.json()) as Record<string, unknown>;
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    line('\n3. CSV import, 50,000 rows, streamed upload (partial mode)');
    line(
      `   status ${res.status}: ${JSON.stringify({ rows: report.rows, created: report.created, updated: report.updated, failed: report.failed })}`,
    );
    line(
      `   ${secs.toFixed(2)} s (target < 10 s) → ${secs < 10 && res.status === 200 ? 'MET' : 'NOT MET'}; server RSS ${(rssBefore / 2 ** 20).toFixed(0)} MB → peak ${(rssPeak / 2 ** 20).toFixed(0)} MB (+${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MB)`,
    );
    results.importSeconds = secs;
    // Leave the fleet as it was for the next run.
    await handle.db.delete(sites).where(and(eq(sites.orgId, org.id), sql`${sites.code} like 'IMP-%'`));
  }
} finally {
  child.kill('SIGTERM');
  await handle.close();
}
