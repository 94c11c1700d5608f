import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { expect } from 'vitest';
import {
  buildTestImage,
  pushImage,
  runProcess,
  startRegistry,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { createTestDb, TEST_DRIVERS } from '../db.ts';
import { makeTestApp } from '../app.ts';
import { makeApiToken, makeOrg, makeSite } from '../factories.ts';
import { withToken } from '../http.ts';
import type { DbHandle } from '../../db/types.ts';
import { testBuildRunner } from '../build-runner.ts';
import { freeLoopbackPort } from './engine.ts';

/**
 * Everything an installer test needs, all real: a registry holding small busybox images made here,
 * the API served over HTTP on loopback with a build runner (PostgreSQL, the run's S3 server), an
 * organisation with published releases whose compose files run on the host network, and a way to
 * get a site's bundle exactly as a coordinator downloads it.
 *
 * The application image: busybox (static) with /app/start.sh, which "migrates" a database file in
 * the named volume (/data/db.txt: `schema=N`) up to the image's SCHEMA and serves /health with
 * busybox httpd — unless HEALTHY=0, a release whose health check never passes.
 */
export interface Fixture {
  url: string;
  token: string;
  orgId: string;
  h: DbHandle;
  app: Awaited<ReturnType<typeof makeTestApp>>;
  api: ReturnType<typeof withToken>;
  work: string;
  port: number;
  releases: Map<string, string>;
  /** Restarts the HTTP server on the same port (after `stopServer`). */
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

const START = `#!/bin/sh
bb=/bin/busybox
$bb mkdir -p /data /www
[ -f /data/db.txt ] || printf 'schema=%s\\n' "$SCHEMA" >/data/db.txt
cur=$($bb sed -n 's/^schema=//p' /data/db.txt)
if [ "$cur" -lt "$SCHEMA" ]; then
  $bb sed -i "s/^schema=.*/schema=$SCHEMA/" /data/db.txt
  echo "migrated the database from schema $cur to $SCHEMA"
fi
[ "$HEALTHY" = 1 ] && echo ok >/www/health
printf '%s\\n' "$APP_VERSION" >/www/version
exec $bb httpd -f -p "127.0.0.1:$PORT" -h /www
`;

export interface ReleaseSpec {
  version: string;
  schema: number;
  healthy: boolean;
  waitSeconds: number;
}

export const RELEASES: ReleaseSpec[] = [
  { version: '1.0.0', schema: 1, healthy: true, waitSeconds: 60 },
  { version: '2.0.0', schema: 2, healthy: true, waitSeconds: 60 },
  { version: '3.0.0', schema: 3, healthy: false, waitSeconds: 8 },
];

function template(port: number, spec: ReleaseSpec): string {
  return `services:
  app:
    image: {{ image.app }}
    network_mode: host
    restart: unless-stopped
    stop_grace_period: 1s
    environment:
      PORT: "${port}"
      SITE_CODE: "{{ site.code }}"
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${port}/health"]
      interval: 1s
      timeout: 2s
      retries: 3
volumes:
  data: {}
x-outpost:
  wait-seconds: ${spec.waitSeconds}
  health-urls:
    - http://127.0.0.1:${port}/health
  services:
    app:
      backup: busybox cat /data/db.txt
      restore: busybox cat > /data/db.txt
`;
}

export async function makeFixture(
  name: string,
  sites: { code: string; language?: 'en' | 'fr' | 'pt' }[],
): Promise<Fixture> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), `outpost-${name}-`));
  const reg: TestRegistry = await startRegistry();
  const busybox = readFileSync('/bin/busybox');
  const base = {
    files: { 'bin/busybox': busybox, 'bin/sh': busybox },
    executables: ['bin/busybox', 'bin/sh'],
  };
  for (const spec of RELEASES) {
    const image = await buildTestImage({
      dir: path.join(work, 'layout'),
      tag: spec.version,
      layers: [base, { files: { 'app/start.sh': START, 'app/version': `${spec.version}\n` } }],
      config: {
        Cmd: ['/bin/sh', '/app/start.sh'],
        Env: [
          'PATH=/bin',
          `SCHEMA=${spec.schema}`,
          `HEALTHY=${spec.healthy ? 1 : 0}`,
          `APP_VERSION=${spec.version}`,
        ],
      },
    });
    await pushImage(image.dir, spec.version, `${reg.host}/emr/app:${spec.version}`);
  }

  const driver = TEST_DRIVERS.includes('pg') ? 'pg' : TEST_DRIVERS[0]!;
  const h = await createTestDb(driver);
  const app = await makeTestApp(h);
  let server: ServerType | null = null;
  let port = 0;
  const startServer = async () => {
    server = serve({ fetch: app.app.fetch, port, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    port = (server.address() as AddressInfo).port;
  };
  const stopServer = async () => {
    const s = server;
    server = null;
    if (s)
      await new Promise((r) => {
        s.close(r);
        (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
  };
  await startServer();
  const url = `http://127.0.0.1:${port}`;
  const runner = testBuildRunner(h.db, app, {
    logger: (level, msg, fields) => app.logs.push({ level, msg, fields }),
    waitMs: 20,
    publicUrl: url,
  });
  runner.start();

  const org = await makeOrg(h.db);
  const token = (await makeApiToken(h.db, org.id, 'admin')).token;
  const api = withToken(app.app, token);
  const appPort = await freeLoopbackPort();
  const releases = new Map<string, string>();
  for (const spec of RELEASES) {
    const created = await api('/api/v1/releases', {
      method: 'POST',
      json: { version: spec.version, composeTemplate: template(appPort, spec) },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const add = await api(`/api/v1/releases/${id}/images`, {
      method: 'POST',
      json: { name: 'app', reference: `${reg.host}/emr/app:${spec.version}` },
    });
    expect(add.status, await add.clone().text()).toBe(201);
    const pub = await api(`/api/v1/releases/${id}/publish`, { method: 'POST' });
    expect(pub.status, await pub.clone().text()).toBe(200);
    releases.set(spec.version, id);
  }
  for (const s of sites)
    await makeSite(h.db, org.id, { code: s.code, name: `Clinic ${s.code}`, language: s.language ?? 'en' });

  return {
    url,
    token,
    orgId: org.id,
    h,
    app,
    api,
    work,
    port: appPort,
    releases,
    startServer,
    stopServer,
    async close() {
      await runner.stop();
      await stopServer();
      await h.close();
      await reg.stop();
      await fs.rm(work, { recursive: true, force: true });
    },
  };
}

export interface Bundle {
  id: string;
  tar: string;
  dir: string;
  manifest: { release: { version: string }; images: { delta: boolean }; site: { id: string } };
}

/** A site's bundle of a release, built by the runner and downloaded whole, then unpacked beside. */
export async function getBundle(
  f: Fixture,
  siteCode: string,
  version: string,
  mode: 'full' | 'delta' | 'auto' = 'full',
): Promise<Bundle> {
  const res = await f.api('/api/v1/bundles', {
    method: 'POST',
    json: { releaseId: f.releases.get(version), siteCodes: [siteCode], mode },
  });
  expect(res.status, await res.clone().text()).toBe(202);
  const body = (await res.json()) as { bundles: { id: string }[] } | { items: { id: string }[] };
  const id = ('bundles' in body ? body.bundles : body.items)[0]!.id;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await f.api(`/api/v1/bundles/${id}`);
    const b = (await r.json()) as { state: string; error?: string };
    if (b.state === 'ready') break;
    if (b.state === 'failed' || Date.now() > deadline) throw new Error(`bundle ${id}: ${JSON.stringify(b)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const folder = await fs.mkdtemp(path.join(f.work, `${siteCode}-${version}-`));
  const tar = path.join(folder, 'bundle.tar');
  const download = await fetch(`${f.url}/api/v1/bundles/${id}/download`, {
    headers: { authorization: `Bearer ${f.token}` },
  });
  expect(download.status).toBe(200);
  await fs.writeFile(tar, Buffer.from(await download.arrayBuffer()));
  const untar = await runProcess('tar', ['-xf', tar, '-C', folder]);
  expect(untar.code, untar.stderr).toBe(0);
  const dir = path.join(folder, `outpost-${siteCode}-${version}`);
  const manifest = JSON.parse(
    await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'),
  ) as Bundle['manifest'];
  return { id, tar, dir, manifest };
}

/** A PATH of busybox's own applets (sh, awk, sed, sha256sum, tar, find, du, df …) plus the engine's CLIs, openssl and curl: a small site server. */
export async function busyboxPath(work: string): Promise<string> {
  const bin = path.join(work, 'busybox-bin');
  await fs.mkdir(bin, { recursive: true });
  const applets = [
    'sh',
    'awk',
    'sed',
    'grep',
    'tr',
    'wc',
    'cut',
    'sha256sum',
    'tar',
    'gzip',
    'find',
    'du',
    'df',
    'date',
    'mkdir',
    'rm',
    'mv',
    'cp',
    'cat',
    'sleep',
    'basename',
    'dirname',
    'chmod',
    'kill',
    'head',
    'sort',
    'xargs',
    'ls',
    'printf',
    'env',
  ];
  for (const a of applets) await fs.symlink('/bin/busybox', path.join(bin, a)).catch(() => {});
  // curl, not busybox wget: Debian's static busybox wget crashes (SIGSEGV) on this host, even for
  // 127.0.0.1 (its glibc is static, the host's NSS modules are not). podman: for the health checks
  // the installer runs itself on a podman engine.
  for (const tool of ['docker', 'docker-compose', 'openssl', 'podman', 'curl']) {
    const where = (await runProcess('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await fs.symlink(where, path.join(bin, tool)).catch(() => {});
  }
  // docker-compose is a Python program: it needs python3 on its PATH.
  await fs.symlink('/usr/bin/python3', path.join(bin, 'python3')).catch(() => {});
  return bin;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one of the bundle's scripts as a site would, under `shell` (dash, or busybox sh with busybox tools). */
export function runScript(o: {
  shell: 'dash' | 'busybox';
  script: string;
  args?: string[];
  env: Record<string, string>;
  busyboxBin?: string;
}): Promise<Run> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    LANG: 'C.UTF-8',
    ...o.env,
  };
  delete env.LC_ALL;
  if (o.shell === 'busybox') env.PATH = `${o.busyboxBin}:/usr/sbin:/sbin`;
  const [cmd, pre] = o.shell === 'dash' ? ['dash', []] : ['/bin/busybox', ['sh']];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, o.script, ...(o.args ?? [])], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 1), stdout, stderr }),
    );
  });
}
