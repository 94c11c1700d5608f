import type { Context } from 'hono';
import type { Db } from '../db/types.ts';
import type { Principal } from '../services/auth/resolve.ts';
import type { ObjectStore } from '../lib/object-store.ts';
import type { Logger } from '../lib/logger.ts';
import type { SecretBox } from '../lib/secret-box.ts';
import type { ImageResolver } from '../services/releases/resolver.ts';

/** One plain-text message; rejects when the mail server refuses it. */
export type Mailer = (message: { to: string; subject: string; text: string }) => Promise<void>;

export interface AppDeps {
  /** The database for this request (Node: one pool; Workers: a pool per request). */
  database(c: Context): Db;
  objectStore: ObjectStore;
  logger: Logger;
  /** 'auto' marks cookies Secure when the request came over https. */
  secureCookies?: boolean | 'auto';
  /** Largest JSON body accepted by ordinary endpoints. */
  maxBodyBytes?: number;
  version?: string;
  /** Seals per-site receipt keys (and other secrets) at rest. */
  secretBox: SecretBox;
  /** Resolves image references in their registries (the bundler's OCI client). */
  imageResolver: ImageResolver;
  /** Largest content package upload (default 512 MB). */
  maxContentPackageBytes?: number;
  /** Where people reach the API (OUTPOST_PUBLIC_URL), for links it hands out; default the request's origin. */
  publicUrl?: string;
  /** The client's address, for sign-in throttling (Node: the socket or, with OUTPOST_TRUST_PROXY, X-Forwarded-For; Workers: CF-Connecting-IP). */
  clientAddress?: (c: Context) => string;
  /** Sends an e-mail (SMTP_URL on Node); without it, invite links are only shown to copy. */
  mailer?: Mailer;
  /** Check-ins allowed per site per minute (default 30). */
  checkinsPerMinute?: number;
  /** Accept http:// webhook addresses (tests and local receivers); production webhooks are https only. */
  allowHttpWebhooks?: boolean;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    db: Db;
    deps: AppDeps;
    principal: Principal;
    sessionToken: string | null;
  };
}

export type AppContext = Context<AppEnv>;
