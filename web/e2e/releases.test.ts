// Releases end to end, against a real Docker registry (Debian docker-registry on loopback) with
// images pushed by skopeo: a release made from two image references, a content package uploaded
// as a real zip, a compose template previewed with pinned digests, publishing (refused, then
// done), and a second release whose diff and delta size come from the real layers.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { zipOf } from '@outpost/api/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import {
  freePort,
  buildTestImage,
  pushImage,
  startRegistry,
  type TestImage,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { signIn, snapshot, startOutpost, type Outpost } from './harness';

const ADMIN = { email: 'release-admin@example.org', password: 'release-password-1' };

let outpost: Outpost;
let registry: TestRegistry;
let work: string;
const img: Record<'backend10' | 'backend11' | 'frontend', TestImage> = {} as never;

beforeAll(async () => {
  // The server starts beside the registry: its address is chosen first, to be allow-listed as production would.
  const registryPort = await freePort();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-e2e-releases-'));
  const base = { files: { 'etc/os-release': 'NAME=outpost-test\n' } };
  const images = async () => {
    registry = await startRegistry({ port: registryPort });
    [img.backend10, img.frontend] = await Promise.all([
      buildTestImage({
        dir: path.join(work, 'backend'),
        tag: '1.0',
        layers: [base, { files: { 'app/backend.txt': 'backend 1.0\n' } }],
      }),
      buildTestImage({
        dir: path.join(work, 'frontend'),
        tag: '1.0',
        layers: [base, { files: { 'www/index.html': '<h1>EMR</h1>\n' } }],
      }),
    ]);
    // Same layout directory as 1.0, another tag: the base layer is shared, the app layer changed.
    img.backend11 = await buildTestImage({
      dir: path.join(work, 'backend'),
      tag: '1.1',
      layers: [base, { files: { 'app/backend.txt': 'backend 1.1 with a fix\n' } }],
    });
    await Promise.all([
      pushImage(img.backend10.dir, '1.0', `${registry.host}/emr/backend:1.0`),
      pushImage(img.backend11.dir, '1.1', `${registry.host}/emr/backend:1.1`),
      pushImage(img.frontend.dir, '1.0', `${registry.host}/emr/frontend:1.0`),
    ]);
  };
  const started = await Promise.allSettled([
    startOutpost(ADMIN, undefined, { OUTPOST_REGISTRY_ALLOW_INSECURE: `127.0.0.1:${registryPort}` }),
    images(),
  ]);
  if (started[0].status === 'fulfilled') outpost = started[0].value;
  for (const s of started) if (s.status === 'rejected') throw s.reason;
}, 90_000);

afterAll(async () => {
  await Promise.all([outpost?.stop(), registry?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 30_000);

/** A real zip, made the way a content team's tool would (deflate level 6). */
const makeZip = (files: Record<string, string>) => zipOf(files, { level: 6 });

const template = (backend = '{{ image.backend }}') =>
  [
    'services:',
    '  backend:',
    `    image: ${backend}`,
    '    environment:',
    '      SITE_CODE: {{ site.code }}',
    '      DB_PASSWORD: ${DB_PASSWORD}',
    '  frontend:',
    '    image: {{ image.frontend }}',
    '    ports:',
    '      - "80:80"',
    '',
  ].join('\n');

/** "612 bytes", "1.2 KB" → bytes (roughly: enough to compare two sizes on the page). */
function parseBytes(text: string): number {
  const m = /([\d.]+)\s*(bytes|KB|MB|GB)/.exec(text);
  if (!m) throw new Error(`not a size: ${text}`);
  return Number(m[1]) * 1024 ** ['bytes', 'KB', 'MB', 'GB'].indexOf(m[2]!);
}

async function createDraft(page: Page, version: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Releases' }).click();
  await page.getByRole('button', { name: 'New release' }).click();
  const form = page.getByRole('form', { name: 'New release' });
  await form.getByLabel('Version').fill(version);
  await form.getByLabel('Release notes (optional)').fill(`Release ${version}.\nForms for antenatal care.`);
  await form.getByRole('button', { name: 'Create draft' }).click();
  await page.getByRole('heading', { name: `Release ${version}`, level: 1 }).waitFor();
}

async function addImage(page: Page, name: string, reference: string) {
  const form = page.getByRole('form', { name: 'Add an image' });
  await form.getByLabel('Image reference').fill(reference);
  await form.getByLabel('Name in the template').fill(name);
  await form.getByRole('button', { name: 'Add image' }).click();
}

async function saveTemplate(page: Page, text: string) {
  const section = page.getByRole('region', { name: 'Compose template' });
  await section.getByLabel('Template', { exact: true }).fill(text);
  await section.getByRole('button', { name: 'Save template' }).click();
  await section.getByText('Unsaved changes', { exact: true }).waitFor({ state: 'detached' });
}

describe('releases', () => {
  let context: BrowserContext;
  let page: Page;
  let firstUrl: string;
  let secondUrl: string;
  let zip: Buffer;

  beforeAll(async () => {
    context = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 1280, height: 900 },
    });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    zip = await makeZip({
      'forms/anc.json': '{"form":"ANC"}\n',
      'concepts/weight.csv': 'uuid,name\n1,Weight\n',
    });
  });

  afterAll(async () => {
    await context?.close();
  });

  it('should create release 1.0.0 as a draft', async () => {
    await page.goto('/releases');
    await signIn(page, ADMIN);
    await page.getByRole('heading', { name: 'No releases yet' }).waitFor();
    await createDraft(page, '1.0.0');
    firstUrl = page.url();
    expect(await page.locator('.title .badge').textContent()).toBe('Draft');
    expect(await page.getByText('Release 1.0.0.').textContent()).toContain('Forms for antenatal care.');
  });

  it("should show the registry's plain message next to a reference it does not have", async () => {
    await addImage(page, 'backend', `${registry.host}/emr/backend:9.9`);
    const form = page.getByRole('form', { name: 'Add an image' });
    const error = form.locator('.field-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/9\.9/);
    expect(await form.getByLabel('Image reference').getAttribute('aria-invalid')).toBe('true');
  });

  it('should add two images by reference, pinned by digest, with their sizes and the download size', async () => {
    await addImage(page, 'backend', `${registry.host}/emr/backend:1.0`);
    const images = page.getByRole('region', { name: 'Images' });
    await images.locator('tbody tr').first().waitFor();
    await addImage(page, 'frontend', `${registry.host}/emr/frontend:1.0`);
    await images.locator('tbody tr').nth(1).waitFor();

    const rows = images.locator('tbody tr');
    expect(await rows.locator('td[data-label="Name"]').allTextContents()).toEqual(['backend', 'frontend']);
    expect(await rows.first().locator('td[data-label="Pinned digest"] code').textContent()).toBe(
      `${img.backend10.digest.slice('sha256:'.length, 'sha256:'.length + 12)}…`,
    );
    expect(await rows.first().locator('td[data-label="Platform"]').textContent()).toBe('linux/amd64');
    for (const size of await rows.locator('td[data-label="Size"]').allTextContents())
      expect(size).toMatch(/\d+(\.\d)? (bytes|KB)/);
    expect(await images.getByText('Download size:').textContent()).toMatch(
      /Download size: [\d.]+ (bytes|KB)/,
    );
    // Nothing published before it: the whole release is new.
    await page
      .getByRole('region', { name: 'What changed' })
      .getByText('There is no earlier published release')
      .waitFor();
  });

  it('should upload a content package with a progress bar and attach it to the draft', async () => {
    const section = page.getByRole('region', { name: 'Content package' });
    await section
      .getByLabel('Zip file')
      .setInputFiles({ name: 'emr-forms-1.0.0.zip', mimeType: 'application/zip', buffer: zip });
    expect(await section.getByLabel('Package name').inputValue()).toBe('emr-forms');
    expect(await section.getByLabel('Package version').inputValue()).toBe('1.0.0');
    await section.getByRole('button', { name: 'Upload' }).click();
    const sha256 = createHash('sha256').update(zip).digest('hex');
    await section.getByText(sha256).waitFor();
    expect(await section.locator('dl').textContent()).toContain('emr-forms 1.0.0');
    expect(await section.locator('dl').textContent()).toContain('2 entries');
    expect(await section.getByLabel('Use a package uploaded before').inputValue()).not.toBe('');
  });

  it('should save a compose template and preview it, for the sample site and a chosen one, with images pinned by digest', async () => {
    // One real site to preview for, registered through the API as a script would.
    const status = await page.evaluate(async () => {
      const me = (await (await fetch('/api/v1/me')).json()) as { csrfToken: string };
      const res = await fetch('/api/v1/sites', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
        body: JSON.stringify({ code: 'KE-001', name: 'Nairobi General' }),
      });
      return res.status;
    });
    expect(status).toBe(201);

    await saveTemplate(page, template());
    const section = page.getByRole('region', { name: 'Compose template' });
    const rendered = section.getByRole('region', { name: 'Preview' }).locator('pre.rendered');
    await section.getByText('The compose file is valid for SAMPLE-001.').waitFor();
    const text = await rendered.textContent();
    expect(text).toContain(`image: ${registry.host}/emr/backend@${img.backend10.digest}`);
    expect(text).toContain(`image: ${registry.host}/emr/frontend@${img.frontend.digest}`);
    expect(text).toContain('SITE_CODE: SAMPLE-001');
    expect(text).toContain('${DB_PASSWORD}');

    await section.getByLabel('Preview for another site').fill('KE-0');
    await section.getByRole('button', { name: 'KE-001 Nairobi General' }).click();
    await section.getByText('The compose file is valid for KE-001.').waitFor();
    expect(await rendered.textContent()).toContain('SITE_CODE: KE-001');
    await snapshot(page, 'release-draft');
  });

  it('should refuse to publish a template with an unpinned image, pointing at its line', async () => {
    await saveTemplate(page, template('nginx:latest'));
    const section = page.getByRole('region', { name: 'Compose template' });
    // The preview already says so, with the line…
    await section.getByRole('button', { name: 'Line 3' }).waitFor();

    // …and so does publishing.
    await page.getByRole('button', { name: 'Publish 1.0.0' }).click();
    await page.getByRole('button', { name: 'Yes, publish' }).click();
    const problems = page.getByRole('alert').filter({ hasText: '1.0.0 cannot be published yet.' });
    await problems.waitFor();
    const problem = problems.getByRole('button', { name: /^Line 3:.*nginx:latest.*not pinned/ });
    await problem.waitFor();
    await snapshot(page, 'release-not-publishable');

    // Following the problem puts the cursor on that line of the template.
    await problem.click();
    const editor = section.getByLabel('Template', { exact: true });
    const selected = await editor.evaluate((el: HTMLTextAreaElement) => [
      document.activeElement === el,
      el.value.slice(el.selectionStart, el.selectionEnd),
    ]);
    expect(selected).toEqual([true, '    image: nginx:latest']);
    expect(await page.locator('.title .badge').textContent()).toBe('Draft');
  });

  it('should publish once the template is right, and then show everything read-only', async () => {
    await saveTemplate(page, template());
    await page.getByRole('button', { name: 'Publish 1.0.0' }).click();
    await page.getByRole('button', { name: 'Yes, publish' }).click();
    await page.getByText('Published releases never change.').waitFor();
    expect(await page.locator('.title .badge').textContent()).toBe('Published');
    expect(await page.getByRole('form', { name: 'Add an image' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^Remove image/ }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save template' }).count()).toBe(0);
    expect(await page.getByLabel('Template', { exact: true }).getAttribute('readonly')).not.toBeNull();
    expect(await page.getByRole('form', { name: 'Upload a new content package' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Deprecate' }).waitFor();
  });

  it('should show what changed in 1.1.0 (backend) and a delta download smaller than the full one', async () => {
    await createDraft(page, '1.1.0');
    secondUrl = page.url();
    await addImage(page, 'backend', `${registry.host}/emr/backend:1.1`);
    const images = page.getByRole('region', { name: 'Images' });
    await images.locator('tbody tr').first().waitFor();
    await addImage(page, 'frontend', `${registry.host}/emr/frontend:1.0`);
    await images.locator('tbody tr').nth(1).waitFor();

    const diff = page.getByRole('region', { name: 'What changed since 1.0.0' });
    const changed = diff.getByRole('list', { name: 'Changed images' });
    await changed.waitFor();
    expect(await changed.locator('li code.name').allTextContents()).toEqual(['backend']);
    expect(await changed.textContent()).toContain(
      `${registry.host}/emr/backend:1.0 → ${registry.host}/emr/backend:1.1`,
    );
    expect(await diff.getByRole('list', { name: 'Added images' }).count()).toBe(0);
    const delta = parseBytes((await diff.locator('.delta').textContent())!);
    const full = parseBytes((await diff.locator('.full').textContent())!);
    expect(delta).toBeGreaterThan(0);
    expect(delta).toBeLessThan(full);
    expect(await diff.textContent()).toMatch(/1 new layer\b/); // the changed app layer; the new config is not a layer
    await snapshot(page, 'release-diff');
  });

  it('should list both releases, newest first, and count versions behind once 1.1.0 is published', async () => {
    await saveTemplate(page, template());
    await page.getByRole('button', { name: 'Publish 1.1.0' }).click();
    await page.getByRole('button', { name: 'Yes, publish' }).click();
    await page.getByText('Published releases never change.').waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Releases' }).click();
    const rows = page.locator('table.releases tbody tr');
    await rows.nth(1).waitFor();
    expect(await rows.locator('td[data-label="Version"]').allTextContents()).toEqual(['1.1.0', '1.0.0']);
    expect(await rows.locator('td[data-label="Newer versions"]').allTextContents()).toEqual([
      'Latest',
      '1 version behind',
    ]);
    expect(await rows.first().locator('td[data-label="State"]').textContent()).toContain('Published');
    await snapshot(page, 'releases-list');
  });

  it('should keep revoked releases with their reason', async () => {
    await page.goto(firstUrl);
    await page.getByRole('button', { name: 'Revoke…' }).click();
    await page.getByLabel('Why is 1.0.0 revoked?').fill('The ANC form loses data on save.');
    await page.getByRole('button', { name: 'Revoke 1.0.0' }).click();
    await page.getByText('1.0.0 is revoked: The ANC form loses data on save.').waitFor();
    expect(await page.locator('.title .badge').textContent()).toBe('Revoked');
    await page.goto('/releases?state=revoked');
    const rows = page.locator('table.releases tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(1);
    expect(await rows.first().locator('td[data-label="State"]').textContent()).toContain(
      'The ANC form loses data on save.',
    );
  });

  it('should save registry credentials in Settings without ever showing the password again', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const section = page.getByRole('region', { name: 'Registry credentials' });
    await section.getByText('No registry credentials.').waitFor();
    await section.getByLabel('Registry', { exact: true }).fill('registry.example.org');
    await section.getByLabel('User name', { exact: true }).fill('ministry');
    await section.getByLabel('Password', { exact: true }).fill('registry-secret-1');
    await section.getByRole('button', { name: 'Save credentials' }).click();
    await section.getByRole('cell', { name: 'registry.example.org', exact: true }).waitFor();
    expect(await section.getByLabel('Password', { exact: true }).inputValue()).toBe('');
    await section.getByRole('button', { name: 'Replace the credentials for registry.example.org' }).click();
    expect(await section.getByLabel('User name', { exact: true }).inputValue()).toBe('ministry');
    expect(await section.getByLabel('Password', { exact: true }).inputValue()).toBe('');
    expect(await page.content()).not.toContain('registry-secret-1');
  });

  it('should fit a release page on a 375px phone screen without horizontal scrolling', async () => {
    const phone = await outpost.browser.newContext({
      baseURL: outpost.baseUrl,
      viewport: { width: 375, height: 740 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      const p = await phone.newPage();
      p.setDefaultTimeout(10_000);
      await p.goto(secondUrl);
      await signIn(p, ADMIN);
      await p.getByRole('heading', { name: 'Release 1.1.0', level: 1 }).waitFor();
      await p.getByText('The compose file is valid for SAMPLE-001.').waitFor();
      await p.getByRole('list', { name: 'Changed images' }).waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'release-phone');
      await p.goto('/releases');
      await p.locator('table.releases tbody tr').first().waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

      // A draft has every form open: adding images, uploading a package, the template editor.
      await p.getByRole('button', { name: 'New release' }).click();
      await p.getByRole('form', { name: 'New release' }).getByLabel('Version').fill('1.2.0-rc.1');
      await p.getByRole('button', { name: 'Create draft' }).click();
      await p.getByRole('form', { name: 'Add an image' }).waitFor();
      await p.getByText('Nothing to render yet').waitFor();
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await snapshot(p, 'release-draft-phone');
    } finally {
      await phone.close();
    }
  });
});
