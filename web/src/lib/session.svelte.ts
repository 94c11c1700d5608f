import { goto } from '$app/navigation';
import { api, ApiError, canManageOrg as roleCanManageOrg, configureApi, type Me } from '$lib/api';
import { useLocale } from '$lib/i18n';
import { bootMe } from '$lib/boot';

/** Who is signed in, loaded from GET /api/v1/me once at startup and replaced on sign-in. */
export class Session {
  me = $state<Me | null>(null);
  /** Whether /me has been asked at least once (so the first screen knows where to go). */
  loaded = $state(false);

  readonly canManageOrg = $derived(roleCanManageOrg(this.me?.role));

  #pending: Promise<Me | null> | null = null;

  /** Asks the API who we are; a 401 means signed out. Concurrent callers share one request. */
  load(): Promise<Me | null> {
    if (this.loaded) return Promise.resolve(this.me);
    // The first answer may be the one app.html asked for before the scripts arrived.
    this.#pending ??= bootMe(() => api.me()).then(
      (me) => this.#set(me),
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) return this.#set(null);
        this.#pending = null;
        throw err;
      },
    );
    return this.#pending;
  }

  /** Asks again (e.g. after changing one's own role); signed out by now means off to /login. */
  async refresh(): Promise<Me | null> {
    this.loaded = false;
    const me = await this.load();
    if (!me) await goto(loginPath(location.pathname + location.search));
    return me;
  }

  signedIn(me: Me) {
    this.#set(me);
  }

  /** Ends the session on the server (if it still exists) and forgets it here. */
  async signOut() {
    try {
      await api.auth.logout();
    } catch (err) {
      // Already signed out on the server: nothing left to end.
      if (!(err instanceof ApiError && err.status === 401)) throw err;
    }
    this.#set(null);
  }

  clear() {
    this.#set(null);
  }

  #set(me: Me | null): Me | null {
    // The person's saved language wins over this device's and the browser's.
    if (me?.user?.language) void useLocale(me.user.language);
    this.me = me;
    this.loaded = true;
    this.#pending = null;
    return me;
  }
}

export const session = new Session();

configureApi({
  csrfToken: () => session.me?.csrfToken ?? null,
  unauthenticated: () => {
    session.clear();
    if (location.pathname !== '/login') void goto(loginPath(location.pathname + location.search));
  },
});

/** The sign-in page, remembering where to come back to. */
export function loginPath(next?: string): string {
  return next && next !== '/' && next !== '/login' ? `/login?next=${encodeURIComponent(next)}` : '/login';
}

/** Where to go after signing in: only paths on this site, never another origin. */
export function safeNext(next: string | null): string {
  return next && /^\/(?![/\\])/.test(next) && !next.startsWith('/login') ? next : '/';
}

/** A coordinator's start page is their own sites; everyone else's is the fleet. */
export function homeFor(me: Me | null): string {
  return me?.role === 'coordinator' ? '/my' : '/';
}
