// A three-wave rollout end to end on the demo fleet: planned in the wizard with its preview,
// scheduled, opened by the scheduler inside `npm start`, and advanced when simulated check-ins from
// the pilot's sites (real device tokens, real check-ins) make the pilot healthy.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ROOT, signIn, snapshot, startOutpost, type Outpost } from './harness';

const ADMIN = { email: 'rollout-admin@example.org', password: 'rollout-password-1' };
const DOCS = process.env.E2E_DOCS_SCREENSHOTS ? path.join(ROOT, 'docs') : null;

let outpost: Outpost;

beforeAll(async () => {
  outpost = await startOutpost(ADMIN, 'Ministry of Health', {
    OUTPOST_DEMO: '1',
    OUTPOST_SCHEDULER_INTERVAL_SECONDS: '1',
  });
}, 250_000);

afterAll(async () => {
  await outpost?.stop();
}, 30_000);

/** The API as the signed-in admin, from the test (the browser's session is separate). */
async function adminApi() {
  const login = await fetch(`${outpost.baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: outpost.baseUrl },
    body: JSON.stringify(ADMIN),
  });
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  return async (p: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${outpost.baseUrl}${p}`, {
      method: init.method ?? 'GET',
      headers: {
        cookie,
        'x-csrf-token': csrfToken,
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
    });
    if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? null : res.json();
  };
}

function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

describe('rollouts', () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
      timezoneId: 'UTC',
    });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('should plan, preview, schedule and watch a three-wave rollout advance on a healthy pilot', async () => {
    const api = await adminApi();
    // Five pilot sites that run 2.2.1 and report online, and a region for the second wave.
    const pilot = (await api('/api/v1/sites?version=2.2.1&connectivity=online&limit=5')).items as {
      id: string;
      code: string;
      region: string;
    }[];
    expect(pilot).toHaveLength(5);
    const region = pilot[0]!.region;

    await page.goto('/login');
    await signIn(page, ADMIN);
    await page.getByRole('link', { name: 'Rollouts', exact: true }).click();
    await page.getByRole('link', { name: 'Plan a rollout' }).click();
    await expect.poll(() => page.url(), { timeout: 15_000 }).toContain('/rollouts/new');

    await page.getByLabel('Name').fill('2.3.0 to the country');
    await page.getByLabel('Release to install').selectOption({ label: '2.3.0' });
    await page.getByRole('button', { name: 'Next' }).click();

    const now = new Date();
    const wave = (n: number) => page.getByRole('group', { name: `Wave ${n}`, exact: true });
    await wave(1).getByLabel('Tags').fill('');
    await wave(1)
      .getByLabel('Site codes')
      .fill(pilot.map((s) => s.code).join(', '));
    await wave(1).getByLabel('Starts').fill(localInput(now));
    await wave(2).getByLabel('Regions').fill(region);
    await wave(2).getByLabel('Starts').fill(localInput(now));
    await wave(2)
      .getByLabel('Deadline')
      .fill(localInput(new Date(now.getTime() + 7 * 86_400_000)));
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByLabel('Minimum time a wave stays open (minutes)').fill('0');
    await page.getByLabel('Success threshold (% installed and healthy)').fill('80');
    await page.getByRole('button', { name: 'Preview' }).click();

    const preview = page.getByRole('region', { name: 'Preview' });
    await expect.poll(() => preview.getByRole('row').count(), { timeout: 30_000 }).toBeGreaterThan(3);
    const rows = preview.locator('table').first().locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(3);
    expect(await rows.nth(0).locator('td[data-label="Sites"]').textContent()).toBe('5');
    await snapshot(page, 'rollout-wizard');
    if (DOCS) await page.screenshot({ path: path.join(DOCS, 'rollouts-wizard.png'), fullPage: true });

    await page.getByRole('button', { name: 'Schedule the rollout' }).click();
    await expect.poll(() => page.url(), { timeout: 15_000 }).toMatch(/\/rollouts\/[0-9a-f-]{36}$/);
    const rolloutId = page.url().split('/').at(-1)!;

    // The scheduler inside the server opens the pilot within a tick or two.
    const timeline = page.getByRole('region', { name: 'Waves' });
    await expect
      .poll(() => timeline.getByRole('listitem').first().textContent(), { timeout: 20_000 })
      .toContain('Open');

    // The pilot's servers report: real device tokens, real check-ins; four of five healthy on 2.3.0 is 80 %.
    for (const [i, s] of pilot.entries()) {
      const { token } = (await api(`/api/v1/sites/${s.id}/device-token`, { method: 'POST' })) as {
        token: string;
      };
      const res = await fetch(`${outpost.baseUrl}/api/v1/checkin`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          version: i < 4 ? '2.3.0' : '2.2.1',
          status: i < 4 ? 'healthy' : 'failed',
          idempotencyKey: `e2e-${i}-${Date.now()}`,
        }),
      });
      expect(res.status).toBe(200);
    }

    // The pilot succeeds and the region's wave opens by itself; the page follows without a reload.
    await expect
      .poll(() => timeline.getByRole('listitem').nth(0).textContent(), { timeout: 30_000 })
      .toContain('Succeeded');
    await expect
      .poll(() => timeline.getByRole('listitem').nth(1).textContent(), { timeout: 30_000 })
      .toContain('Open');
    const chart = page.getByRole('region', { name: 'Sites by state' });
    expect(await chart.getByRole('img').first().getAttribute('aria-label')).toContain('Installed 4');
    const csv = page.getByRole('link', { name: 'Download as CSV' });
    expect(await csv.getAttribute('href')).toBe(`/api/v1/rollouts/${rolloutId}/attention.csv`);
    const history = page.getByRole('region', { name: 'History' });
    await expect.poll(() => history.textContent(), { timeout: 15_000 }).toContain('Wave succeeded');
    await snapshot(page, 'rollout-progress');
    if (DOCS) await page.screenshot({ path: path.join(DOCS, 'rollouts-progress.png'), fullPage: true });

    // Pause from the page: the rollout says so.
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.locator('.title').textContent(), { timeout: 15_000 }).toContain('Paused');
    const view = (await api(`/api/v1/rollouts/${rolloutId}`)) as {
      state: string;
      waves: { state: string }[];
    };
    expect(view.state).toBe('paused');
    expect(view.waves.map((w) => w.state)).toEqual(['succeeded', 'paused', 'pending']);
  }, 120_000);

  it('should add a webhook from its page, offering every event the API sends, the waves and failed sites ticked', async () => {
    await page.goto('/rollouts/webhooks');
    const boxes = page.locator('fieldset input[type=checkbox]');
    await expect.poll(() => boxes.count(), { timeout: 15_000 }).toBe(7);
    const offered = await boxes.evaluateAll((els) =>
      els.map((e) => [(e as HTMLInputElement).value, (e as HTMLInputElement).checked]),
    );
    // The API's events, in its order; a new webhook starts with the waves' outcomes and failed sites.
    expect(offered).toEqual([
      ['wave.opened', true],
      ['wave.succeeded', true],
      ['wave.paused', true],
      ['wave.failed', true],
      ['site.failed', true],
      ['rollout.completed', false],
      ['rollout.paused', false],
    ]);
    await boxes.nth(5).check();
    await page.locator('#hook-url').fill('https://hooks.example.org/outpost');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await expect
      .poll(() => page.getByRole('status').textContent(), { timeout: 15_000 })
      .toMatch(/shown only once/);
    const api = await adminApi();
    const { items } = (await api('/api/v1/webhooks')) as { items: { url: string; events: string[] }[] };
    const added = items.find((w) => w.url === 'https://hooks.example.org/outpost');
    expect(added?.events).toEqual([
      'wave.opened',
      'wave.succeeded',
      'wave.paused',
      'wave.failed',
      'site.failed',
      'rollout.completed',
    ]);
  }, 60_000);

  it('should show the plan in French when the language is French', async () => {
    const fr = await outpost.browser.newContext({ baseURL: outpost.baseUrl, locale: 'fr-FR' });
    const p = await fr.newPage();
    await p.goto('/login');
    await p.locator('input[type=email]').fill(ADMIN.email);
    await p.locator('input[type=password]').fill(ADMIN.password);
    await p.locator('button[type=submit]').click();
    await expect.poll(() => p.url(), { timeout: 15_000 }).not.toContain('/login');
    await p.goto('/rollouts');
    await expect
      .poll(() => p.getByRole('heading', { level: 1 }).textContent(), { timeout: 15_000 })
      .toBe('Déploiements');
    expect(await p.getByRole('link', { name: 'Planifier un déploiement' }).count()).toBe(1);
    await p.goto('/rollouts/new');
    await expect
      .poll(() => p.getByRole('heading', { level: 1 }).textContent(), { timeout: 15_000 })
      .toBe('Planifier un déploiement');
    await fr.close();
  }, 60_000);
});
