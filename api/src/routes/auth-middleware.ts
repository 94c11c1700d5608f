import { OpenAPIHono } from '@hono/zod-openapi';
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { AppEnv, AppContext } from './app-env.ts';
import { resolveApiToken, resolveSession } from '../services/auth/resolve.ts';
import { csrfFor } from '../services/auth/login.ts';
import { AppError, ForbiddenError, UnauthenticatedError } from '../lib/errors.ts';
import { timingSafeEqualString } from '../lib/crypto.ts';
import { can, type Permission } from '../services/auth/roles.ts';
import type { ServiceCtx } from '../services/context.ts';

export const SESSION_COOKIE = 'outpost_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Who is calling: a bearer API token, or a session cookie. Cookie-authenticated writes must carry
 * the session's CSRF token in `X-CSRF-Token` (bearer tokens are not sent by browsers on their own,
 * so they need none).
 */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const db = c.var.db;
  const auth = c.req.header('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m)
      throw new UnauthenticatedError('The Authorization header must be "Bearer <token>".', 'INVALID_TOKEN');
    c.set('principal', await resolveApiToken(db, m[1]!));
    c.set('sessionToken', null);
    return next();
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  const principal = cookie ? await resolveSession(db, cookie) : null;
  if (!principal || !cookie)
    throw new UnauthenticatedError(cookie ? 'Your session has ended. Sign in again.' : undefined);
  if (!SAFE_METHODS.has(c.req.method)) {
    const sent = c.req.header('x-csrf-token') ?? '';
    if (!timingSafeEqualString(sent, await csrfFor(cookie))) {
      throw new AppError(
        'forbidden',
        'CSRF_FAILED',
        'The request is missing its CSRF token. Reload the page and try again.',
      );
    }
  }
  c.set('principal', principal);
  c.set('sessionToken', cookie);
  return next();
});

/**
 * For paths another router may have authenticated already (routes/sites.ts covers /sites/*, and is
 * mounted first): once is enough.
 */
export const authenticateOnce = createMiddleware<AppEnv>((c, next) =>
  c.get('principal') ? next() : authenticate(c, next),
);

/** A router whose `paths` (Hono path patterns) are for signed-in callers only. */
export function authenticatedRouter(...paths: string[]) {
  const router = new OpenAPIHono<AppEnv>();
  for (const path of paths) router.use(path, authenticate);
  return router;
}

/** The service context for this request, after checking the caller's role allows `permission`. */
export function serviceCtx(c: AppContext, permission: Permission): ServiceCtx {
  const p = c.var.principal;
  if (!can(p.role, permission)) throw new ForbiddenError();
  return {
    db: c.var.db,
    orgId: p.orgId,
    actor: { userId: p.userId, tokenId: p.tokenId, role: p.role },
    requestId: c.var.requestId,
  };
}
