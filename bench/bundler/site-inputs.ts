// What a real per-site part holds, for the parts and download benchmarks: an 8-service compose file
// pinned by digest, ~25 settings with per-site secrets, the README, and the edge scripts. The repo's
// edge-scripts/ are read as they are; the install/verify/… scripts not written yet are stood in for
// by POSIX sh of a realistic size (~6 KB each).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultReadme, type BuildSitePartOptions, type SitePartScript } from '@outpost/bundler';

const EDGE = path.join(import.meta.dirname, '../../edge-scripts');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SERVICES = ['backend', 'frontend', 'worker', 'reports', 'scheduler', 'proxy', 'db', 'cache'];

export const COMPOSE = `name: outpost
services:
${SERVICES.map(
  (name) => `  ${name}:
    image: registry.example.org/emr/${name}@sha256:${sha(name)}
    restart: unless-stopped
    env_file: .env
    environment:
      SITE_CODE: \${SITE_CODE}
      DATABASE_URL: postgres://emr:\${DB_PASSWORD}@db:5432/emr
      LOG_LEVEL: info
    volumes:
      - ${name}-data:/var/lib/${name}
    logging:
      driver: local
      options: { max-size: 10m, max-file: "3" }
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:8080/health"]
      interval: 10s
      timeout: 5s
      retries: 30
`,
).join('')}volumes:
${SERVICES.map((name) => `  ${name}-data: {}\n`).join('')}`;

function edgeScripts(): SitePartScript[] {
  const scripts: SitePartScript[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile())
        scripts.push({ path: path.relative(EDGE, file), content: fs.readFileSync(file) });
    }
  };
  if (fs.existsSync(EDGE)) walk(EDGE);
  const have = new Set(scripts.map((s) => s.path));
  for (const name of ['install', 'verify', 'backup', 'rollback', 'self-check', 'report']) {
    if (have.has(name)) continue;
    const body = Array.from(
      { length: 40 },
      (_, i) =>
        `step_${i}() {\n  echo "Step ${i}: ${name} — checking the next part of the system"\n  [ -d "$BUNDLE_DIR" ] || fail "the bundle folder is missing"\n}\n`,
    ).join('');
    scripts.push({
      path: name,
      content: `#!/bin/sh\nset -eu\n. "$(dirname "$0")/lib/receipt-code.sh"\n${body}`,
    });
  }
  return scripts;
}

export const SCRIPTS = edgeScripts();

/** The options of one site's part; `i` makes the site (and its secrets) distinct. */
export function siteOptions(
  i: number,
  shared: { images: { sha256: string; size: number }; content: { sha256: string; size: number } },
  key: { privateKeyPem: string; fingerprint: string },
): BuildSitePartOptions {
  const code = `KE-${String(i).padStart(5, '0')}`;
  const name = `Clinic ${i} Health Centre`;
  const env: Record<string, string> = {
    SITE_CODE: code,
    SITE_NAME: name,
    SITE_ID: `site_${i}`,
    REGION: 'Nyanza',
    DISTRICT: 'Kisumu',
    TZ: 'Africa/Nairobi',
    DB_PASSWORD: randomBytes(18).toString('base64url'),
    APP_SECRET: randomBytes(32).toString('hex'),
    REPORT_TOKEN: randomBytes(24).toString('base64url'),
    BACKUP_KEY: randomBytes(32).toString('hex'),
    SMTP_HOST: 'smtp.example.org',
    SMTP_PORT: '587',
    SMTP_USER: `clinic-${i}`,
    SMTP_PASSWORD: randomBytes(12).toString('base64url'),
    FACILITY_TYPE: 'health_centre',
    MFL_CODE: String(10_000 + i),
    CHECKIN_URL: 'https://outpost.example.org/api/v1/checkin',
    DEVICE_TOKEN: randomBytes(32).toString('base64url'),
    MAINTENANCE_WINDOW: 'daily 22:00-04:00',
    LANGUAGE: 'en',
    CURRENCY: 'KES',
    PRINTER: 'thermal-80mm',
    BACKUP_KEEP_DAYS: '14',
    LOG_LEVEL: 'info',
    FEATURE_FLAGS: 'lab,pharmacy,referrals',
  };
  return {
    site: { id: `site_${i}`, code, name },
    release: { id: 'rel_24', version: '2.4.0' },
    fromRelease: { id: 'rel_23', version: '2.3.1' },
    createdAt: new Date('2026-11-21T10:00:00Z'),
    expiresAt: new Date('2027-02-19T10:00:00Z'),
    compose: COMPOSE,
    env,
    contentPackage: { fileName: 'emr-content-2.4.0.zip', ...shared.content },
    imagesArchive: { ...shared.images, delta: false },
    scripts: SCRIPTS,
    readme: defaultReadme({
      siteName: name,
      version: '2.4.0',
      sizeBytes: shared.images.size + shared.content.size,
      estimatedMinutes: 20,
    }),
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
  };
}
