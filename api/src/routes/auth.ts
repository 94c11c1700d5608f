import { createRoute, z } from '@hono/zod-openapi';
import { setCookie, deleteCookie } from 'hono/cookie';
import { and, eq } from 'drizzle-orm';
import type { AppContext } from './app-env.ts';
import { errors, jsonBody, jsonResponse, Language, Password, Role, okResponse } from './schemas.ts';
import { login, SESSION_TTL_MS } from '../services/auth/login.ts';
import { endSession } from '../services/auth/resolve.ts';
import { describeMe } from '../services/auth/me.ts';
import { SESSION_COOKIE, serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { memberships } from '../db/schema/index.ts';
import { recordAudit } from '../services/audit/record.ts';
import { AppError } from '../lib/errors.ts';
import { changePassword } from '../services/auth/change-password.ts';
import { updateProfile } from '../services/auth/profile.ts';
import { acceptInvite, describeInvite } from '../services/invites/accept.ts';

const LoginInput = z
  .object({
    email: z.email('Enter the email address you sign in with.').max(254),
    password: z.string('Enter your password.').min(1, 'Enter your password.').max(256),
    org: z
      .string()
      .max(100)
      .optional()
      .openapi({ description: 'Organisation slug, for people in several organisations' }),
  })
  .strict()
  .openapi('LoginInput');

const Me = z
  .object({
    user: z
      .object({ id: z.string(), email: z.string(), name: z.string(), language: Language.nullable() })
      .nullable(),
    token: z.object({ id: z.string() }).nullable(),
    organization: z.object({ id: z.string(), name: z.string(), slug: z.string() }),
    role: Role,
    organizations: z.array(z.object({ id: z.string(), name: z.string(), slug: z.string(), role: Role })),
    csrfToken: z.string().nullable(),
  })
  .openapi('Me');

function isSecure(c: AppContext): boolean {
  const setting = c.var.deps.secureCookies ?? 'auto';
  if (setting !== 'auto') return setting;
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

/** Refuses cross-site form posts to login (login CSRF): a browser always sends Origin on a POST. */
function assertSameOrigin(c: AppContext) {
  const origin = c.req.header('origin');
  if (!origin) return;
  const host = c.req.header('x-forwarded-host') ?? c.req.header('host');
  // `Origin: null` (sandboxed frames, file: pages, some redirects) and anything unparsable are cross-site too.
  let originHost: string | null;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = null;
  }
  if (!host || !originHost || originHost !== host)
    throw new AppError('forbidden', 'CSRF_FAILED', 'Sign in from the Outpost page itself.');
}

/** Who is calling (see services/auth/me.ts), for /me and the answers that sign someone in. */
const me = (c: AppContext) =>
  describeMe({ db: c.var.db, principal: c.var.principal, sessionToken: c.var.sessionToken });

/** Sets the session cookie of a fresh session and answers with who is now signed in. */
async function signedIn(c: AppContext, s: { token: string; userId: string; orgId: string }) {
  setCookie(c, SESSION_COOKIE, s.token, {
    httpOnly: true,
    sameSite: 'Lax',
    path: '/',
    secure: isSecure(c),
    maxAge: Math.floor(SESSION_TTL_MS / 1000),
  });
  const [m] = await c.var.db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.userId, s.userId), eq(memberships.orgId, s.orgId)));
  c.set('principal', {
    kind: 'session',
    orgId: s.orgId,
    userId: s.userId,
    tokenId: null,
    sessionId: null,
    role: m!.role,
  });
  c.set('sessionToken', s.token);
  return c.json(await me(c), 200);
}

const UpdateMeInput = z
  .object({
    name: z.string().trim().max(200).optional(),
    language: Language.optional().openapi({ description: 'The language of the web app for this person' }),
  })
  .strict()
  .openapi('UpdateMeInput');

const InviteToken = z
  .string()
  .min(10)
  .max(200)
  .regex(/^[\w-]+$/, 'This is not an invitation token.');
const InviteTokenInput = z.object({ token: InviteToken }).strict().openapi('InviteTokenInput');
const InviteDescription = z
  .object({
    email: z.string(),
    name: z.string(),
    role: Role,
    organization: z.object({ name: z.string() }),
    sites: z.number().int(),
    language: Language.nullable(),
    expiresAt: z.string(),
    hasAccount: z.boolean().openapi({
      description: 'True when this address already has an Outpost account: accept with its password',
    }),
  })
  .openapi('InviteDescription');
const AcceptInviteInput = z
  .object({
    token: InviteToken,
    password: z.string().min(1, 'Enter a password.').max(256),
    name: z.string().trim().max(200).optional(),
    language: Language.optional(),
  })
  .strict()
  .openapi('AcceptInviteInput');

export const authRoutes = authenticatedRouter('/auth/logout', '/me', '/me/password')
  .openapi(
    createRoute({
      method: 'post',
      path: '/auth/login',
      tags: ['auth'],
      summary: 'Sign in with email and password (sets the session cookie)',
      request: { body: jsonBody(LoginInput) },
      responses: { 200: jsonResponse(Me, 'Signed in'), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      assertSameOrigin(c);
      const input = c.req.valid('json');
      const s = await login({
        db: c.var.db,
        input,
        requestId: c.var.requestId,
        clientAddress: c.var.deps.clientAddress?.(c) ?? 'unknown',
      });
      return signedIn(c, s);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/auth/logout',
      tags: ['auth'],
      summary: 'End the current session',
      responses: { 200: okResponse('Signed out'), ...errors(401, 403) },
    }),
    async (c) => {
      const p = c.var.principal;
      if (p.sessionId) {
        await endSession(c.var.db, p.sessionId);
        await recordAudit(serviceCtx(c, 'fleet:read'), {
          action: 'session.logout',
          objectType: 'user',
          objectId: p.userId,
        });
      }
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.json({ ok: true as const }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/me',
      tags: ['auth'],
      summary: 'Who is calling, in which organisation, with which role',
      responses: { 200: jsonResponse(Me, 'The caller'), ...errors(401) },
    }),
    async (c) => c.json(await me(c), 200),
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/me',
      tags: ['auth'],
      summary: 'Change your own name or language',
      request: { body: jsonBody(UpdateMeInput) },
      responses: { 200: jsonResponse(Me, 'Updated'), ...errors(400, 401, 403) },
    }),
    async (c) => {
      await updateProfile({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('json') });
      return c.json(await me(c), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/invites/lookup',
      tags: ['invites'],
      summary: 'What an invitation link is for (no sign-in needed: the token is the proof)',
      request: { body: jsonBody(InviteTokenInput) },
      responses: { 200: jsonResponse(InviteDescription, 'A usable invitation'), ...errors(400, 404, 410) },
    }),
    async (c) => c.json(await describeInvite({ db: c.var.db, token: c.req.valid('json').token }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/invites/accept',
      tags: ['invites'],
      summary:
        'Use an invitation: set a password and language (or give your existing password); signs you in',
      request: { body: jsonBody(AcceptInviteInput) },
      responses: {
        200: jsonResponse(Me, 'Joined and signed in'),
        ...errors(400, 401, 403, 404, 409, 410, 429),
      },
    }),
    async (c) => {
      assertSameOrigin(c);
      const s = await acceptInvite({
        db: c.var.db,
        input: c.req.valid('json'),
        requestId: c.var.requestId,
        clientAddress: c.var.deps.clientAddress?.(c) ?? 'unknown',
      });
      return signedIn(c, s);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/me/password',
      tags: ['auth'],
      summary: 'Change your own password (ends your other sessions)',
      request: {
        body: jsonBody(
          z
            .object({ currentPassword: z.string().min(1).max(256), newPassword: Password })
            .strict()
            .openapi('ChangePasswordInput'),
        ),
      },
      responses: {
        200: okResponse('Changed'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const b = c.req.valid('json');
      await changePassword({
        ctx: serviceCtx(c, 'fleet:read'),
        input: { ...b, currentSessionId: c.var.principal.sessionId },
      });
      return c.json({ ok: true as const }, 200);
    },
  );
