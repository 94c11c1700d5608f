import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, signManifest } from '@outpost/bundler';
import { startEngine, type Engine } from './engine.ts';
import { busyboxPath, getBundle, makeFixture, runScript, type Bundle, type Fixture, type Run } from './fixture.ts';
import { activeSigningKey } from '../../services/bundles/signing-keys.ts';
import { encodeReceiptCode, keyFromHex } from '../../services/receipts/code.ts';

// The site installer end to end with a real container engine (podman behind its Docker-compatible
// socket, docker-compose v1): bundles built by Outpost from images in a real registry, installed by
// edge-scripts under dash and under busybox sh, into a compose project of this file's own.
const engine = await startEngine();
const unavailable = 'unavailable' in engine ? engine.unavailable : null;
if (unavailable) console.warn(`installer tests skipped: ${unavailable}`);

let e: Engine;
let f: Fixture;
let state: string;
let cron: string;
let bbin: string;
let project: string;
const SITE = 'INST-A';
const bundles = new Map<string, Bundle>();

function siteEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...e.env, OUTPOST_STATE_DIR: state, OUTPOST_PROJECT: project, OUTPOST_SCHEDULER: 'cron', OUTPOST_CRON_DIR: cron, ...extra };
}

function script(b: Bundle | string, name: string) {
  return path.join(typeof b === 'string' ? b : b.dir, 'scripts', name);
}

async function run(shell: 'dash' | 'busybox', b: Bundle | string, name: string, args: string[] = [], extra: Record<string, string> = {}): Promise<Run> {
  const r = await runScript({ shell, script: script(b, name), args, env: siteEnv(extra), busyboxBin: bbin });
  // The state folder's log follows the output, so that a failure shows what the commands said.
  const logs = await fs.readdir(path.join(state, 'log')).catch(() => [] as string[]);
  const log = logs.length ? await fs.readFile(path.join(state, 'log', logs.sort().at(-1)!), 'utf8') : '';
  return Object.assign(r, { toString: () => `${r.stdout}\n${r.stderr}\n--- log ---\n${log.split('\n').slice(-60).join('\n')}` });
}

async function appContainer(): Promise<string> {
  const ps = await e.docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=app']);
  return ps.stdout.trim().split('\n')[0] ?? '';
}

async function database(): Promise<string> {
  const id = await appContainer();
  expect(id, 'the app container is running').not.toBe('');
  const r = await e.docker(['exec', id, '/bin/busybox', 'cat', '/data/db.txt']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function runningVersion(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${f.port}/version`);
  return (await r.text()).trim();
}

const read = (p: string) => fs.readFile(p, 'utf8').then((t) => t.trim(), () => '');
const current = () => read(path.join(state, 'current'));
const codeIn = (out: string) => /RECEIPT CODE: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})/.exec(out)?.[1];

/** A copy of a bundle folder to tamper with. */
async function copyOf(b: Bundle, name: string): Promise<string> {
  const dir = path.join(f.work, `tampered-${name}`, path.basename(b.dir));
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await fs.cp(b.dir, dir, { recursive: true });
  return dir;
}

describe.skipIf(unavailable !== null)('the site installer with a real engine', () => {
  beforeAll(async () => {
    e = engine as Engine;
    f = await makeFixture('installer', [{ code: SITE }, { code: 'INST-B' }, { code: 'INST-FR', language: 'fr' }]);
    state = path.join(f.work, 'state');
    cron = path.join(f.work, 'cron.d');
    await fs.mkdir(cron);
    bbin = await busyboxPath(f.work);
    project = `opi${path.basename(e.dir).replace(/[^a-z0-9]/gi, '').toLowerCase()}`;
  }, 240_000);

  afterAll(async () => {
    await f?.close();
    await e?.stop();
  }, 60_000);

  it('should install a first release from the bundle file under dash: verified, running, a receipt code the API accepts, reported by itself', async () => {
    const b = await getBundle(f, SITE, '1.0.0');
    bundles.set('1.0.0', b);
    const r = await run('dash', b, 'install', [b.tar]);
    expect(r.code, String(r)).toBe(0);
    expect(r.stdout).toContain('Step 1 — Checking the bundle');
    expect(r.stdout).toContain('This is the first install here');
    expect(r.stdout).toMatch(/Finished: version 1\.0\.0 is installed and works/);
    expect(await current()).toBe('1.0.0');
    expect(await runningVersion()).toBe('1.0.0');
    expect(await database()).toBe('schema=1\n');

    // The receipt code: the API's own encoding for the same inputs, and accepted by the API.
    const code = codeIn(r.stdout)!;
    expect(code).toBeDefined();
    const receipt = JSON.parse(await fs.readFile(await read(path.join(state, 'last-receipt')), 'utf8')) as { at: string; code: string; outcome: string };
    expect(receipt.code).toBe(code);
    expect(receipt.outcome).toBe('installed');
    const key = keyFromHex(await read(path.join(b.dir, 'site/receipt-key')));
    expect(await encodeReceiptCode({ key, siteId: b.manifest.site.id, version: '1.0.0', outcome: 'installed', at: new Date(receipt.at) })).toBe(code);
    const submitted = await f.api('/api/v1/receipts', { method: 'POST', json: { siteId: b.manifest.site.id, code } });
    expect(submitted.status, await submitted.clone().text()).toBe(201);
    expect((await submitted.json() as { version: string; outcome: string })).toMatchObject({ version: '1.0.0', outcome: 'installed' });

    // Secrets of the site: mode 0600; the signing key pinned; the report went out with a device token from the enrolment.
    expect(statSync(path.join(state, 'receipt-key')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(state, 'device-token')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(b.dir, 'site/enrolment-token')).mode & 0o777).toBe(0o600);
    expect(await read(path.join(state, 'keys/signing-key.pem'))).toBe(await read(path.join(b.dir, 'keys/signing-key.pem')));
    const site = await (await f.api(`/api/v1/sites/${b.manifest.site.id}`)).json() as { reportedVersion: string; deviceToken: { prefix: string } | null };
    expect(site.reportedVersion).toBe('1.0.0');
    expect(site.deviceToken?.prefix).toMatch(/^opd_/);
    expect(await fs.readdir(path.join(state, 'queue')).then((l) => l.filter((n) => n.endsWith('.json')))).toEqual([]);

    // A nightly backup and a periodic report, set up once.
    const cronFile = await read(path.join(cron, 'outpost'));
    expect(cronFile).toMatch(/^30 2 \* \* \* root OUTPOST_STATE_DIR=\S+ \/bin\/sh \S+\/scripts\/backup --quiet$/m);
    expect(cronFile).toMatch(/\/scripts\/report --quiet$/m);
  }, 300_000);
});
