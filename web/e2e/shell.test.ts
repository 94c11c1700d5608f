// The dashboard shell end to end: the real server (API + built SPA on one origin, embedded PGlite
// and object store) in a child process, driven by the Debian Chromium through playwright-core.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { signIn, startOutpost, type Outpost } from './harness.ts';

const ADMIN = { email: 'admin@example.org', password: 'admin-password-1' };
const VIEWER = { email: 'viewer@example.org', name: 'Vera Viewer', password: 'viewer-password-1' };

let outpost: Outpost;
let baseUrl: string;
let browser: Browser;

beforeAll(async () => {
  outpost = await startOutpost(ADMIN, 'Ministry of Health');
  ({ baseUrl, browser } = outpost);
}, 60_000);

afterAll(async () => {
  await outpost?.stop();
}, 30_000);

describe('serving the built app', () => {
  it('should send the page compressed, asked again on each visit and answered 304 while unchanged', async () => {
    const first = await fetch(`${baseUrl}/sites`, { headers: { 'accept-encoding': 'br' } });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-encoding')).toBe('br');
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const tag = first.headers.get('etag');
    expect(tag).toBeTruthy();
    // The first screen's code is inside the page (build-tools/inline-first-screen.ts).
    const html = await first.text();
    expect(html).toContain('importmap');
    expect(html).not.toContain('rel="modulepreload"');

    const again = await fetch(`${baseUrl}/sites`, {
      headers: { 'accept-encoding': 'br', 'if-none-match': tag! },
    });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');

    // A lazily loaded page's file is named by its content: kept for good.
    const chunk = /"(\/_app\/immutable\/chunks\/[\w-]+\.js)"/.exec(html)?.[1];
    expect(chunk).toBeTruthy();
    const file = await fetch(`${baseUrl}${chunk}`);
    expect(file.status).toBe(200);
    expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });
});

describe('dashboard shell', () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await browser.newContext({ baseURL: baseUrl, viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('should serve the sign-in page at / to someone not signed in', async () => {
    await page.goto('/');
    await page.waitForURL('**/login');
    await expect(page.getByRole('heading', { name: 'Sign in to Outpost' }).isVisible()).resolves.toBe(true);
  });

  it("should show the API's message for a wrong password", async () => {
    await signIn(page, { email: ADMIN.email, password: 'not-the-password' });
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('The email or password is wrong.');
    expect(page.url()).toMatch(/\/login$/);
  });

  it('should show the throttling message after too many failed sign-ins', async () => {
    // Failures count per account (known or not); ten wrong answers close the door for a while.
    const stranger = { email: 'nobody@example.org', password: 'wrong-password' };
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(stranger),
      });
      expect(res.status).toBe(401);
    }
    await signIn(page, stranger);
    await page
      .getByRole('alert')
      .getByText('Too many failed sign-ins for this account.', { exact: false })
      .waitFor();
  });

  it('should sign the admin in and show the organisation, email and role in the top bar', async () => {
    await signIn(page, ADMIN);
    await page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();
    const banner = page.getByRole('banner');
    const text = await banner.textContent();
    expect(text).toContain('Ministry of Health');
    expect(text).toContain(ADMIN.email);
    expect(text).toContain('Owner');
    // The figures load after the page: the empty fleet's message appears once they have.
    await page.getByText('The state of every site will appear here once sites are registered.').waitFor();
  });

  it('should add a viewer with a password', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByRole('cell', { name: `${ADMIN.email} (you)`, exact: true }).waitFor();

    // Scoped to the Users section: the invitation form above has fields of the same names.
    await users.getByLabel('Email', { exact: true }).fill(VIEWER.email);
    await users.getByLabel('Name', { exact: true }).fill(VIEWER.name);
    await users.getByLabel('Role', { exact: true }).selectOption('viewer');
    await page.getByLabel('Password (optional)').fill(VIEWER.password);
    await page.getByRole('button', { name: 'Add user' }).click();

    await users.getByRole('cell', { name: VIEWER.email, exact: true }).waitFor();
    expect(await users.getByLabel(`Role of ${VIEWER.email}`).inputValue()).toBe('viewer');
    // A password was given, so there is no generated one to show.
    expect(await page.getByRole('heading', { name: 'User added' }).count()).toBe(0);
  });

  it('should show a generated password once, change a role and remove a user', async () => {
    const users = page.getByRole('region', { name: 'Users' });
    await page
      .getByRole('region', { name: 'Users' })
      .getByLabel('Email', { exact: true })
      .fill('temp@example.org');
    await page.getByRole('button', { name: 'Add user' }).click();
    const initial = users.getByLabel('Initial password for temp@example.org');
    await initial.waitFor();
    expect((await initial.inputValue()).length).toBeGreaterThanOrEqual(10);
    await users.getByRole('button', { name: 'I have saved it' }).click();
    expect(await initial.count()).toBe(0);

    const role = users.getByLabel('Role of temp@example.org');
    await role.selectOption('operator');
    await page.waitForFunction(
      () =>
        (document.querySelector('select[aria-label="Role of temp@example.org"]') as HTMLSelectElement | null)
          ?.value === 'operator',
    );

    const row = users.getByRole('row').filter({ hasText: 'temp@example.org' });
    await row.getByRole('button', { name: 'Remove' }).click();
    await row.getByRole('button', { name: 'Yes, remove' }).click();
    await users.getByRole('cell', { name: 'temp@example.org', exact: true }).waitFor({ state: 'detached' });
  });

  it('should show a validation message next to the field it concerns', async () => {
    await page
      .getByRole('region', { name: 'Users' })
      .getByLabel('Email', { exact: true })
      .fill('someone@example.org');
    await page.getByLabel('Password (optional)').fill('short');
    await page.getByRole('button', { name: 'Add user' }).click();
    const form = page.getByRole('form', { name: 'Add a user' });
    await form.getByText('Use at least 10 characters.').waitFor();
    expect(await form.getByRole('alert').textContent()).toContain('Some fields need attention.');
    await page.getByRole('region', { name: 'Users' }).getByLabel('Email', { exact: true }).fill('');
    await page.getByLabel('Password (optional)').fill('');
  });

  it('should create an API token, show its secret once, and the secret should work', async () => {
    await page.getByLabel('Token name').fill('CI pipeline');
    await page.getByLabel('Token role').selectOption('operator');
    await page.getByLabel('Expires after (days, optional)').fill('30');
    await page.getByRole('button', { name: 'Create token' }).click();

    const secretField = page.getByLabel('Token secret');
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret.length).toBeGreaterThan(20);
    expect(await page.getByText('It will not be shown again.').isVisible()).toBe(true);
    const tokens = page.getByRole('region', { name: 'API tokens' });
    await tokens.getByRole('cell', { name: 'CI pipeline', exact: true }).waitFor();

    const me = await fetch(`${baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { role: string }).role).toBe('operator');

    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await tokens.getByRole('button', { name: 'Copy' }).click();
    await tokens.getByRole('status').getByText('Copied.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);

    await tokens.getByRole('button', { name: 'I have saved it' }).click();
    expect(await page.getByLabel('Token secret').count()).toBe(0);
    // Reloading shows the token by prefix only; the secret is gone for good.
    await page.reload();
    await tokens.getByRole('cell', { name: 'CI pipeline', exact: true }).waitFor();
    expect(await page.content()).not.toContain(secret);
  });

  it('should revoke an API token so that it stops working', async () => {
    const tokens = page.getByRole('region', { name: 'API tokens' });
    await page.getByLabel('Token name').fill('Short-lived');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByLabel('Token secret').inputValue();
    await tokens.getByRole('button', { name: 'I have saved it' }).click();

    const row = tokens.getByRole('row').filter({ hasText: 'Short-lived' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByRole('button', { name: 'Yes, revoke' }).click();
    await row.waitFor({ state: 'detached' });
    const me = await fetch(`${baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(me.status).toBe(401);

    await tokens.getByLabel('Show revoked tokens').check();
    await tokens.getByRole('row').filter({ hasText: 'Short-lived' }).getByText('Revoked').waitFor();
    await tokens.getByLabel('Show revoked tokens').uncheck();
  });

  it('should list the changes in the audit log, newest first', async () => {
    const audit = page.getByRole('region', { name: 'Audit log' });
    // In words, not codes, newest first: the last change was revoking the "Short-lived" token.
    await audit.getByText('Revoked API token Short-lived').waitFor();
    const actions = (await audit.locator('li .what').allTextContents()).map((a) => a.trim());
    expect(actions[0]).toBe('Revoked API token Short-lived');
    expect(actions.indexOf('Created API token CI pipeline')).toBeLessThan(
      actions.findIndex((a) => a.startsWith('Added ')),
    );
    expect(actions.at(-1)).toBe('Created the organisation');
    // Narrowed to one kind of change.
    await audit.getByLabel('Kind of change').selectOption('token');
    await expect
      .poll(async () => (await audit.locator('li .what').allTextContents()).map((a) => a.trim()))
      .toEqual([
        'Revoked API token Short-lived',
        'Created API token Short-lived',
        'Created API token CI pipeline',
      ]);
  });

  it('should sign out back to the sign-in page', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    await page.goto('/settings');
    await page.waitForURL('**/login?next=%2Fsettings');
  });

  it('should let the viewer in without the user and token management', async () => {
    await signIn(page, VIEWER);
    await page.waitForURL('**/settings');
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    expect(
      await page
        .getByText('Only owners and admins manage users, API tokens and registry credentials.')
        .isVisible(),
    ).toBe(true);
    expect(await page.getByRole('button', { name: 'Add user' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Create token' }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Users' }).count()).toBe(0);
    expect(await page.getByRole('banner').textContent()).toContain('Viewer');
  });

  it('should refuse a user creation by the viewer with 403 and the error envelope', async () => {
    const answer = await page.evaluate(async () => {
      const me = (await (await fetch('/api/v1/me')).json()) as { csrfToken: string };
      const res = await fetch('/api/v1/users', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
        body: JSON.stringify({ email: 'sneaky@example.org', role: 'admin' }),
      });
      return {
        status: res.status,
        body: (await res.json()) as { error: { code: string; message: string; requestId: string } },
      };
    });
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('FORBIDDEN');
    expect(answer.body.error.message).toEqual(expect.any(String));
    expect(answer.body.error.requestId).toEqual(expect.any(String));
  });
});

describe('dashboard on a phone-sized screen', () => {
  it('should open the navigation from the menu button without horizontal scrolling, and send a lost session to sign-in', async () => {
    const context = await browser.newContext({
      baseURL: baseUrl,
      viewport: { width: 375, height: 667 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto('/login');
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await signIn(page, ADMIN);
      await page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();

      const nav = page.getByRole('navigation', { name: 'Main' });
      expect(await nav.isVisible()).toBe(false);
      const menu = page.getByRole('button', { name: 'Menu' });
      expect(await menu.getAttribute('aria-expanded')).toBe('false');
      await menu.click();
      expect(await nav.isVisible()).toBe(true);
      expect(await page.getByRole('button', { name: 'Close menu' }).getAttribute('aria-expanded')).toBe(
        'true',
      );

      await nav.getByRole('link', { name: 'Settings' }).click();
      await page.getByRole('heading', { name: 'Audit log' }).waitFor();
      await page
        .getByRole('region', { name: 'Users' })
        .getByRole('cell', { name: `${ADMIN.email} (you)` })
        .waitFor();
      expect(await nav.isVisible()).toBe(false);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      expect(await page.getByRole('button', { name: 'Add user' }).isVisible()).toBe(true);

      // The session disappears (expired, or ended elsewhere): the next API call leads to sign-in.
      await context.clearCookies();
      // click, not check(): check() then waits to see the box ticked, a race with the move to sign-in.
      await page.getByLabel('Show revoked tokens').click();
      await page.waitForURL('**/login?next=%2Fsettings');
      await page.getByRole('heading', { name: 'Sign in to Outpost' }).waitFor();
    } finally {
      await context.close();
    }
  });
});
