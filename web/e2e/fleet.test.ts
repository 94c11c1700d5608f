// The fleet registry end to end: CSV import with a bad row, filters kept in the URL, a site's
// device token, a real check-in from that token, and receipt codes checked on the page and by the API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { receiptVectors } from '@outpost/api/test-support';
import { signIn, snapshot, startOutpost, type Outpost } from './harness';

const ADMIN = { email: 'fleet-admin@example.org', password: 'fleet-password-1' };

// Row 5 (the header is row 1) has a connectivity the API does not know.
const CSV = [
  'code,name,region,district,tags,connectivity',
  'KE-001,Nairobi General,Nairobi,Westlands,pilot;urban,online',
  'KE-002,Mombasa Clinic,Coast,Mvita,,intermittent',
  'KE-003,Kilifi Dispensary,Coast,Kilifi North,rural,offline',
  'KE-004,Malindi Clinic,Coast,Malindi,,satellite',
  'KE-005,Kisumu Health Centre,Nyanza,Kisumu Central,pilot,online',
  '',
].join('\n');

// A well-formed code made with another site's key (docs/receipt-code-vectors.json).
const vectors = receiptVectors;
const FOREIGN_CODE = vectors.codes[0]!.expected.code;
// The same code with its last (check) character changed: a typo the page must catch by itself.
const MISTYPED_CODE = `${FOREIGN_CODE.slice(0, -1)}${FOREIGN_CODE.endsWith('T') ? 'U' : 'T'}`;

let outpost: Outpost;

beforeAll(async () => {
  outpost = await startOutpost(ADMIN);
}, 60_000);

afterAll(async () => {
  await outpost?.stop();
}, 30_000);

function rowCodes(page: Page): Promise<string[]> {
  return page.locator('table.sites tbody td[data-label="Code"]').allTextContents();
}

describe('fleet registry', () => {
  let context: BrowserContext;
  let page: Page;
  let siteUrl: string;
  let deviceToken: string;

  beforeAll(async () => {
    context = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
    });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('should sign the admin in to an empty fleet', async () => {
    await page.goto('/');
    await page.waitForURL('**/login');
    await signIn(page, ADMIN);
    await page.getByRole('heading', { name: 'No sites yet' }).waitFor();
  });

  it('should check and then import a CSV in partial mode, listing the bad row and creating the good ones', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sites' }).click();
    await page.getByText('No sites registered yet.').waitFor();
    await page.getByRole('button', { name: 'Import CSV' }).click();
    const panel = page.getByRole('region', { name: 'Import sites from a CSV file' });
    await panel
      .getByLabel('CSV file')
      .setInputFiles({ name: 'sites.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
    await panel.getByLabel('Import the good rows and list the bad ones').check();

    await panel.getByRole('button', { name: 'Check file' }).click();
    const check = panel.getByRole('region', { name: 'Check result' });
    await check.waitFor();
    expect(await check.textContent()).toContain('nothing was written');
    expect(await rowCodes(page)).toEqual([]);

    await panel.getByRole('button', { name: 'Import', exact: true }).click();
    const result = panel.getByRole('region', { name: 'Import result' });
    await result.waitFor();
    expect(await result.getByText('Imported, except 1 row with problems').count()).toBe(1);
    const created = result.locator('dt', { hasText: /^Created$/ }).locator('xpath=following-sibling::dd');
    expect(await created.textContent()).toBe('4');
    const problems = result.getByRole('table', { name: 'Problems' });
    const bad = problems.locator('tbody tr');
    expect(await bad.count()).toBe(1);
    expect(await bad.locator('td[data-label="Row"]').textContent()).toBe('5');
    expect(await bad.locator('td[data-label="Column"]').textContent()).toBe('connectivity');
    await snapshot(page, 'sites-import');

    // The list behind the panel was refreshed with the good rows only.
    await page.getByRole('status').getByText('Showing 4 of 4 sites').waitFor();
    expect(await rowCodes(page)).toEqual(['KE-001', 'KE-002', 'KE-003', 'KE-005']);
  });

  it('should filter by region, keep the filter in the URL and the CSV export, and survive a reload', async () => {
    await page.getByRole('button', { name: 'Close' }).click();
    await page.getByLabel('Region').selectOption('Coast');
    await page.waitForURL('**/sites?region=Coast');
    await page.getByRole('status').getByText('Showing 2 of 2 sites').waitFor();
    expect(await rowCodes(page)).toEqual(['KE-002', 'KE-003']);

    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    expect(href).toBe('/api/v1/sites/export.csv?region=Coast');
    const csv = await page.evaluate(async (url) => (await fetch(url)).text(), href!);
    expect(csv).toContain('KE-003');
    expect(csv).not.toContain('KE-001');

    await page.reload();
    await page.getByRole('status').getByText('Showing 2 of 2 sites').waitFor();
    expect(await page.getByLabel('Region').inputValue()).toBe('Coast');

    // The search box narrows further after a pause in typing, and joins the URL.
    await page.getByLabel('Search').fill('kilifi');
    await page.waitForURL('**/sites?q=kilifi&region=Coast');
    await page.getByRole('status').getByText('Showing 1 of 1 site').waitFor();
    expect(await rowCodes(page)).toEqual(['KE-003']);
    await snapshot(page, 'sites-filtered');
  });

  it('should open a site and issue its device token, shown once', async () => {
    await page.getByRole('link', { name: 'KE-003' }).click();
    await page.getByRole('heading', { name: 'KE-003 Kilifi Dispensary', level: 1 }).waitFor();
    siteUrl = page.url();
    const tokens = page.getByRole('region', { name: 'Device token' });
    await tokens.getByText('No device token.').waitFor();
    await tokens.getByRole('button', { name: 'Issue device token' }).click();
    const field = tokens.getByRole('textbox', { name: 'Device token', exact: true });
    await field.waitFor();
    deviceToken = await field.inputValue();
    expect(deviceToken).toMatch(/^opd_/);
    expect(await tokens.getByText('It will not be shown again.').isVisible()).toBe(true);
    await tokens.getByText(`${deviceToken.slice(0, 10)}…`).waitFor();
    await tokens.getByRole('button', { name: 'I have saved it' }).click();
    expect(await field.count()).toBe(0);
  });

  it('should show the heartbeat in the history and when the site was last seen, after it checks in with its token', async () => {
    const res = await fetch(`${outpost.baseUrl}/api/v1/checkin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${deviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '1.0.0', status: 'healthy', idempotencyKey: 'e2e-00001' }),
    });
    expect(res.status, `${await res.text()}\n${outpost.log()}`).toBe(200);

    await page.reload();
    const history = page.getByRole('region', { name: 'History' });
    const entry = history.getByRole('listitem').first();
    await entry.waitFor();
    const text = await entry.textContent();
    expect(text).toContain('Heartbeat');
    expect(text).toContain('1.0.0');
    expect(text).toContain('Healthy');
    const summary = page.getByRole('region', { name: 'Version and status' });
    expect(await summary.textContent()).toContain('just now');
    expect(await page.content()).not.toContain(deviceToken);
  });

  it('should catch a mistyped receipt code on the page, before anything is sent', async () => {
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/receipts')) sent.push(r.url());
    });
    const confirm = page.getByRole('region', { name: 'Confirm an install' });
    const input = confirm.getByLabel('Receipt code', { exact: true });
    // Typed as a phone user might: lower case, no dashes; the page groups it as printed.
    await input.pressSequentially(MISTYPED_CODE.replace(/-/g, '').toLowerCase());
    expect(await input.inputValue()).toBe(MISTYPED_CODE);
    await confirm.getByText('The code has a typing mistake.').waitFor();
    expect(await confirm.getByRole('button', { name: 'Record install' }).isDisabled()).toBe(true);
    await input.press('Enter');
    expect(sent).toEqual([]);
    await snapshot(page, 'site-typo');
  });

  it("should show the API's refusal of a well-formed code made for another site", async () => {
    const confirm = page.getByRole('region', { name: 'Confirm an install' });
    const input = confirm.getByLabel('Receipt code', { exact: true });
    await input.fill('');
    await input.pressSequentially(FOREIGN_CODE);
    await confirm.getByText('The code is typed correctly.').waitFor();
    const record = confirm.getByRole('button', { name: 'Record install' });
    expect(await record.isEnabled()).toBe(true);
    await record.click();
    const refusal = confirm.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('does not match');
    await snapshot(page, 'site-refused');
  });

  it("should upload a receipt file's exact text and show the API's refusal of one signed with another key", async () => {
    // The vector file, pointed at this site: well-formed, but its signature was made with another key.
    const siteId = siteUrl.split('/').at(-1)!;
    const vector = vectors.files[0]!;
    const text = vector.expected.json.replace(vector.siteId, siteId);
    const bodies: (string | null)[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/receipts/file')) bodies.push(r.postData());
    });
    const form = page.getByRole('form', { name: 'Or upload the receipt file' });
    await form
      .getByLabel('Receipt file')
      .setInputFiles({ name: 'receipt.json', mimeType: 'application/json', buffer: Buffer.from(text) });
    await form.getByRole('button', { name: 'Upload receipt file' }).click();
    const refusal = form.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('cannot be accepted');
    expect(bodies).toEqual([text]);
  });

  it('should let an admin assign a coordinator, who then sees only that site, with the receipt form and no management', async () => {
    const coordinator = { email: 'coord@example.org', password: 'coord-password-1' };
    const status = await page.evaluate(async (who) => {
      const me = (await (await fetch('/api/v1/me')).json()) as { csrfToken: string };
      const res = await fetch('/api/v1/users', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
        body: JSON.stringify({ ...who, name: 'Cora Coordinator', role: 'coordinator' }),
      });
      return res.status;
    }, coordinator);
    expect(status).toBe(201);
    await page.reload();
    const section = page.getByRole('region', { name: 'Coordinators' });
    await section
      .getByLabel('Assign a coordinator')
      .selectOption({ label: `Cora Coordinator · ${coordinator.email}` });
    await section.getByRole('button', { name: 'Assign' }).click();
    await section.getByText(coordinator.email).waitFor();
    await section.getByRole('button', { name: `Unassign ${coordinator.email}` }).waitFor();

    const other = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
    });
    try {
      const p = await other.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto('/sites');
      await signIn(p, coordinator);
      await p.getByRole('status').getByText('Showing 1 of 1 site').waitFor();
      expect(await p.locator('table.sites tbody td[data-label="Code"]').allTextContents()).toEqual([
        'KE-003',
      ]);
      expect(await p.getByRole('button', { name: 'Add site' }).count()).toBe(0);
      expect(await p.getByRole('button', { name: 'Import CSV' }).count()).toBe(0);
      await p.getByRole('link', { name: 'KE-003' }).click();
      await p
        .getByRole('region', { name: 'Confirm an install' })
        .getByLabel('Receipt code', { exact: true })
        .waitFor();
      await p.getByRole('region', { name: 'History' }).getByText('Heartbeat', { exact: true }).waitFor();
      expect(await p.getByRole('button', { name: 'Edit' }).count()).toBe(0);
      expect(await p.getByRole('button', { name: 'Archive' }).count()).toBe(0);
      expect(await p.getByRole('region', { name: 'Device token' }).count()).toBe(0);
      expect(await p.getByRole('region', { name: 'Coordinators' }).count()).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('should count the sites per status on the fleet dashboard, each count leading to the filtered list', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet' }).click();
    const headline = page.getByRole('region', { name: 'Headline figures' });
    await headline.locator('.card.total .number').getByText('4', { exact: true }).waitFor();
    const never = headline.locator('.card.never_reported a');
    expect(await never.locator('.number').textContent()).toBe('3');
    expect(await headline.locator('.card.no_target a .number').textContent()).toBe('1');
    await snapshot(page, 'fleet');
    await never.click();
    await page.waitForURL('**/sites?status=never_reported');
    await page.getByRole('status').getByText('Showing 3 of 3 sites').waitFor();
    expect(await page.getByLabel('Status').inputValue()).toBe('never_reported');
  });

  it('should add a site by hand, with the problem shown next to its field, then edit it', async () => {
    await page.getByRole('button', { name: 'Add site' }).click();
    const form = page.getByRole('form', { name: 'Add a site' });
    await form.getByLabel('Code', { exact: true }).fill('KE-006');
    await form.getByLabel('Name', { exact: true }).fill('Lamu Clinic');
    await form.getByLabel('Region', { exact: true }).fill('Coast');
    await form.getByLabel('Maintenance window', { exact: true }).fill('evenings');
    await form.getByRole('button', { name: 'Add site' }).click();
    await form.getByText('Write the window like').waitFor();
    expect(await form.getByLabel('Maintenance window', { exact: true }).getAttribute('aria-invalid')).toBe(
      'true',
    );

    await form.getByLabel('Maintenance window', { exact: true }).fill('daily 22:00-04:00');
    await form.getByRole('button', { name: 'Add site' }).click();
    await page.getByRole('heading', { name: 'KE-006 Lamu Clinic', level: 1 }).waitFor();
    expect(await page.getByRole('region', { name: 'Details' }).textContent()).toContain('daily 22:00-04:00');

    await page.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit KE-006' });
    await edit.getByLabel('Name', { exact: true }).fill('Lamu County Clinic');
    await edit.getByLabel('Tags', { exact: true }).fill('island, solar');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'KE-006 Lamu County Clinic', level: 1 }).waitFor();
    const details = page.getByRole('region', { name: 'Details' });
    expect(await details.getByRole('link', { name: 'solar' }).getAttribute('href')).toBe('/sites?tag=solar');
  });

  it('should fit a 375px phone screen without horizontal scrolling, tables stacked as cards', async () => {
    const phone = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 375, height: 740 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      const p = await phone.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto('/sites?region=Coast');
      await signIn(p, ADMIN);
      await p.waitForURL('**/sites?region=Coast');
      await p.getByRole('status').getByText('Showing 3 of 3 sites').waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'sites-phone');

      await p.goto(siteUrl);
      await p.getByRole('region', { name: 'Confirm an install' }).waitFor();
      await p.getByRole('region', { name: 'History' }).getByText('Heartbeat', { exact: true }).waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'site-phone');
    } finally {
      await phone.close();
    }
  });
});
