import type { ServiceCtx } from '../context.ts';
import { loadSite } from '../sites/scope.ts';
import { composeImagesOf, composeSiteOf, validateComposeTemplate } from './compose.ts';
import { loadRelease } from './view.ts';
import type { PublishCheck } from './write.ts';

/** The site a template is checked against before any real site is chosen. */
export const SAMPLE_SITE = {
  code: 'SAMPLE-001',
  name: 'Sample Health Centre',
  region: 'Sample Region',
  district: 'Sample District',
  facilityType: 'health_centre',
  timezone: 'Africa/Nairobi',
};

/** Publishing needs a template that renders, passes the compose-spec schema and pins every image. */
export const composeCheck: PublishCheck = (l) => {
  const r = validateComposeTemplate({
    template: l.release.composeTemplate ?? '',
    images: composeImagesOf(l.images),
    sampleSite: SAMPLE_SITE,
    version: l.release.version,
  });
  return r.ok
    ? []
    : r.errors.map((e) => ({
        path: 'composeTemplate',
        line: e.line,
        message: `Line ${e.line}: ${e.message}`,
      }));
};

export async function composePreview({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { releaseId: string; siteId?: string };
}) {
  const l = await loadRelease(ctx, input.releaseId);
  const site = input.siteId ? (await loadSite(ctx, input.siteId)).site : null;
  const fields = site ? composeSiteOf(site) : SAMPLE_SITE;
  if (!l.release.composeTemplate) {
    return {
      ok: false,
      rendered: null,
      site: { id: site?.id ?? null, code: fields.code },
      errors: [{ line: 1, message: 'This release has no compose template yet.' }],
      warnings: [],
    };
  }
  const r = validateComposeTemplate({
    template: l.release.composeTemplate,
    images: composeImagesOf(l.images),
    sampleSite: fields,
    version: l.release.version,
  });
  return r.ok
    ? {
        ok: true,
        rendered: r.rendered,
        site: { id: site?.id ?? null, code: fields.code },
        errors: [],
        warnings: r.warnings ?? [],
      }
    : {
        ok: false,
        rendered: null,
        site: { id: site?.id ?? null, code: fields.code },
        errors: r.errors,
        warnings: [],
      };
}
