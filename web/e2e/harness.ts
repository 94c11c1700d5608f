// The real server (API + built SPA on one origin, embedded PGlite and object store) in a child
// process on a fresh data directory, and the Debian Chromium driven through playwright-core.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface Outpost {
  baseUrl: string;
  browser: Browser;
  /** Everything the server printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHealth(server: ChildProcess, url: string, log: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`The server exited with ${server.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`The server did not become healthy within ${timeoutMs} ms:\n${log()}`);
}

/** Starts a server whose first organisation is owned by `admin`, and a headless Chromium. */
export async function startOutpost(
  admin: { email: string; password: string },
  orgName = 'Ministry of Health',
  env: Record<string, string> = {},
  healthTimeoutMs?: number,
): Promise<Outpost> {
  if (!fs.existsSync(path.join(ROOT, 'web/build/index.html'))) {
    execFileSync('npm', ['run', 'build', '-w', 'web'], { cwd: ROOT, stdio: 'inherit' });
  }
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'outpost-e2e-'));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  let output = '';
  const server = spawn(process.execPath, ['--import', 'tsx', 'api/src/node.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      OUTPOST_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      OUTPOST_ADMIN_EMAIL: admin.email,
      OUTPOST_ADMIN_PASSWORD: admin.password,
      OUTPOST_ORG_NAME: orgName,
      LOG_LEVEL: 'warn',
      // Test files run side by side: each demo gets a registry port of its own.
      ...(env.OUTPOST_DEMO ? { OUTPOST_DEMO_REGISTRY_PORT: String(await freePort()) } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  server.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const log = () => output;

  const stop = async () => {
    await browser?.close();
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await fsp.rm(dataDir, { recursive: true, force: true });
  };

  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
        '--disable-quic',
      ],
    });
    // Seeding the 2,000-site demo fleet (OUTPOST_DEMO) happens before the server listens.
    await waitForHealth(server, baseUrl, log, healthTimeoutMs ?? (env.OUTPOST_DEMO ? 240_000 : 55_000));
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, browser, log, stop };
}

export async function signIn(page: Page, who: { email: string; password: string }) {
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Saves a screenshot when E2E_SCREENSHOTS names a directory (for looking at the pages by eye). */
export async function snapshot(page: Page, name: string) {
  const dir = process.env.E2E_SCREENSHOTS;
  if (!dir) return;
  await fsp.mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
