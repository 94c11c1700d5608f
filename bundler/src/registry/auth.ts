// Registry auth: anonymous, Basic, a given bearer token, or the Bearer-token dance with the
// registry's token service (Docker Hub, GHCR, ACR). Remembers what the registry asked for, so
// later requests authenticate up front, and caches tokens per scope until they expire.
import { RegistryError, readErrorBody } from './errors.ts';
import type { AuthChallenge } from './www-authenticate.ts';
import { discard, type RegistryTransport } from './transport.ts';

export type RegistryCredentials = { username: string; password: string } | { token: string };

export interface AuthOptions {
  /** The registry's name, for messages. */
  registry: string;
  credentials: RegistryCredentials | undefined;
  userAgent: string;
  transport: RegistryTransport;
}

export class RegistryAuth {
  private readonly registry: string;
  private readonly credentials: RegistryCredentials | undefined;
  private readonly userAgent: string;
  private readonly transport: RegistryTransport;
  /** Set once the registry asked for Basic: later requests send it up front. */
  private usesBasic = false;
  /** The registry's Bearer challenge, once seen: later scopes fetch their token up front. */
  private bearer: { realm: string; service?: string } | undefined;
  private readonly tokens = new Map<string, { token: Promise<string>; expiresAt: number }>();

  constructor(options: AuthOptions) {
    this.registry = options.registry;
    this.credentials = options.credentials;
    this.userAgent = options.userAgent;
    this.transport = options.transport;
  }

  /** The Authorization to send before any challenge, from what the registry asked for before. */
  async authorizationUpFront(scope: string): Promise<string | undefined> {
    const credentials = this.credentials;
    if (credentials && 'token' in credentials) return `Bearer ${credentials.token}`;
    if (this.usesBasic && credentials) return basic(credentials);
    if (this.bearer)
      return `Bearer ${await this.token(this.bearer.realm, this.bearer.service, scope, scope)}`;
    return undefined;
  }

  /** The Authorization to try after a 401 with these challenges; throws when there is nothing new to try. */
  async answerChallenge(
    challenges: AuthChallenge[],
    scope: string,
    sent: string | undefined,
    codes: string[],
  ): Promise<string> {
    const credentials = this.credentials;
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basicChallenge = challenges.find((c) => c.scheme === 'basic');
    if (credentials && 'token' in credentials) throw this.unauthorized(scope, codes);
    if (bearer?.params.realm) {
      this.bearer = {
        realm: bearer.params.realm,
        ...(bearer.params.service ? { service: bearer.params.service } : {}),
      };
      if (sent?.startsWith('Bearer ')) this.tokens.delete(scope);
      const token = await this.token(
        bearer.params.realm,
        bearer.params.service,
        bearer.params.scope ?? scope,
        scope,
      );
      if (sent === `Bearer ${token}`) throw this.unauthorized(scope, codes);
      return `Bearer ${token}`;
    }
    if (basicChallenge || challenges.length === 0) {
      if (!credentials || sent?.startsWith('Basic ')) throw this.unauthorized(scope, codes);
      this.usesBasic = true;
      return basic(credentials);
    }
    throw new RegistryError(
      'protocol',
      `The registry ${this.registry} asks for ${challenges.map((c) => c.scheme).join(', ')} authentication, which this client does not support`,
      { status: 401 },
    );
  }

  /** Forgets a scope's token (it stopped being good: expired early, revoked), so the next call asks anew. */
  forget(scope: string): void {
    this.tokens.delete(scope);
  }

  unauthorized(repositoryOrScope: string, codes: string[]): RegistryError {
    const code = codes[0];
    if (codes.includes('DENIED')) {
      return new RegistryError(
        'denied',
        `The registry ${this.registry} denied access to ${repositoryName(repositoryOrScope)}`,
        { status: 401, code: 'DENIED' },
      );
    }
    const message = this.credentials
      ? 'The registry refused the credentials'
      : `The registry ${this.registry} requires credentials for ${repositoryName(repositoryOrScope)}` +
        (this.bearer ? ' (or has no image by that name)' : '');
    return new RegistryError('unauthorized', message, { status: 401, ...(code ? { code } : {}) });
  }

  /** A Bearer token for a scope from the registry's token service, cached until it expires. */
  private token(
    realm: string,
    service: string | undefined,
    requestScope: string,
    cacheKey: string,
  ): Promise<string> {
    const cached = this.tokens.get(cacheKey);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    const entry = { token: Promise.resolve(''), expiresAt: Number.POSITIVE_INFINITY };
    entry.token = this.fetchToken(realm, service, requestScope).then(
      ({ token, expiresInSeconds }) => {
        // Renew a little before the service's deadline so a token never expires mid-request.
        entry.expiresAt =
          Date.now() + Math.max(0, expiresInSeconds * 1000 - Math.min(30_000, expiresInSeconds * 100));
        return token;
      },
      (error: unknown) => {
        this.tokens.delete(cacheKey);
        throw error;
      },
    );
    this.tokens.set(cacheKey, entry);
    return entry.token;
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scope: string,
  ): Promise<{ token: string; expiresInSeconds: number }> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('protocol', `The registry ${this.registry} names an invalid token service`);
    }
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const credentials = this.credentials;
    const authorization = credentials && 'username' in credentials ? basic(credentials) : undefined;
    const response = await this.transport.send(
      'GET',
      url.toString(),
      { 'user-agent': this.userAgent, accept: 'application/json' },
      authorization,
      url.host,
    );
    if (response.status === 401 || response.status === 403) {
      const codes = (await readErrorBody(response)).map((e) => e.code);
      throw new RegistryError(
        'unauthorized',
        credentials
          ? 'The registry refused the credentials'
          : `The registry ${this.registry} requires credentials`,
        { status: response.status, ...(codes[0] ? { code: codes[0] } : {}) },
      );
    }
    if (!response.ok) {
      await discard(response);
      throw new RegistryError(
        response.status === 429 || response.status >= 500 ? 'unreachable' : 'protocol',
        `The token service of ${this.registry} (${url.host}) answered ${response.status}`,
        { status: response.status },
      );
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await response.json()) as typeof body;
    } catch {
      throw new RegistryError(
        'protocol',
        `The token service of ${this.registry} (${url.host}) sent something that is not JSON`,
      );
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) {
      throw new RegistryError(
        'protocol',
        `The token service of ${this.registry} (${url.host}) sent no token`,
      );
    }
    // The spec's default lifetime when the service does not say.
    const expiresInSeconds =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresInSeconds };
  }
}

function repositoryName(repositoryOrScope: string): string {
  const m = /^repository:(.+):[^:]+$/.exec(repositoryOrScope);
  return m ? m[1]! : repositoryOrScope;
}

function basic(credentials: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
