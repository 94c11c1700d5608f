import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type Engine } from './engine.ts';
import { busyboxPath, getBundle, makeFixture, runScript, type Bundle, type Fixture } from './fixture.ts';

// Power cuts: the install is stopped dead (SIGKILL, as a power cut would) right after it recorded
// each step in its journal, then run again. Every time the second run must end with the new
// release running, checked and recorded, the journal gone and one release's containers running —
// never two half-releases. A real engine (podman, docker-compose v1), its own project and site.
const engine = await startEngine();
const unavailable = 'unavailable' in engine ? engine.unavailable : null;
if (unavailable) console.warn(`installer power-cut tests skipped: ${unavailable}`);

// Every step the journal records, but preflight and copy: they recover exactly as verify, backup and
// load do (start again from the beginning; nothing running was touched) and each case costs two installs.
const STEPS = [
  'verify',
  'backup',
  'load',
  'switch',
  'health',
  'self-check',
  'accept',
  'receipt',
  'report',
] as const;

let e: Engine;
let f: Fixture;
let state: string;
let bbin: string;
let project: string;
const b = new Map<string, Bundle>();

function install(
  bundle: Bundle,
  shell: 'dash' | 'busybox',
  extra: Record<string, string> = {},
  args: string[] = [],
) {
  return runScript({
    shell,
    script: path.join(bundle.dir, 'scripts/install'),
    args,
    busyboxBin: bbin,
    env: {
      ...e.env,
      OUTPOST_STATE_DIR: state,
      OUTPOST_PROJECT: project,
      OUTPOST_SCHEDULER: 'none',
      ...extra,
    },
  });
}

const read = (p: string) =>
  fs.readFile(p, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );

async function containers(): Promise<string[]> {
  const r = await e.docker([
    'ps',
    '--format',
    '{{.Image}}',
    '--filter',
    `label=com.docker.compose.project=${project}`,
  ]);
  return r.stdout.trim().split('\n').filter(Boolean);
}

describe.skipIf(unavailable !== null)('an install stopped dead at each step, then run again', () => {
  beforeAll(async () => {
    e = engine as Engine;
    f = await makeFixture('installer-crash', [{ code: 'INST-C' }]);
    state = path.join(f.work, 'state');
    bbin = await busyboxPath(f.work);
    project = `opc${path
      .basename(e.dir)
      .replace(/[^a-z0-9]/gi, '')
      .toLowerCase()}`;
    for (const v of ['1.0.0', '2.0.0']) b.set(v, await getBundle(f, 'INST-C', v, 'full'));
    const first = await install(b.get('1.0.0')!, 'dash');
    expect(first.code, first.stdout + first.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await f?.close();
    await e?.stop();
  }, 60_000);

  STEPS.forEach((step, i) => {
    const shell = i % 2 === 0 ? 'dash' : 'busybox';
    it(`should finish the job after a power cut at "${step}" (${shell})`, async () => {
      const from = await read(path.join(state, 'current'));
      const to = from === '1.0.0' ? '2.0.0' : '1.0.0';
      const args = to === '1.0.0' ? ['--rollback'] : [];
      const cut = await install(b.get(to)!, shell, { OUTPOST_TEST_CRASH_AT: step }, args);
      expect(cut.code, cut.stdout + cut.stderr).toBe(137);
      expect(await read(path.join(state, 'journal'))).toContain(`J_STEP='${step}'`);

      const again = await install(b.get(to)!, shell, {}, args);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stderr).toContain(`An earlier run stopped at step "${step}"`);
      expect(await read(path.join(state, 'current'))).toBe(to);
      await expect(fs.stat(path.join(state, 'journal'))).rejects.toThrow();
      const running = await containers();
      expect(running, 'one release, one container').toHaveLength(1);
      expect(running[0]).toContain(`emr/app:${to}`);
      const version = await (await fetch(`http://127.0.0.1:${f.port}/version`)).text();
      expect(version.trim()).toBe(to);
      // Its receipt was written (once the new release was accepted, a second run does not write another for a step already past).
      const receipt = JSON.parse(await fs.readFile(await read(path.join(state, 'last-receipt')), 'utf8')) as {
        version: string;
        outcome: string;
      };
      expect(receipt).toMatchObject({ version: to, outcome: 'installed' });
      expect((await fs.readdir(path.join(state, 'queue'))).filter((n) => n.endsWith('.json'))).toEqual([]);
    }, 180_000);
  });
});
