import type { DashboardView } from '$lib/components/dashboard/filter';

/**
 * Requests app.html's inline script sends on a cold load, before the scripts arrive: the session
 * (/me) and, on the dashboard, its data in one request (GET /fleet/dashboard: the overview, the
 * adoption curve and the filters' values). On a slow link this takes the scripts' download and the
 * /me round trip out of the chain in front of the figures (docs/benchmarks.md, "Fleet dashboard").
 * Each answer is taken once; whatever does not match what the app would ask (another view, an error)
 * is dropped and the app asks as usual.
 */
interface Boot {
  me?: Promise<Response | null>;
  dashboard?: {
    params: Record<string, string>;
    all?: Promise<Response | null>;
    /** The combined answer's body, read once and shared by its three parts. */
    body?: Promise<Record<string, unknown> | null>;
    taken?: Set<string>;
  };
}

function boot(): Boot {
  return ((globalThis as { __outpostBoot?: Boot }).__outpostBoot ??= {});
}

/**
 * Settles once the requests app.html sent have been answered (or have failed). Work that can wait (the
 * rest of the messages) waits for it: on a slow link it would share the bandwidth with the page's data.
 */
export const bootAnswered: Promise<void> = Promise.allSettled([boot().me, boot().dashboard?.all]).then(
  () => undefined,
);

/** The body of a 200 answer sent early, or `ask()` when there is none (or it failed). */
async function answer<T>(early: Promise<Response | null> | undefined, ask: () => Promise<T>): Promise<T> {
  const res = early ? await early : null;
  return res?.ok ? ((await res.json()) as T) : ask();
}

/** One part (`overview`, `adoption`, `facets`) of the early dashboard answer, once; else `ask()`. */
async function part<T>(key: string, ask: () => Promise<T>): Promise<T> {
  const early = boot().dashboard;
  if (!early?.all || early.taken?.has(key)) return ask();
  (early.taken ??= new Set()).add(key);
  early.body ??= early.all.then((res) => (res?.ok ? (res.json() as Promise<Record<string, unknown>>) : null));
  const body = await early.body.catch(() => null);
  return body && key in body ? (body[key] as T) : ask();
}

/** The early /me: its body, null when signed out, else `ask()`. */
export function bootMe<T>(ask: () => Promise<T | null>): Promise<T | null> {
  const early = boot().me;
  delete boot().me;
  if (!early) return ask();
  return early.then((res) => (res?.status === 401 ? null : answer(Promise.resolve(res), ask)));
}

/** The early dashboard data, if it was for this very view. */
export function bootDashboard<O, A>(
  view: DashboardView,
  ask: { overview: () => Promise<O>; adoption: () => Promise<A> },
): [Promise<O>, Promise<A>] {
  const early = boot().dashboard;
  const want: Record<string, string> = {};
  for (const k of ['region', 'district', 'tag', 'connectivity', 'silentDays'] as const)
    if (view[k]) want[k] = String(view[k]);
  want.days = String(view.days);
  if (!early || JSON.stringify(early.params) !== JSON.stringify(want)) {
    // Another view: this early answer will never fit (the facets' part may still, by region).
    if (early) (early.taken ??= new Set()).add('overview').add('adoption');
    return [ask.overview(), ask.adoption()];
  }
  return [part('overview', ask.overview), part('adoption', ask.adoption)];
}

/** The early facets of the dashboard's pickers, if they were for this region. */
export function bootFacets<F>(region: string | undefined, ask: () => Promise<F>): Promise<F> {
  const early = boot().dashboard;
  if (!early || (early.params.region ?? '') !== (region ?? '')) {
    if (early) (early.taken ??= new Set()).add('facets');
    return ask();
  }
  return part('facets', ask);
}
