import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTokenServer, type TokenServer } from './token-server.ts';
import { allowTestHost } from './allow-list.ts';

const run = promisify(execFile);

export interface TestRegistryOptions {
  /** Turns on Basic auth (`auth.htpasswd`) with this one user. */
  htpasswd?: { username: string; password: string };
  /**
   * Turns on Bearer-token auth (`auth.token`), as Docker Hub, GHCR and ACR do: a token server
   * started here on loopback signs tokens for this one user; the registry trusts its certificate.
   */
  tokenAuth?: {
    username: string;
    password: string;
    /** Lifetime of issued tokens, default 300 s. */ expiresInSeconds?: number;
  };
  /** Listen on this port (e.g. to bring a stopped registry back at the same address); default a free one. */
  port?: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, as in image references: `${host}/repo:tag`. */
  host: string;
  /** The registry's storage root (filesystem driver). */
  dataDir: string;
  /** The token server, when started with `tokenAuth`. */
  tokenServer?: TokenServer;
  stop(): Promise<void>;
}

/**
 * Starts Debian's `docker-registry` (distribution 2.8) on a free loopback port, with filesystem
 * storage in a temporary directory and no auth unless asked. Basic auth needs `htpasswd`
 * (apt `apache2-utils`); token auth needs `openssl`.
 *
 * @example
 * const registry = await startRegistry();
 * await pushImage(layout.dir, layout.tag, `${registry.host}/demo/app:1.0`);
 * …
 * await registry.stop();
 */
export async function startRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-registry-'));
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(dataDir);
  let tokenServer: TokenServer | undefined;
  try {
    const auth: string[] = [];
    if (options.htpasswd) {
      const file = path.join(dir, 'htpasswd');
      // Cost 4 (the minimum): the registry checks the hash on every request.
      const { stdout } = await run('htpasswd', [
        '-nbB',
        '-C',
        '4',
        options.htpasswd.username,
        options.htpasswd.password,
      ]).catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'ENOENT'
          ? new Error('htpasswd is missing: apt-get install -y apache2-utils')
          : error;
      });
      await fs.writeFile(file, stdout.trim() + '\n');
      auth.push('auth:', '  htpasswd:', '    realm: outpost-test', `    path: ${file}`);
    } else if (options.tokenAuth) {
      tokenServer = await startTokenServer({ dir, ...options.tokenAuth });
      auth.push(
        'auth:',
        '  token:',
        `    realm: ${tokenServer.realm}`,
        `    service: ${tokenServer.service}`,
        `    issuer: ${tokenServer.issuer}`,
        `    rootcertbundle: ${tokenServer.certificateFile}`,
      );
    }

    // A free port can be taken between our probe and the registry's bind; try a few.
    let lastError: unknown;
    for (let attempt = 0; attempt < (options.port ? 1 : 5); attempt++) {
      const port = options.port ?? (await freePort());
      const host = `127.0.0.1:${port}`;
      const config = [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${dataDir}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        ...auth,
        '',
      ].join('\n');
      const configFile = path.join(dir, 'config.yml');
      await fs.writeFile(configFile, config);
      const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        await waitUntilUp(child, host);
      } catch (error) {
        lastError = error;
        child.kill('SIGKILL');
        continue;
      }
      const server = tokenServer;
      // Allowed for the tests through the same setting production uses (OUTPOST_REGISTRY_ALLOW_INSECURE).
      // The entries stay after stop(): tests stop a registry to see it unreachable, which is not refused.
      allowTestHost(host);
      if (server) allowTestHost(new URL(server.realm).host);
      return {
        host,
        dataDir,
        ...(server ? { tokenServer: server } : {}),
        async stop() {
          await stopProcess(child);
          await server?.stop();
          await fs.rm(dir, { recursive: true, force: true });
        },
      };
    }
    throw lastError;
  } catch (error) {
    await tokenServer?.stop();
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Where the filesystem driver keeps a blob's bytes (manifests are blobs too). */
export function registryBlobPath(registry: Pick<TestRegistry, 'dataDir'>, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

/**
 * Replaces a stored blob's bytes with others of the same length, as a disk or storage fault
 * would: the registry keeps serving it under the old digest. By default every byte is flipped;
 * `alter` can change the bytes in place instead (a manifest must stay JSON the registry can read).
 *
 * @example
 * await corruptBlob(registry, layer.digest);
 */
export async function corruptBlob(
  registry: Pick<TestRegistry, 'dataDir'>,
  digest: string,
  alter?: (bytes: Buffer) => void,
): Promise<void> {
  const file = registryBlobPath(registry, digest);
  const bytes = await fs.readFile(file);
  const length = bytes.length;
  if (alter) alter(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0x5a;
  if (bytes.length !== length) throw new Error('corruptBlob must keep the length');
  await fs.writeFile(file, bytes);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(child: ChildProcess, host: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new Error(`could not run docker-registry (apt install docker-registry): ${error.message}`)),
    );
    child.once('exit', (code) => reject(new Error(`docker-registry exited with ${code}: ${stderr.trim()}`)));
  });
  exited.catch(() => {});
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const up = await Promise.race([
      fetch(`http://${host}/v2/`).then(
        (r) => r.status === 200 || r.status === 401,
        () => false,
      ),
      exited,
    ]);
    if (up) return;
    await Promise.race([new Promise((r) => setTimeout(r, 50)), exited]);
  }
  throw new Error(`docker-registry did not answer on ${host} within 15 s: ${stderr.trim()}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
