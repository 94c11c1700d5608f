// Bundles end to end: a release published with a real image (pushed by skopeo to a Debian
// docker-registry on loopback), a bundle asked for on the release page and built by the server's
// own worker, downloaded through the page's button as one tar (checked byte for byte against the
// API), the site page's download line and direct links, and the signing key in Settings.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import {
  freePort,
  buildTestImage,
  corruptBlob,
  pushImage,
  registryBlobPath,
  startRegistry,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { signIn, snapshot, startOutpost, type Outpost } from './harness';

const ADMIN = { email: 'bundle-admin@example.org', password: 'bundle-password-1' };
const SITE = { code: 'KE-042', name: 'Kisumu County Hospital', region: 'Nyanza', bandwidthKbps: 1000 };
const VERSION = '2.0.0';

let outpost: Outpost;
let registry: TestRegistry;
let work: string;
let reference: string;

beforeAll(async () => {
  // The server starts beside the registry: its address is chosen first, to be allow-listed as production would.
  const registryPort = await freePort();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-e2e-bundles-'));
  const image = async () => {
    registry = await startRegistry({ port: registryPort });
    const built = await buildTestImage({
      dir: path.join(work, 'emr'),
      tag: '2.0',
      layers: [
        { files: { 'etc/os-release': 'NAME=outpost-test\n' } },
        { files: { 'app/emr.txt': 'EMR 2.0\n' } },
      ],
    });
    reference = `${registry.host}/emr/app:2.0`;
    await pushImage(built.dir, built.tag, reference);
  };
  const started = await Promise.allSettled([
    startOutpost(ADMIN, undefined, { OUTPOST_REGISTRY_ALLOW_INSECURE: `127.0.0.1:${registryPort}` }),
    image(),
  ]);
  if (started[0].status === 'fulfilled') outpost = started[0].value;
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 90_000);

afterAll(async () => {
  await Promise.all([outpost?.stop(), registry?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 30_000);

/** A JSON call from inside the signed-in page, as a script would make it (the session's CSRF token on writes). */
async function call<T>(
  page: Page,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  return page.evaluate(
    async ([method, url, body]) => {
      const me = (await (await fetch('/api/v1/me')).json()) as { csrfToken: string };
      const res = await fetch(url, {
        method,
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    },
    [method, url, body] as const,
  ) as Promise<{ status: number; body: T }>;
}

interface ApiBundle {
  id: string;
  state: string;
  size: number;
  fileName: string;
  keyFingerprint: string;
  site: { code: string };
}

describe('bundles', () => {
  let context: BrowserContext;
  let page: Page;
  let releaseId: string;
  let siteId: string;
  let bundle: ApiBundle;

  beforeAll(async () => {
    context = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
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
      version: VERSION,
      composeTemplate:
        'services:\n  emr:\n    image: {{ image.emr }}\n    environment:\n      SITE_CODE: {{ site.code }}\n',
    });
    expect(created.status).toBe(201);
    releaseId = created.body.id;
    expect(
      (await call(page, 'POST', `/api/v1/releases/${releaseId}/images`, { name: 'emr', reference })).status,
    ).toBe(201);
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
    await refused
      .getByText('Site KE-042 has not reported a release a delta can be made from', { exact: false })
      .waitFor();
    expect(await form.getByRole('list', { name: 'Sites with a problem' }).textContent()).toBe(
      `${SITE.code}: Has never reported a release.`,
    );

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
      section
        .getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code} for ${VERSION}`) })
        .click(),
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
    const item = section
      .getByRole('list', { name: `Bundles of ${SITE.code}` })
      .locator('li')
      .first();
    await item.getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code}`) }).waitFor();
    expect(await item.locator('.time').textContent()).toMatch(
      /^[\d.]+ (bytes|KB|MB) · (under a minute|about \d+ min) at 1 Mbit\/s$/,
    );
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
    const keys = await call<{ items: { fingerprint: string; active: boolean }[] }>(
      page,
      'GET',
      '/api/v1/signing-keys',
    );
    const active = keys.body.items.find((k) => k.active)!;
    expect(await fingerprint.inputValue()).toBe(active.fingerprint);
    expect(active.fingerprint).toBe(bundle.keyFingerprint);
    await section.getByText('Public key', { exact: true }).click();
    expect(await section.getByLabel('Public key (PEM)').textContent()).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await snapshot(page, 'settings-signing-key');
  });

  it('should explain a failed build in plain words, and build it again when asked once the registry is mended', async () => {
    const broken = await buildTestImage({
      dir: path.join(work, 'emr'),
      tag: '3.0',
      layers: [{ files: { 'app/emr.txt': 'EMR 3.0, about to be damaged\n' } }],
    });
    const ref = `${registry.host}/emr/app:3.0`;
    await pushImage(broken.dir, broken.tag, ref);
    const created = await call<{ id: string }>(page, 'POST', '/api/v1/releases', {
      version: '3.0.0',
      composeTemplate: 'services:\n  emr:\n    image: {{ image.emr }}\n',
    });
    expect(
      (
        await call(page, 'POST', `/api/v1/releases/${created.body.id}/images`, {
          name: 'emr',
          reference: ref,
        })
      ).status,
    ).toBe(201);
    expect((await call(page, 'POST', `/api/v1/releases/${created.body.id}/publish`)).status).toBe(200);
    // The registry now serves other bytes under the layer's digest, as a failing disk would.
    const layer = broken.layers[0]!.digest;
    const original = await fs.readFile(registryBlobPath(registry, layer));
    await corruptBlob(registry, layer);

    await page.goto(`/releases/${created.body.id}`);
    const section = page.getByRole('region', { name: 'Bundles', exact: true });
    await section.getByRole('button', { name: 'Ask for bundles…' }).click();
    const form = section.getByRole('form', { name: 'Ask for bundles' });
    await form.getByLabel('A list of site codes').check();
    await form.getByRole('textbox', { name: 'Site codes' }).fill(SITE.code);
    await form.getByRole('button', { name: 'Ask for bundles for 1 site' }).click();

    const row = section
      .getByRole('table', { name: 'Bundles of 3.0.0' })
      .locator('tbody tr')
      .filter({ hasText: SITE.code });
    await row.locator('td[data-label="State"]').getByText('Failed').waitFor({ timeout: 60_000 });
    expect(await row.textContent()).toContain(
      'An image from the registry was not exactly the one the release names',
    );
    await section.getByText('0 of 1 ready; 1 failed.').waitFor();
    await snapshot(page, 'release-bundle-failed');

    await fs.writeFile(registryBlobPath(registry, layer), original);
    await row.getByRole('button', { name: `Try the bundle of ${SITE.code} again` }).click();
    await row.locator('td[data-label="State"]').getByText('Ready').waitFor({ timeout: 60_000 });
    await section.getByText('All 1 ready.').waitFor();
    expect(await row.getByRole('button', { name: /^Try/ }).count()).toBe(0);
  }, 150_000);

  it("should show a coordinator their own sites' bundles to download, and no controls to ask for or retry any", async () => {
    // Another site with a bundle, which the coordinator must not see.
    const other = await call<{ id: string }>(page, 'POST', '/api/v1/sites', {
      code: 'KE-043',
      name: 'Siaya Health Centre',
    });
    expect(other.status).toBe(201);
    expect((await call(page, 'POST', '/api/v1/bundles', { releaseId, siteCodes: ['KE-043'] })).status).toBe(
      202,
    );
    const coordinator = { email: 'coordinator@example.org', password: 'coordinator-password-1' };
    const user = await call<{ user: { id: string } }>(page, 'POST', '/api/v1/users', {
      ...coordinator,
      name: 'Achieng',
      role: 'coordinator',
    });
    expect(user.status).toBe(201);
    expect(
      (await call(page, 'PUT', `/api/v1/sites/${siteId}/coordinators/${user.body.user.id}`)).status,
    ).toBe(200);

    const theirs = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
    });
    try {
      const p = await theirs.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto('/bundles');
      await signIn(p, coordinator);
      await p.getByText('The bundles of your sites.').waitFor();
      const rows = p.getByRole('table', { name: 'Bundles', exact: true }).locator('tbody tr');
      await rows.nth(1).waitFor();
      expect(await rows.count()).toBe(2);
      expect(await rows.locator('td[data-label="Site"] a').allTextContents()).toEqual([SITE.code, SITE.code]);
      await p
        .getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code} for ${VERSION}`) })
        .waitFor();
      expect(await p.getByRole('button', { name: /^Try the bundle/ }).count()).toBe(0);

      await p.goto(`/releases/${releaseId}`);
      const section = p.getByRole('region', { name: 'Bundles', exact: true });
      await section
        .getByRole('table', { name: `Bundles of ${VERSION}` })
        .getByText('Ready')
        .waitFor();
      // Its counts are the coordinator's sites' only, too.
      await section.getByText('All 1 ready.').waitFor();
      expect(await section.getByRole('button', { name: 'Ask for bundles…' }).count()).toBe(0);
      expect(await section.getByText('KE-043').count()).toBe(0);
    } finally {
      await theirs.close();
    }
  });

  it('should fit the release and site pages on a 375px phone screen without horizontal scrolling', async () => {
    const phone = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 375, height: 740 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      const p = await phone.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto(`/releases/${releaseId}`);
      await signIn(p, ADMIN);
      await p
        .getByRole('table', { name: `Bundles of ${VERSION}` })
        .getByText('Ready')
        .first()
        .waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'release-bundles-phone');
      await p.goto(`/sites/${siteId}`);
      await p
        .getByRole('link', { name: new RegExp(`^Download the bundle of ${SITE.code} for ${VERSION}`) })
        .waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'site-bundles-phone');
    } finally {
      await phone.close();
    }
  });

  it('should rotate the signing key after a confirm that says sites need the new fingerprint, listing the old one as retired', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const section = page.getByRole('region', { name: 'Signing key' });
    const fingerprint = section.getByLabel('Fingerprint of the key in use');
    await fingerprint.waitFor();
    const before = await fingerprint.inputValue();
    await section.getByRole('button', { name: 'Make a new key' }).click();
    const confirm = section.getByRole('group', { name: /every site will need the new fingerprint/ });
    await confirm.getByRole('button', { name: 'Yes, make a new key' }).click();
    await section.getByText(/^A new signing key is in use: /).waitFor();
    const after = await fingerprint.inputValue();
    expect(after).not.toBe(before);
    const keys = await call<{ items: { fingerprint: string; active: boolean }[] }>(
      page,
      'GET',
      '/api/v1/signing-keys',
    );
    expect(keys.body.items.map((k) => [k.fingerprint, k.active])).toEqual([
      [after, true],
      [before, false],
    ]);
    expect(await section.getByRole('list', { name: 'Retired keys' }).textContent()).toContain(before);
  });
});
