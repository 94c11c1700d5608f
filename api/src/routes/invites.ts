import { createRoute, z } from '@hono/zod-openapi';
import {
  Email,
  errors,
  IdParam,
  jsonBody,
  jsonResponse,
  Language,
  Role,
  listOf,
  okResponse,
} from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { createInvite } from '../services/invites/create.ts';
import { listInvites, revokeInvite } from '../services/invites/list.ts';
import { inviteLink } from '../services/invites/token.ts';
import { inviteMessage } from '../services/invites/message.ts';

const Invite = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: Role,
    siteIds: z.array(z.string()),
    language: Language.nullable(),
    status: z.enum(['pending', 'accepted', 'revoked', 'expired']),
    createdAt: z.string(),
    expiresAt: z.string(),
    acceptedAt: z.string().nullable(),
  })
  .openapi('Invite');

const CreateInviteInput = z
  .object({
    email: Email,
    name: z.string().trim().max(200).optional(),
    role: Role,
    siteIds: z
      .array(z.uuid())
      .max(1000)
      .optional()
      .openapi({ description: "A coordinator's sites, assigned when the invitation is accepted" }),
    language: Language.optional().openapi({
      description: 'The language the join page and e-mail start in (the person may change it)',
    }),
    expiresInDays: z.number().int().min(1).max(30).optional().openapi({ description: 'Default 7' }),
  })
  .strict()
  .openapi('CreateInviteInput');

// Only the admin's routes: /invites/lookup and /invites/accept (routes/auth.ts) are for people not signed in yet.
export const inviteRoutes = authenticatedRouter('/invites', '/invites/:id{[0-9a-fA-F-]{36}}')
  .openapi(
    createRoute({
      method: 'get',
      path: '/invites',
      tags: ['invites'],
      summary: "The organisation's invitations, newest first",
      responses: {
        200: jsonResponse(listOf(Invite), 'Invitations'),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json(await listInvites({ ctx: serviceCtx(c, 'users:manage') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/invites',
      tags: ['invites'],
      summary:
        'Invite a person by e-mail (a one-time link that expires; sent by e-mail when SMTP is configured)',
      request: { body: jsonBody(CreateInviteInput) },
      responses: {
        201: jsonResponse(
          z.object({
            invite: Invite,
            link: z.string().openapi({
              description: 'The one-time link, shown once: copy it to the person if no e-mail was sent',
            }),
            emailed: z.boolean(),
            emailProblem: z
              .string()
              .nullable()
              .openapi({ description: 'Why the e-mail could not be sent, when it could not' }),
          }),
          'Invited',
        ),
        ...errors(400, 401, 403, 409),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'users:manage');
      const { invite, token } = await createInvite({ ctx, input: c.req.valid('json') });
      const link = inviteLink(c.var.deps.publicUrl ?? new URL(c.req.url).origin, token);
      let emailed = false;
      let emailProblem: string | null = null;
      const mailer = c.var.deps.mailer;
      if (mailer) {
        try {
          await mailer({
            to: invite.email,
            ...inviteMessage({ link, language: invite.language, expiresAt: invite.expiresAt }),
          });
          emailed = true;
        } catch (err) {
          // The invite stands: the admin copies the link instead. The mail server's words stay in the log.
          c.var.deps.logger('warn', 'invite e-mail not sent', {
            requestId: c.var.requestId,
            err: err instanceof Error ? err.message : String(err),
          });
          emailProblem = 'The e-mail could not be sent. Copy the link and send it another way.';
        }
      }
      return c.json({ invite, link, emailed, emailProblem }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/invites/{id}',
      tags: ['invites'],
      summary: 'Withdraw an invitation that was not used yet',
      request: { params: IdParam },
      responses: {
        200: okResponse('Withdrawn'),
        ...errors(401, 403, 404),
      },
    }),
    async (c) => {
      await revokeInvite({ ctx: serviceCtx(c, 'users:manage'), input: c.req.valid('param') });
      return c.json({ ok: true as const }, 200);
    },
  );
