import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { fillTemplate, pinnedReference, type ComposeImage } from './placeholders.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const images: ComposeImage[] = [
  { name: 'backend', registry: 'registry.example.org', repository: 'emr/backend', digest },
];
const values = {
  images,
  site: { code: 'KE-1', name: 'St. Mary\'s: "Olympic" #1 $HOME' },
  version: '1.4.0',
};

describe('fillTemplate', () => {
  it('should fill image, site and release placeholders inside values, quoting what needs it', () => {
    const template = [
      '# image {{ image.backend }} stays as written in a comment',
      'services:',
      '  app:',
      '    image: {{ image.backend }}',
      '    environment:',
      '      SITE: {{ site.name }}',
      '      CODE: "{{ site.code }}-{{ release.version }}"',
      '      REGION: {{ site.region }}',
      '      PASSWORD: ${DB_PASSWORD}',
      '    healthcheck:',
      '      test: docker inspect -f "{{.State.Health}}" app',
      '',
    ].join('\n');
    const filled = fillTemplate(template, values);
    expect(filled.errors).toEqual([]);
    const rendered = filled.render();
    expect(rendered).toContain('# image {{ image.backend }} stays as written in a comment');
    const app = (parse(rendered) as { services: { app: Record<string, unknown> } }).services.app;
    expect(app.image).toBe(`registry.example.org/emr/backend@${digest}`);
    // A site's `$` is doubled so compose does not interpolate it; the template's own `${…}` is not.
    expect(app.environment).toEqual({
      SITE: 'St. Mary\'s: "Olympic" #1 $$HOME',
      CODE: 'KE-1-1.4.0',
      REGION: '',
      PASSWORD: '${DB_PASSWORD}',
    });
    expect(app.healthcheck).toEqual({ test: 'docker inspect -f "{{.State.Health}}" app' });
    expect([...filled.used].map((p) => p.kind).sort()).toEqual(['image', 'release', 'site', 'site', 'site']);
  });

  it('should report each wrong placeholder at its line and column', () => {
    const template = [
      'services:',
      '  app:',
      '    image: {{ image.frontend }}',
      '    labels:',
      '      a: {{ site.owner }}',
      '      b: {{ release.id }}',
      '      c: {{ site.name',
      '',
    ].join('\n');
    const { errors } = fillTemplate(template, values);
    expect(errors).toEqual([
      {
        line: 3,
        column: 12,
        message: 'No image named "frontend" in this release (its images: backend).',
      },
      {
        line: 5,
        column: 10,
        message:
          'Unknown site field "owner"; use one of: code, name, region, district, facilityType, timezone.',
      },
      {
        line: 6,
        column: 10,
        message:
          'Malformed placeholder {{ release.id }}: write {{ image.<name> }}, {{ site.<field> }} or {{ release.version }}.',
      },
      { line: 7, column: 10, message: 'This placeholder is not closed: end it with }} on the same line.' },
    ]);
  });

  it('should report YAML that does not parse at its line in the template, placeholders and all', () => {
    const filled = fillTemplate('services:\n  app:\n    image: {{ image.backend }}\n   bad: [\n', values);
    expect(filled.doc).toBeNull();
    expect(filled.errors.length).toBeGreaterThan(0);
    expect(filled.errors[0]!.message).toMatch(/^YAML syntax: /);
    expect(filled.errors[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('should leave a template without placeholders as the same document', () => {
    const template = 'services:\n  app:\n    image: nginx@' + digest + '\n';
    const filled = fillTemplate(template, values);
    expect(filled.placeholders).toEqual([]);
    expect(filled.render()).toBe(template);
  });
});

describe('pinnedReference', () => {
  it('should write Docker Hub out in full', () => {
    expect(pinnedReference({ registry: 'index.docker.io', repository: 'nginx', digest })).toBe(
      `docker.io/library/nginx@${digest}`,
    );
    expect(pinnedReference({ registry: 'registry-1.docker.io', repository: 'bitnami/redis', digest })).toBe(
      `docker.io/bitnami/redis@${digest}`,
    );
    expect(pinnedReference(images[0]!)).toBe(`registry.example.org/emr/backend@${digest}`);
  });
});
