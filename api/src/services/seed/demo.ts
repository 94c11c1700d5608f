import { and, asc, count, eq } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { organizations, releases, sites } from '../../db/schema/index.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { ServiceCtx } from '../context.ts';
import { composeCheck } from '../releases/compose-release.ts';
import type { ImageResolver } from '../releases/resolver.ts';
import { addReleaseImage, createRelease, publishRelease } from '../releases/write.ts';
import { seedFleet } from './fleet.ts';

/** OUTPOST_DEMO=1: fills the first organisation with a demo fleet, unless it already has sites. */
export async function seedDemoOnce(db: Db, size: number) {
  const [org] = await db.select().from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
  if (!org) return null;
  const [{ n } = { n: 0 }] = await db.select({ n: count() }).from(sites).where(eq(sites.orgId, org.id));
  if (n > 0) return null;
  const started = Date.now();
  const r = await seedFleet(db, { orgId: org.id, sites: size, reportsPerSite: 4 });
  return { organization: org.name, ...r, seconds: Math.round((Date.now() - started) / 100) / 10 };
}

/** The demo's bundlable release: its images live in the demo registry (`startDemoRegistry`). */
export const DEMO_RELEASE_VERSION = '2.4.0';

/** The demo release's compose template: the two demo images, pinned by digest when rendered. */
export const DEMO_COMPOSE_TEMPLATE = `services:
  backend:
    image: {{ image.backend }}
    environment:
      SITE_CODE: {{ site.code }}
      SITE_NAME: {{ site.name }}
  frontend:
    image: {{ image.frontend }}
    ports:
      - "80:80"
`;

/**
 * OUTPOST_DEMO=1: publishes release 2.4.0 in the first organisation, its images resolved (pinned by
 * digest) in the demo registry at `registryHost`, unless that organisation already has 2.4.0.
 * Goes through the same service verbs as the API, so the release is audited and checked like any other.
 */
export async function seedDemoRelease(
  db: Db,
  deps: { box: SecretBox; resolver: ImageResolver; registryHost: string },
) {
  const [org] = await db.select().from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
  if (!org) return null;
  const [have] = await db
    .select({ id: releases.id })
    .from(releases)
    .where(and(eq(releases.orgId, org.id), eq(releases.version, DEMO_RELEASE_VERSION)))
    .limit(1);
  if (have) return null;
  const ctx: ServiceCtx = { db, orgId: org.id, actor: { userId: null, tokenId: null, role: 'owner' } };
  const draft = await createRelease({
    ctx,
    input: {
      version: DEMO_RELEASE_VERSION,
      channel: 'stable',
      composeTemplate: DEMO_COMPOSE_TEMPLATE,
      notes:
        'Demo release: two small images served by the demo registry on this machine, so its bundles build without network.',
    },
  });
  const images = { backend: 'demo/emr-backend:1.0', frontend: 'demo/emr-frontend:1.0' };
  for (const [name, repoTag] of Object.entries(images)) {
    await addReleaseImage({
      ctx,
      box: deps.box,
      resolver: deps.resolver,
      input: { releaseId: draft.id, name, reference: `${deps.registryHost}/${repoTag}` },
    });
  }
  const published = await publishRelease({ ctx, input: { releaseId: draft.id }, check: composeCheck });
  return { releaseId: published.id, version: DEMO_RELEASE_VERSION };
}
