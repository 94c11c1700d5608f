// Bundles end to end: a release published with a real image (pushed by skopeo to a Debian
// docker-registry on loopback), a bundle asked for on the release page and built by the server's
// own worker, downloaded through the page's button as one tar (checked byte for byte against the
// API), the site page's download line and direct links, and the signing key in Settings.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { buildTestImage, pushImage, startRegistry, type TestRegistry } from '@outpost/bundler/test-support';
import { signIn, snapshot, startOutpost, type Outpost } from './harness';

const ADMIN = { email: 'bundle-admin@example.org', password: 'bundle-password-1' };
const SITE = { code: 'KE-042', name: 'Kisumu County Hospital', region: 'Nyanza', bandwidthKbps: 1000 };
const VERSION = '2.0.0';

let outpost: Outpost;
let registry: TestRegistry;
let work: string;
let reference: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-e2e-bundles-'));
  const image = async () => {
    registry = await startRegistry();
    const built = await buildTestImage({
      dir: path.join(work, 'emr'), tag: '2.0',
      layers: [{ files: { 'etc/os-release': 'NAME=outpost-test\n' } }, { files: { 'app/emr.txt': 'EMR 2.0\n' } }],
    });
    reference = `${registry.host}/emr/app:2.0`;
    await pushImage(built.dir, built.tag, reference);
  };
  const started = await Promise.allSettled([startOutpost(ADMIN), image()]);
  if (started[0].status === 'fulfilled') outpost = started[0].value;
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 90_000);

afterAll(async () => {
  await Promise.all([outpost?.stop(), registry?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 30_000);

/** A JSON call from inside the signed-in page, as a script would make it (the session's CSRF token on writes). */
async function call<T>(page: Page, method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  return page.evaluate(async ([method, url, body]) => {
    const me = (await (await fetch('/api/v1/me')).json()) as { csrfToken: string };
    const res = await fetch(url, {
      method, headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  }, [method, url, body] as const) as Promise<{ status: number; body: T }>;
}

interface ApiBundle { id: string; state: string; size: number; fileName: string; keyFingerprint: string; site: { code: string } }

describe('bundles', () => {
  let context: BrowserContext;
  let page: Page;
  let releaseId: string;
  let siteId: string;
  let bundle: ApiBundle;

  beforeAll(async () => {
    context = await outpost.browser.newContext({ baseURL: outpost.baseUrl, viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('should publish a release with a real image and register a site (through the API, as a script would)', async () => {
    await page.goto('/');
    await signIn(page, ADMIN);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();

    const created = await call<{ id: string }>(page, 'POST', '/api/v1/releases', {
      version: VERSION, composeTemplate: 'services:\n  emr:\n    image: {{ image.emr }}\n    environment:\n      SITE_CODE: {{ site.code }}\n',
    });
    expect(created.status).toBe(201);
    releaseId = created.body.id;
    expect((await call(page, 'POST', `/api/v1/releases/${releaseId}/images`, { name: 'emr', reference })).status).toBe(201);
    expect((await call(page, 'POST', `/api/v1/releases/${releaseId}/publish`)).status).toBe(200);

    const site = await call<{ id: string }>(page, 'POST', '/api/v1/sites', SITE);
    expect(site.status).toBe(201);
    siteId = site.body.id;
  });

  it('should ask for a bundle from the release page and show it ready, with its size, once the worker built it', async () => {
    await page.goto(`/releases/${releaseId}`);
    const section = page.getByRole('region', { name: 'Bundles', exact: true });
    await section.getByText(`No bundles of ${VERSION} yet.`).waitFor();

    await section.getByRole('button', { name: 'Ask for bundles…' }).click();
    const form = section.getByRole('form', { name: 'Ask for bundles' });
    await form.getByLabel('A list of site codes').check();
    await form.getByRole('textbox', { name: 'Site codes' }).fill(`${SITE.code}\n`);
    await form.getByText('1 code.').waitFor();
    // A delta needs the version the site runs; this one never said: refused, naming the site.
    await form.getByLabel('Only what changed', { exact: true }).check();
    await form.getByRole('button', { name: 'Ask for bundles for 1 site' }).click();
    const refused = form.getByRole('alert');
    await refused.getByText('Site KE-042 has not reported a release a delta can be made from', { exact: false }).waitFor();
    expect(await form.getByRole('list', { name: 'Sites with a problem' }).textContent()).toBe(`${SITE.code}: Has never reported a release.`);

    // Explained in plain words; the recommended choice makes a full bundle here.
    await form.getByLabel('Smallest that works (recommended)').check();
    await form.getByRole('button', { name: 'Ask for bundles for 1 site' }).click();
    await refused.waitFor({ state: 'detached' });
    await form.getByText(`Asked for 1 bundle of ${VERSION}: 1 to build.`).waitFor();

    const table = section.getByRole('table', { name: `Bundles of ${VERSION}` });
    const row = table.locator('tbody tr').filter({ hasText: SITE.code });
    await row.waitFor();
    // The page asks again by itself while the worker builds: no reload here.
    await row.locator('td[data-label="State"]').getByText('Ready').waitFor({ timeout: 60_000 });
    await section.getByText('All 1 ready.').waitFor();
    await section.getByRole('table', { name: 'Images archives' }).getByText('Ready').waitFor();

    const list = await call<{ items: ApiBundle[] }>(page, 'GET', `/api/v1/bundles?releaseId=${releaseId}`);
    expect(list.body.items).toHaveLength(1);
    bundle = list.body.items[0]!;
    expect(bundle.state).toBe('ready');
    expect(bundle.size).toBeGreaterThan(0);
    const size = (await row.locator('td[data-label="Size"] .bytes').textContent())!;
    expect(size).toMatch(/^[\d.]+ (bytes|KB|MB)$/);
    await snapshot(page, 'release-bundles');
  }, 90_000);

  it("should download the bundle through the button: one tar of the API's size, starting with the bundle's folder", async () => {
    const section = page.getByRole('region', { name: 'Bundles', exact: true });
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      section.getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code} for ${VERSION}`) }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`outpost-${SITE.code}-${VERSION}.tar`);
    const file = path.join(work, download.suggestedFilename());
    await download.saveAs(file);
    const bytes = await fs.readFile(file);
    expect(bytes.length).toBe(bundle.size);
    expect(bytes.length % 512).toBe(0);
    // The first tar header: the name field (NUL-padded) and its type flag, a directory.
    const name = bytes.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    expect(name).toBe(`outpost-${SITE.code}-${VERSION}/`);
    expect(String.fromCharCode(bytes[156]!)).toBe('5');
    expect(bytes.subarray(257, 262).toString('latin1')).toBe('ustar');
  });

  it("should offer the download on the site page with the time at the site's bandwidth, and direct links", async () => {
    await page.goto(`/sites/${siteId}`);
    const section = page.getByRole('region', { name: 'Bundles', exact: true });
    const item = section.getByRole('list', { name: `Bundles of ${SITE.code}` }).locator('li').first();
    await item.getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code}`) }).waitFor();
    expect(await item.locator('.time').textContent()).toMatch(/^[\d.]+ (bytes|KB|MB) · (under a minute|about \d+ min) at 1 Mbit\/s$/);
    expect(await item.textContent()).toContain(bundle.keyFingerprint);

    await item.getByText('Direct links (for a download manager)').click();
    const links = item.locator('details ol li a');
    await links.first().waitFor();
    const urls = await links.evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(urls.length).toBeGreaterThanOrEqual(2);
    // Every part can be fetched as it is, by anything (no session): presigned links.
    for (const url of urls) expect((await fetch(url)).status).toBe(200);
    await snapshot(page, 'site-bundles');
  });

  it('should list the bundle on the Bundles page, and filter it away by state', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Bundles' }).click();
    const table = page.getByRole('table', { name: 'Bundles', exact: true });
    await table.locator('tbody tr').filter({ hasText: SITE.code }).getByText('Ready').waitFor();
    await page.getByLabel('State').selectOption('failed');
    await page.getByText('No bundles match these filters.').waitFor();
    expect(page.url()).toContain('state=failed');
  });

  it("should show the organisation's signing key in Settings, the one that signed the bundle", async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const section = page.getByRole('region', { name: 'Signing key' });
    const fingerprint = section.getByLabel('Fingerprint of the key in use');
    await fingerprint.waitFor();
    const keys = await call<{ items: { fingerprint: string; active: boolean }[] }>(page, 'GET', '/api/v1/signing-keys');
    const active = keys.body.items.find((k) => k.active)!;
    expect(await fingerprint.inputValue()).toBe(active.fingerprint);
    expect(active.fingerprint).toBe(bundle.keyFingerprint);
    await section.getByText('Public key', { exact: true }).click();
    expect(await section.getByLabel('Public key (PEM)').textContent()).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await snapshot(page, 'settings-signing-key');
  });

  it('should fit the release and site pages on a 375px phone screen without horizontal scrolling', async () => {
    const phone = await outpost.browser.newContext({ baseURL: outpost.baseUrl, viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto(`/releases/${releaseId}`);
      await signIn(p, ADMIN);
      await p.getByRole('table', { name: `Bundles of ${VERSION}` }).getByText('Ready').waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'release-bundles-phone');
      await p.goto(`/sites/${siteId}`);
      await p.getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code}`) }).waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'site-bundles-phone');
    } finally {
      await phone.close();
    }
  });
});
