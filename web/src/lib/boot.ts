import type { DashboardView } from '$lib/components/dashboard/filter';

/**
 * Requests app.html's inline script sends on a cold load, before the scripts arrive: the session
 * (/me) and, on the dashboard, its two data requests. On a slow link this takes the scripts'
 * download and the /me round trip out of the chain in front of the figures (docs/benchmarks.md,
 * "Fleet dashboard"). Each answer is taken once; whatever does not match what the app would ask
 * (another view, an error) is dropped and the app asks as usual.
 */
interface Boot {
  me?: Promise<Response | null>;
  dashboard?: {
    params: Record<string, string>;
    overview?: Promise<Response | null>;
    adoption?: Promise<Response | null>;
    facets?: Promise<Response | null>;
  };
}

function boot(): Boot {
  return ((globalThis as { __outpostBoot?: Boot }).__outpostBoot ??= {});
}

/** The body of a 200 answer sent early, or `ask()` when there is none (or it failed). */
async function answer<T>(early: Promise<Response | null> | undefined, ask: () => Promise<T>): Promise<T> {
  const res = early ? await early : null;
  return res?.ok ? ((await res.json()) as T) : ask();
}

/** The early /me: its body, null when signed out, else `ask()`. */
export function bootMe<T>(ask: () => Promise<T | null>): Promise<T | null> {
  const early = boot().me;
  delete boot().me;
  if (!early) return ask();
  return early.then((res) => (res?.status === 401 ? null : answer(Promise.resolve(res), ask)));
}

/** The early dashboard requests, if they were for this very view. */
export function bootDashboard<O, A>(
  view: DashboardView,
  ask: { overview: () => Promise<O>; adoption: () => Promise<A> },
): [Promise<O>, Promise<A>] {
  const early = boot().dashboard;
  const overview = early?.overview;
  const adoption = early?.adoption;
  if (early) {
    delete early.overview;
    delete early.adoption;
  }
  const want: Record<string, string> = {};
  for (const k of ['region', 'district', 'tag', 'connectivity', 'silentDays'] as const)
    if (view[k]) want[k] = String(view[k]);
  want.days = String(view.days);
  if (!overview || !adoption || JSON.stringify(early!.params) !== JSON.stringify(want))
    return [ask.overview(), ask.adoption()];
  return [answer(overview, ask.overview), answer(adoption, ask.adoption)];
}

/** The early facets request of the dashboard's pickers, if it was for this region. */
export function bootFacets<F>(region: string | undefined, ask: () => Promise<F>): Promise<F> {
  const early = boot().dashboard;
  const facets = early?.facets;
  if (early) delete early.facets;
  return facets && (early!.params.region ?? '') === (region ?? '') ? answer(facets, ask) : ask();
}
