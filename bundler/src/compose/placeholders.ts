import { parseDocument, visit, type Document, type Scalar } from 'yaml';

/**
 * The placeholder language of compose templates: a docker-compose.yml with placeholders that each
 * site's bundle fills in. One definition for the API (release templates) and the CLI (spec files).
 *
 *   {{ image.<name> }}   a release image, pinned: registry/repository@sha256:…
 *   {{ site.<field> }}   code, name, region, district, facilityType, timezone
 *   {{ release.version }}
 *
 * A placeholder is a piece of text inside a YAML scalar (never YAML structure): the template is
 * parsed with each placeholder replaced by an inert token, and the tokens in the parsed strings are
 * then replaced by their values, so a site name such as `St. Mary's: #1` cannot change the file's
 * structure — the YAML library writes every value with the quoting it needs. `${VAR}` (compose's
 * own interpolation) is left as it is, and a site's own `$` is doubled so that it reaches the
 * container as written. `{{` followed by something that is not a name (as in a Go template,
 * `{{.State.Health}}`) is plain text. A placeholder in a comment is left as written.
 */

export const SITE_FIELDS = ['code', 'name', 'region', 'district', 'facilityType', 'timezone'] as const;
export type ComposeSiteField = (typeof SITE_FIELDS)[number];
/** A site's values; a missing or null field renders as an empty string. */
export type ComposeSite = Partial<Record<ComposeSiteField, string | null>>;

export interface ComposeImage {
  name: string;
  registry: string;
  repository: string;
  /** `sha256:<hex>` */
  digest: string;
}

/** What the placeholders stand for. */
export interface PlaceholderValues {
  images: ComposeImage[];
  site: ComposeSite;
  version: string;
}

/**
 * `registry/repository@digest`, with Docker Hub written out in full (`docker.io/library/nginx@…`).
 *
 * @example
 * pinnedReference({ name: 'web', registry: 'index.docker.io', repository: 'nginx', digest }); // 'docker.io/library/nginx@sha256:…'
 */
export function pinnedReference(i: Pick<ComposeImage, 'registry' | 'repository' | 'digest'>): string {
  let registry = i.registry;
  let repository = i.repository;
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  return `${registry}/${repository}@${i.digest}`;
}

/** One placeholder as written in the template. */
export interface Placeholder {
  /** Offset of `{{` in the template, and the length up to and including `}}`. */
  start: number;
  length: number;
  raw: string;
  token: string;
  value: string;
  kind: 'image' | 'site' | 'release' | 'invalid';
  /** The image it names (kind image). */
  image?: string;
  error?: string;
}

/** A problem in the template, where it is (1-based). */
export interface PlaceholderIssue {
  line: number;
  column: number;
  message: string;
}

/** A template parsed with its placeholders filled in. */
export interface FilledTemplate {
  /** Every placeholder found, in order. */
  placeholders: Placeholder[];
  /** The parsed document, placeholders filled; null when the YAML does not parse. */
  doc: Document | null;
  /**
   * YAML syntax errors (then every placeholder's problem too), or else the problems of the
   * placeholders that stand in the document (not in comments).
   */
  errors: PlaceholderIssue[];
  /** The placeholders that stand in the document (kind image: the images used). */
  used: Set<Placeholder>;
  /** Scalars holding a placeholder already reported: their values need no further complaint. */
  tainted: Set<unknown>;
  /** Offset in the parsed text → offset in the template. */
  toTemplate: (offset: number) => number;
  /** Line and column (1-based) of an offset in the template. */
  at: (offset: number) => { line: number; column: number };
  /** The filled document as text (long lines kept whole), placeholders in comments as written. */
  render: () => string;
}

/**
 * Parses a compose template and fills its placeholders.
 *
 * @example
 * const filled = fillTemplate(template, { images, site: { code: 'KE-1', name: 'Kibera' }, version: '1.4.0' });
 * if (filled.errors.length) throw new Error(`line ${filled.errors[0].line}: ${filled.errors[0].message}`);
 * const compose = filled.render();
 */
export function fillTemplate(template: string, values: PlaceholderValues): FilledTemplate {
  const where = lineIndex(template);
  const at = (offset: number) => where(Math.max(0, Math.min(offset, template.length)));
  const images = new Map(values.images.map((i) => [i.name, i]));
  let tokenBase = '__outpost_ph_';
  while (template.includes(tokenBase)) tokenBase = `_${tokenBase}`;
  const found = findPlaceholders(template, images, values.site, values.version, tokenBase);

  // The template with each placeholder replaced by its token; offsets map back for every message.
  let substituted = '';
  let last = 0;
  const segments: { t: number; tl: number; s: number; sl: number }[] = [];
  for (const p of found) {
    substituted += template.slice(last, p.start);
    segments.push({ t: p.start, tl: p.length, s: substituted.length, sl: p.token.length });
    substituted += p.token;
    last = p.start + p.length;
  }
  substituted += template.slice(last);
  const toTemplate = (offset: number) => {
    let seg: (typeof segments)[number] | undefined;
    for (const s of segments) {
      if (s.s <= offset) seg = s;
      else break;
    }
    if (!seg) return offset;
    return offset < seg.s + seg.sl ? seg.t : seg.t + seg.tl + (offset - seg.s - seg.sl);
  };

  const used = new Set<Placeholder>();
  const tainted = new Set<unknown>();
  const errors: PlaceholderIssue[] = [];
  const byToken = new Map(found.map((p) => [p.token, p]));
  const tokenRe = new RegExp(`${tokenBase}\\d+__`, 'g');
  const base = { placeholders: found, used, tainted, toTemplate, at };

  const doc = parseDocument(substituted, { merge: true, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    for (const e of doc.errors)
      errors.push({ ...at(toTemplate(e.pos[0])), message: `YAML syntax: ${e.message.split('\n')[0]}` });
    for (const p of found) if (p.error) errors.push({ ...at(p.start), message: p.error });
    return { ...base, doc: null, errors, render: () => template };
  }

  // Fill the tokens in every scalar (keys too). Tokens left over are in comments, where nothing is checked.
  visit(doc, {
    Scalar(key, node: Scalar) {
      if (typeof node.value !== 'string' || !node.value.includes(tokenBase)) return;
      const isKey = key === 'key';
      const value = node.value.replace(tokenRe, (tok) => {
        const p = byToken.get(tok);
        if (!p) return tok;
        used.add(p);
        if (p.error) tainted.add(node);
        // Compose interpolates `$` in values; a site's own `$` must reach the container as written.
        return p.kind === 'site' && !isKey ? p.value.replace(/\$/g, '$$$$') : p.value;
      });
      node.value = value;
      if (value.includes('\n') && node.type !== 'BLOCK_LITERAL' && node.type !== 'BLOCK_FOLDED')
        node.type = 'QUOTE_DOUBLE';
    },
  });
  for (const p of found) if (p.error && used.has(p)) errors.push({ ...at(p.start), message: p.error });
  return {
    ...base,
    doc,
    errors,
    // Placeholders in comments are shown as written.
    render: () => doc.toString({ lineWidth: 0 }).replace(tokenRe, (tok) => byToken.get(tok)?.raw ?? tok),
  };
}

function lineIndex(text: string) {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset: number) => {
    let lo = 0,
      hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  };
}

const NAME_LIKE = /^[A-Za-z_][\w.-]*$/;

function findPlaceholders(
  template: string,
  images: Map<string, ComposeImage>,
  site: ComposeSite,
  version: string,
  tokenBase: string,
): Placeholder[] {
  const found: Placeholder[] = [];
  for (let at = template.indexOf('{{'); at !== -1; at = template.indexOf('{{', at + 2)) {
    const lineEnd = template.indexOf('\n', at) === -1 ? template.length : template.indexOf('\n', at);
    const close = template.indexOf('}}', at + 2);
    const inner = close !== -1 && close < lineEnd ? template.slice(at + 2, close).trim() : null;
    if (inner === null) {
      // Taken up to the end of the line, so that the YAML around it still parses and only this is reported.
      if (/^\{\{\s*(image|site|release)\b/.test(template.slice(at, lineEnd))) {
        const raw = template.slice(at, lineEnd).replace(/\s+$/, '');
        found.push({
          start: at,
          length: raw.length,
          raw,
          token: `${tokenBase}${found.length}__`,
          value: '',
          kind: 'invalid',
          error: 'This placeholder is not closed: end it with }} on the same line.',
        });
        at = at + raw.length - 2;
      }
      continue;
    }
    // Not a name at all (a Go template's `{{.Names}}`, say): plain text.
    if (!NAME_LIKE.test(inner) && !/^(image|site|release)\b/.test(inner)) continue;
    const p: Placeholder = {
      start: at,
      length: close + 2 - at,
      raw: template.slice(at, close + 2),
      token: `${tokenBase}${found.length}__`,
      value: '',
      kind: 'invalid',
    };
    let m: RegExpExecArray | null;
    if ((m = /^image\.([A-Za-z0-9][\w.-]*)$/.exec(inner))) {
      const img = images.get(m[1]!);
      if (img) {
        p.kind = 'image';
        p.image = img.name;
        p.value = pinnedReference(img);
      } else {
        p.error = `No image named "${m[1]}" in this release${images.size ? ` (its images: ${[...images.keys()].join(', ')})` : ' (it has no images yet)'}.`;
      }
    } else if ((m = /^site\.(\w+)$/.exec(inner))) {
      if ((SITE_FIELDS as readonly string[]).includes(m[1]!)) {
        p.kind = 'site';
        p.value = site[m[1] as ComposeSiteField] ?? '';
      } else {
        p.error = `Unknown site field "${m[1]}"; use one of: ${SITE_FIELDS.join(', ')}.`;
      }
    } else if (inner === 'release.version') {
      p.kind = 'release';
      p.value = version;
    } else if (/^(image|site|release)\b/.test(inner)) {
      p.error = `Malformed placeholder ${p.raw}: write {{ image.<name> }}, {{ site.<field> }} or {{ release.version }}.`;
    } else {
      p.error = `Unknown placeholder ${p.raw}: use {{ image.<name> }}, {{ site.<field> }} or {{ release.version }}.`;
    }
    found.push(p);
    at = close;
  }
  return found;
}
