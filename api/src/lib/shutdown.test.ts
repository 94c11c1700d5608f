import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// A real process with the real handler: `stop` is told how long to take; the test signals it and
// times how it ends.
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-shutdown-'));
const script = path.join(dir, 'stopper.mts');
await fs.writeFile(
  script,
  `
import { onShutdown } from ${JSON.stringify(path.join(import.meta.dirname, 'shutdown.ts'))};
const stopMs = Number(process.env.STOP_MS);
onShutdown((level, msg) => process.stdout.write(level + ' ' + msg + '\\n'), () => new Promise((r) => setTimeout(r, stopMs)), Number(process.env.GRACE_MS));
setInterval(() => {}, 1000);
process.stdout.write('READY\\n');
`,
);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function run(env: { STOP_MS: number; GRACE_MS: number }, signals: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, STOP_MS: String(env.STOP_MS), GRACE_MS: String(env.GRACE_MS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  return new Promise<{ code: number | null; ms: number; out: string }>((resolve) => {
    let started = 0;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!started && out.includes('READY')) {
        started = Date.now();
        for (let i = 0; i < signals; i++) setTimeout(() => child.kill('SIGTERM'), i * 100);
      }
    });
    child.on('exit', (code) => resolve({ code, ms: Date.now() - started, out }));
  });
}

describe('stopping the process', () => {
  it('should exit 0 once a clean stop finishes', async () => {
    const r = await run({ STOP_MS: 200, GRACE_MS: 5_000 }, 1);
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(200);
    expect(r.ms).toBeLessThan(3_000);
  });

  it('should exit 1 when stopping outlasts its grace, not hang', async () => {
    const r = await run({ STOP_MS: 60_000, GRACE_MS: 500 }, 1);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(3_000);
    expect(r.out).toContain('still stopping after 0.5 s; exiting');
  });

  it('should exit at once on a second signal', async () => {
    const r = await run({ STOP_MS: 60_000, GRACE_MS: 30_000 }, 2);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(3_000);
    expect(r.out).toContain('stopping at once (second signal)');
  });
});
