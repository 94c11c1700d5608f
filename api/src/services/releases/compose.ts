import type { ErrorObject, ValidateFunction } from 'ajv';
// Precompiled (api/scripts/compose-validator.ts): Workers forbid the `new Function` Ajv compiles with.
import validateComposeSpec from './compose-validate.generated.js';
import { fillTemplate, type ComposeImage, type ComposeSite } from '@outpost/bundler';
import {
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node,
} from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../../lib/errors.ts';
// The compose-spec JSON schema, vendored unchanged from the npm package `dclint` 3.1.0
// (node_modules/dclint/schemas/compose.schema.json, MIT), which tracks compose-spec/compose-spec
// schema/compose-spec.json. To update: install a newer dclint and copy the file over.

/**
 * Compose templates: a docker-compose.yml with placeholders that each site's bundle fills in. The
 * placeholder language is the bundler's (`fillTemplate`, bundler/src/compose/placeholders.ts), which
 * the CLI shares; what is checked here beyond it is the API's: the compose specification, every
 * service's image pinned, and the `x-outpost` section.
 */

export type { ComposeImage, ComposeSite } from '@outpost/bundler';

/** A site's row as a template sees it: the optional fields empty rather than missing. */
export function composeSiteOf(site: {
  code: string;
  name: string;
  region: string | null;
  district: string | null;
  facilityType: string | null;
  timezone: string;
}) {
  return {
    code: site.code,
    name: site.name,
    region: site.region ?? '',
    district: site.district ?? '',
    facilityType: site.facilityType ?? '',
    timezone: site.timezone,
  };
}

/** A release's images as a template names them: by name, pinned by digest. */
export const composeImagesOf = (images: ComposeImage[]): ComposeImage[] =>
  images.map((i) => ({ name: i.name, registry: i.registry, repository: i.repository, digest: i.digest }));

export interface ComposeIssue {
  /** 1-based line in the template. */
  line: number;
  /** 1-based column in the template. */
  column?: number;
  /** Where in the compose document, dotted: `services.backend.ports`. */
  path?: string;
  message: string;
}

export interface ComposeWarning {
  message: string;
  line?: number;
  /** The release image the warning is about. */
  image?: string;
}

export type ComposeValidation =
  | { ok: true; rendered: string; warnings: ComposeWarning[] }
  | { ok: false; errors: ComposeIssue[]; warnings: ComposeWarning[] };

export interface ValidateComposeInput {
  template: string;
  images: ComposeImage[];
  sampleSite: ComposeSite;
  version: string;
}

export interface RenderComposeInput {
  template: string;
  images: ComposeImage[];
  site: ComposeSite;
  version: string;
}

const PINNED = /@sha256:[0-9a-f]{64}$/;

/**
 * The compose file's `x-outpost` section: what the site installer needs to know about the release
 * beyond compose itself (docs/site-install.md). Compose ignores `x-` keys; the bundle carries the
 * section again as `compose/outpost.conf`, in a form sh reads.
 *
 *   x-outpost:
 *     wait-seconds: 300                      # how long start-up and migrations may take
 *     health-urls: [http://127.0.0.1:8080/health]
 *     services:
 *       db:
 *         backup: pg_dump -U app app         # run in the service's container; its output is the backup
 *         restore: psql -U app app           # run there with the backup as its input
 */
export const XOutpost = z
  .object(
    {
      'wait-seconds': z
        .number({ error: 'wait-seconds must be a whole number of seconds.' })
        .int()
        .min(5, 'wait-seconds must be at least 5.')
        .max(7200, 'wait-seconds must be at most 7200 (two hours).')
        .default(300),
      'health-urls': z
        .array(
          z
            .string()
            .max(500)
            .regex(
              /^https?:\/\/[^\s'"\\]+$/,
              'A health URL starts with http:// or https:// and has no spaces or quotes.',
            ),
        )
        .max(20)
        .default([]),
      services: z
        .record(
          z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/),
          z
            .object(
              {
                backup: z
                  .string({ error: 'Give the service a backup command (its output is the backup).' })
                  .trim()
                  .min(1, 'backup needs a command.')
                  .max(2000)
                  .refine((c) => !c.includes('\n'), 'Write the backup command on one line.'),
                restore: z
                  .string({ error: 'Give the service a restore command (it reads the backup on its input).' })
                  .trim()
                  .min(1, 'restore needs a command.')
                  .max(2000)
                  .refine((c) => !c.includes('\n'), 'Write the restore command on one line.'),
              },
              { error: 'Give each service a backup and a restore command.' },
            )
            .strict(),
        )
        .default({}),
    },
    { error: 'x-outpost must be a mapping (wait-seconds, health-urls, services).' },
  )
  .strict();
export type XOutpost = z.infer<typeof XOutpost>;

/** The `x-outpost` section of a rendered (valid) compose file, defaults filled in. */
export function outpostSection(rendered: string): XOutpost {
  const data = parseDocument(rendered, { merge: true }).toJS({ maxAliasCount: 1000 }) as Record<
    string,
    unknown
  > | null;
  return XOutpost.parse(data?.['x-outpost'] ?? {});
}

/** Checks a template against a sample site and renders it; every problem comes with its line in the template. */
export function validateComposeTemplate(input: ValidateComposeInput): ComposeValidation {
  return compile({
    template: input.template,
    images: input.images,
    site: input.sampleSite,
    version: input.version,
  });
}

/** The compose file for one site; throws a ValidationError (details: the problems, each with its line) when the template is not valid. */
export function renderCompose(input: RenderComposeInput): string {
  const r = compile(input);
  if (!r.ok) {
    throw new ValidationError(
      `The compose template has ${r.errors.length === 1 ? 'a problem' : `${r.errors.length} problems`}: line ${r.errors[0]!.line}: ${r.errors[0]!.message}`,
      r.errors.map((e) => ({
        path: 'composeTemplate',
        line: e.line,
        ...(e.column ? { column: e.column } : {}),
        ...(e.path ? { yamlPath: e.path } : {}),
        message: e.message,
      })),
    );
  }
  return r.rendered;
}

// ---------------------------------------------------------------------------------------------

function composeValidator(): ValidateFunction {
  return validateComposeSpec as unknown as ValidateFunction;
}

interface Located {
  node?: Node;
  keyNode?: Node;
}

/** The node at a path of the (parsed) document, following aliases and `<<` merges; as deep as it goes. */
function locate(doc: Document, path: string[]): Located & { depth: number } {
  let current: unknown = doc.contents;
  let keyNode: Node | undefined;
  let depth = 0;
  const deref = (n: unknown) => (isAlias(n) ? n.resolve(doc) : n);
  const lookup = (map: unknown, key: string): { key: Node; value: unknown } | undefined => {
    map = deref(map);
    if (!isMap(map)) return undefined;
    for (const pair of map.items) {
      if (isScalar(pair.key) && String(pair.key.value) === key)
        return { key: pair.key as Node, value: pair.value };
    }
    for (const pair of map.items) {
      if (isScalar(pair.key) && pair.key.value === '<<') {
        const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
        for (const s of sources) {
          const hit = lookup(s, key);
          if (hit) return hit;
        }
      }
    }
    return undefined;
  };
  for (const seg of path) {
    const c = deref(current);
    if (isMap(c)) {
      const hit = lookup(c, seg);
      if (!hit) break;
      keyNode = hit.key;
      current = hit.value;
    } else if (isSeq(c) && /^\d+$/.test(seg) && Number(seg) < c.items.length) {
      keyNode = undefined;
      current = c.items[Number(seg)];
    } else break;
    depth++;
  }
  const node = deref(current) as Node | undefined;
  return { node: (current as Node | undefined) ?? node, keyNode, depth };
}

const TYPE_WORDS: Record<string, string> = {
  array: 'a list',
  object: 'a mapping',
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  null: 'empty',
};
const dotted = (segs: string[]) =>
  segs.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
const pointer = (p: string) =>
  p === ''
    ? []
    : p
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

/** Ajv's errors, with the noise of failed `oneOf` branches folded into one message per place. */
function schemaIssues(errors: ErrorObject[]): { segs: string[]; message: string; key?: string }[] {
  const branchy = new Set(
    errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.instancePath),
  );
  let rest = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if');
  for (const p of branchy) {
    // A branch that got past the type check and failed deeper says more than the branches of other types.
    if (rest.some((e) => e.instancePath.startsWith(`${p}/`)))
      rest = rest.filter((e) => !(e.instancePath === p && e.keyword === 'type'));
  }
  const out: { segs: string[]; message: string; key?: string }[] = [];
  const types = new Map<string, Set<string>>();
  for (const e of rest) {
    const segs = pointer(e.instancePath);
    const where = dotted(segs) || 'The file';
    if (e.keyword === 'type') {
      const t = types.get(e.instancePath) ?? new Set<string>();
      for (const ty of String((e.params as { type: string | string[] }).type).split(',')) t.add(ty);
      types.set(e.instancePath, t);
    } else if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      out.push({
        segs,
        key,
        message:
          segs.length === 0
            ? `Unknown top-level key "${key}" (compose knows services, volumes, networks, configs, secrets, name; extensions start with x-).`
            : `${where}: unknown key "${key}".`,
      });
    } else if (e.keyword === 'enum') {
      out.push({
        segs,
        message: `${where} must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}.`,
      });
    } else if (e.keyword === 'required') {
      out.push({
        segs,
        message: `${where} needs "${(e.params as { missingProperty: string }).missingProperty}".`,
      });
    } else {
      out.push({ segs, message: `${where} ${e.message ?? 'is not valid'}.` });
    }
  }
  for (const [p, t] of types) {
    const segs = pointer(p);
    out.push({
      segs,
      message: `${dotted(segs) || 'The file'} must be ${[...t].map((x) => TYPE_WORDS[x] ?? x).join(' or ')}.`,
    });
  }
  const seen = new Set<string>();
  return out.filter((i) => {
    const k = `${i.segs.join('/')}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function compile(input: RenderComposeInput): ComposeValidation {
  const { template } = input;
  const errors: ComposeIssue[] = [];
  const warnings: ComposeWarning[] = [];
  const fail = () => ({
    ok: false as const,
    errors: errors.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0)),
    warnings,
  });

  if (template.trim() === '') {
    errors.push({
      line: 1,
      message: 'The compose template is empty; it needs at least a services: section.',
    });
    return fail();
  }

  const images = new Map(input.images.map((i) => [i.name, i]));
  const filled = fillTemplate(template, { images: input.images, site: input.site, version: input.version });
  const { at, toTemplate, used, tainted } = filled;
  const nodeAt = (n: Node | undefined) => (n?.range ? at(toTemplate(n.range[0])) : { line: 1, column: 1 });
  errors.push(...filled.errors);
  if (!filled.doc) return fail();
  const doc = filled.doc;

  const root = doc.contents;
  if (!isMap(root)) {
    errors.push({
      ...nodeAt(root ?? undefined),
      message: root
        ? 'The compose file must be a mapping, with a services: section.'
        : 'The compose template has no content; it needs at least a services: section.',
    });
    return fail();
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    errors.push({ line: 1, message: `YAML: ${(err as Error).message}` });
    return fail();
  }

  const services = (data as { services?: unknown }).services;
  const servicesAt = locate(doc, ['services']);
  if (
    !services ||
    typeof services !== 'object' ||
    Array.isArray(services) ||
    Object.keys(services).length === 0
  ) {
    errors.push({
      ...nodeAt(servicesAt.depth ? servicesAt.keyNode : undefined),
      path: 'services',
      message: 'Define at least one service under services:.',
    });
  } else {
    for (const [name, svc] of Object.entries(services as Record<string, unknown>)) {
      if (!svc || typeof svc !== 'object' || Array.isArray(svc)) continue; // the schema reports it
      const image = (svc as { image?: unknown }).image;
      const loc = locate(doc, ['services', name, 'image']);
      if (image === undefined) {
        const svcAt = locate(doc, ['services', name]);
        errors.push({
          ...nodeAt(svcAt.keyNode),
          path: `services.${name}`,
          message: `Service "${name}" has no image: add image: {{ image.<name> }} (a bundle cannot build images at the site).`,
        });
      } else if (
        typeof image === 'string' &&
        !PINNED.test(image) &&
        !(loc.depth === 3 && tainted.has(loc.node))
      ) {
        errors.push({
          ...nodeAt(loc.depth === 3 ? loc.node : loc.keyNode),
          path: `services.${name}.image`,
          message: `Service "${name}" uses image "${image}", which is not pinned by digest; pin it: use {{ image.<name> }}${images.size ? ` (this release has ${[...images.keys()].join(', ')})` : ''}.`,
        });
      }
    }
  }

  const validate = composeValidator();
  if (!validate(data)) {
    for (const issue of schemaIssues(validate.errors ?? [])) {
      const loc = locate(doc, issue.segs);
      let target: Node | undefined =
        loc.depth === issue.segs.length && loc.node && !isCollection(loc.node)
          ? loc.node
          : (loc.keyNode ?? loc.node);
      if (tainted.has(target)) continue;
      if (issue.key !== undefined) {
        const map =
          loc.depth === issue.segs.length
            ? isAlias(loc.node)
              ? loc.node.resolve(doc)
              : loc.node
            : undefined;
        const pair = isMap(map)
          ? map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === issue.key)
          : undefined;
        if (pair) target = pair.key as Node;
      }
      errors.push({
        ...nodeAt(target),
        path: dotted(issue.key !== undefined ? [...issue.segs, issue.key] : issue.segs) || undefined,
        message: issue.message,
      });
    }
  }

  if (data && typeof data === 'object' && 'x-outpost' in data) {
    const parsed = XOutpost.safeParse((data as Record<string, unknown>)['x-outpost']);
    const issueAt = (segs: string[], message: string) => {
      const loc = locate(doc, ['x-outpost', ...segs]);
      errors.push({
        ...nodeAt(
          loc.depth === segs.length + 1 && loc.node && !isCollection(loc.node)
            ? loc.node
            : (loc.keyNode ?? loc.node),
        ),
        path: dotted(['x-outpost', ...segs]),
        message,
      });
    };
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const segs = issue.path.map(String);
        const message =
          issue.code === 'unrecognized_keys'
            ? `x-outpost${segs.length ? `.${dotted(segs)}` : ''}: unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} (x-outpost knows wait-seconds, health-urls and services, each service backup and restore).`
            : `x-outpost.${dotted(segs)}: ${issue.message}`;
        issueAt(issue.code === 'unrecognized_keys' ? [...segs, issue.keys[0]!] : segs, message);
      }
    } else if (services && typeof services === 'object') {
      for (const name of Object.keys(parsed.data.services)) {
        if (!(name in (services as Record<string, unknown>)))
          issueAt(
            ['services', name],
            `x-outpost.services names "${name}", which is not a service of this file.`,
          );
      }
    }
  }

  const usedImages = new Set([...used].filter((p) => p.kind === 'image').map((p) => p.image!));
  for (const img of input.images) {
    if (!usedImages.has(img.name))
      warnings.push({
        image: img.name,
        message: `Image "${img.name}" is in the release but no service uses it ({{ image.${img.name} }}); it will still be shipped in every bundle.`,
      });
  }

  if (errors.length) return fail();
  return { ok: true, rendered: filled.render(), warnings };
}
