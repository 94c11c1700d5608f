import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createPrivateKey, createPublicKey, createHash, randomUUID, sign, type KeyObject } from 'node:crypto';

const run = promisify(execFile);

export interface TokenServer {
  /** URL the registry sends clients to (`auth.token.realm`). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate the registry trusts (`auth.token.rootcertbundle`). */
  certificateFile: string;
  /** Every token request seen, in order: what was asked and by whom. */
  requests: { scopes: string[]; username?: string; granted: boolean }[];
  stop(): Promise<void>;
}

/**
 * A small token service in the Docker token-auth protocol (what auth.docker.io, ghcr.io/token and
 * ACR run): checks Basic credentials for one user and issues ES256 JWTs granting the scopes asked
 * for. Real signatures, verified by the real registry; it stands in for the hosted services,
 * which cannot be reached from here.
 */
export async function startTokenServer(options: {
  dir: string;
  username: string;
  password: string;
  expiresInSeconds?: number;
}): Promise<TokenServer> {
  const keyFile = path.join(options.dir, 'token.key');
  const certificateFile = path.join(options.dir, 'token.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certificateFile,
    '-days',
    '2',
    '-subj',
    '/CN=outpost-test-token',
  ]).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? new Error('openssl is missing: apt-get install -y openssl') : error;
  });
  const privateKey = createPrivateKey(await fs.readFile(keyFile));
  const kid = libtrustKeyId(createPublicKey(privateKey));
  const service = 'outpost-test-registry';
  const issuer = 'outpost-test-token-issuer';
  const expiresIn = options.expiresInSeconds ?? 300;
  const requests: TokenServer['requests'] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scopes = url.searchParams.getAll('scope');
    const user = parseBasic(req.headers.authorization);
    const granted = user?.username === options.username && user.password === options.password;
    requests.push({ scopes, ...(user ? { username: user.username } : {}), granted });
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BAD_REQUEST"}]}');
      return;
    }
    if (!granted) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="outpost-test-token"',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(privateKey, kid, {
      iss: issuer,
      sub: options.username,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: scopes.flatMap(parseScope),
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(now * 1000).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificateFile,
    requests,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `repository:foo/bar:pull,push` → the JWT `access` entry the registry checks. */
function parseScope(scope: string): { type: string; name: string; actions: string[] }[] {
  return scope
    .split(' ')
    .filter(Boolean)
    .flatMap((one) => {
      const first = one.indexOf(':');
      const last = one.lastIndexOf(':');
      if (first === -1 || last === first) return [];
      return [
        {
          type: one.slice(0, first),
          name: one.slice(first + 1, last),
          actions: one
            .slice(last + 1)
            .split(',')
            .filter(Boolean),
        },
      ];
    });
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString();
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function signJwt(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${encode({ typ: 'JWT', alg: 'ES256', kid })}.${encode(claims)}`;
  // JWS wants the raw r||s form of an ECDSA signature, not DER.
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/**
 * The key ID distribution's token verifier expects in `kid` (docker/libtrust): base32 of the first
 * 240 bits of the SHA-256 of the DER public key, in groups of four joined by ':'.
 */
function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const digest = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}
