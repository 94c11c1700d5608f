import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AppError } from '../../lib/errors.ts';
import {
  outpostSection,
  renderCompose,
  validateComposeTemplate,
  type ComposeImage,
  type ComposeValidation,
} from './compose.ts';

const hex = (c: string) => c.repeat(64);
const IMAGES: ComposeImage[] = [
  {
    name: 'gateway',
    registry: '127.0.0.1:5000',
    repository: 'openmrs/openmrs-reference-application-3-gateway',
    digest: `sha256:${hex('a')}`,
  },
  {
    name: 'frontend',
    registry: '127.0.0.1:5000',
    repository: 'openmrs/openmrs-reference-application-3-frontend',
    digest: `sha256:${hex('b')}`,
  },
  { name: 'backend', registry: '127.0.0.1:5000', repository: 'emr/core', digest: `sha256:${hex('c')}` },
  { name: 'db', registry: 'docker.io', repository: 'mariadb', digest: `sha256:${hex('d')}` },
];
const SITE = {
  code: 'KE-042',
  name: 'Kisumu County Referral',
  region: 'Nyanza',
  district: 'Kisumu Central',
  facilityType: 'hospital',
  timezone: 'Africa/Nairobi',
};

const OPENMRS = `# OpenMRS 3 for {{ site.name }} — release {{ release.version }}
name: openmrs

x-healthcheck-defaults: &healthcheck-defaults
  interval: 30s
  timeout: 10s
  retries: 10

services:
  gateway:
    image: {{ image.gateway }}
    restart: unless-stopped
    depends_on:
      frontend:
        condition: service_started
      backend:
        condition: service_healthy
    ports:
      - "\${GATEWAY_PORT:-80}:80"

  frontend:
    image: "{{image.frontend}}"
    restart: unless-stopped
    environment:
      SPA_PATH: /openmrs/spa
      API_URL: /openmrs
      SPA_CONFIG_URLS: /openmrs/spa/config-{{ site.code }}.json
    healthcheck:
      <<: *healthcheck-defaults
      test: ["CMD", "curl", "-f", "http://localhost/"]
    depends_on:
      - backend

  backend:
    image: {{  image.backend  }}
    restart: unless-stopped
    depends_on:
      db:
        condition: service_healthy
    environment:
      OMRS_CONFIG_MODULE_WEB_ADMIN: "true"
      OMRS_CONFIG_AUTO_UPDATE_DATABASE: "true"
      OMRS_CONFIG_CONNECTION_SERVER: db
      OMRS_CONFIG_CONNECTION_USERNAME: \${OMRS_DB_USER:-openmrs}
      OMRS_CONFIG_CONNECTION_PASSWORD: \${OMRS_DB_PASSWORD}
      OUTPOST_SITE_CODE: {{ site.code }}
      OUTPOST_SITE_NAME: {{ site.name }}
      OUTPOST_RELEASE: {{ release.version }}
      TZ: {{ site.timezone }}
    healthcheck:
      <<: *healthcheck-defaults
      test: ["CMD", "curl", "-f", "http://localhost:8080/openmrs"]
      start_period: 120s
    volumes:
      - openmrs-data:/openmrs/data/
    labels:
      org.outpost.site: "{{ site.code }} ({{ site.region }}/{{ site.district }})"
      org.outpost.inspect: docker inspect --format '{{.State.Health.Status}}'

  db:
    image: {{ image.db }}
    restart: unless-stopped
    command: "mysqld --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci"
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
      interval: 10s
      retries: 10
    environment:
      MYSQL_DATABASE: openmrs
      MYSQL_USER: \${OMRS_DB_USER:-openmrs}
      MYSQL_PASSWORD: \${OMRS_DB_PASSWORD}
      MYSQL_ROOT_PASSWORD: \${MYSQL_ROOT_PASSWORD}
    volumes:
      - db-data:/var/lib/mysql

volumes:
  openmrs-data: ~
  db-data: ~
`;

const lineOf = (template: string, needle: string) => {
  const i = template.split('\n').findIndex((l) => l.includes(needle));
  if (i === -1) throw new Error(`no line with ${needle}`);
  return i + 1;
};

function check(template: string, images = IMAGES, site = SITE): ComposeValidation {
  return validateComposeTemplate({ template, images, sampleSite: site, version: '3.2.0' });
}

function errorsOf(r: ComposeValidation) {
  if (r.ok) throw new Error(`expected errors, got:\n${r.rendered}`);
  return r.errors;
}

describe('compose templates', () => {
  describe('happy', () => {
    it('should render and validate an OpenMRS-like template, pinning every image and leaving ${VAR} to compose', () => {
      const r = check(OPENMRS);
      if (!r.ok) throw new Error(JSON.stringify(r.errors, null, 2));
      expect(r.warnings).toEqual([]);
      const out = parse(r.rendered, { merge: true });
      expect(out.services.gateway.image).toBe(
        `127.0.0.1:5000/openmrs/openmrs-reference-application-3-gateway@sha256:${hex('a')}`,
      );
      expect(out.services.frontend.image).toBe(
        `127.0.0.1:5000/openmrs/openmrs-reference-application-3-frontend@sha256:${hex('b')}`,
      );
      expect(out.services.backend.image).toBe(`127.0.0.1:5000/emr/core@sha256:${hex('c')}`);
      expect(out.services.db.image).toBe(`docker.io/library/mariadb@sha256:${hex('d')}`);
      expect(out.services.backend.environment).toMatchObject({
        OMRS_CONFIG_CONNECTION_USERNAME: '${OMRS_DB_USER:-openmrs}',
        OMRS_CONFIG_CONNECTION_PASSWORD: '${OMRS_DB_PASSWORD}',
        OUTPOST_SITE_CODE: 'KE-042',
        OUTPOST_SITE_NAME: 'Kisumu County Referral',
        OUTPOST_RELEASE: '3.2.0',
        TZ: 'Africa/Nairobi',
        OMRS_CONFIG_MODULE_WEB_ADMIN: 'true',
      });
      expect(out.services.gateway.ports).toEqual(['${GATEWAY_PORT:-80}:80']);
      expect(out.services.frontend.environment.SPA_CONFIG_URLS).toBe('/openmrs/spa/config-KE-042.json');
      expect(out.services.backend.labels['org.outpost.site']).toBe('KE-042 (Nyanza/Kisumu Central)');
      // Not a placeholder: a Go template for docker inspect stays as written.
      expect(out.services.backend.labels['org.outpost.inspect']).toBe(
        "docker inspect --format '{{.State.Health.Status}}'",
      );
      expect(out.services.backend.healthcheck).toMatchObject({
        interval: '30s',
        retries: 10,
        start_period: '120s',
      });
      expect(out.services.gateway.depends_on.backend).toEqual({ condition: 'service_healthy' });
      // The anchors, comments and layout survive.
      expect(r.rendered).toContain('<<: *healthcheck-defaults');
      expect(r.rendered.split('\n')[0]).toBe(
        '# OpenMRS 3 for {{ site.name }} — release {{ release.version }}',
      );
    });

    it('should render a given site with renderCompose', () => {
      const out = parse(
        renderCompose({
          template: OPENMRS,
          images: IMAGES,
          site: { ...SITE, code: 'UG-7', region: null },
          version: '3.2.1',
        }),
        { merge: true },
      );
      expect(out.services.backend.environment).toMatchObject({
        OUTPOST_SITE_CODE: 'UG-7',
        OUTPOST_RELEASE: '3.2.1',
      });
      expect(out.services.backend.labels['org.outpost.site']).toBe('UG-7 (/Kisumu Central)');
    });

    it('should warn about a release image that no service uses', () => {
      const r = check(OPENMRS, [
        ...IMAGES,
        { name: 'backup', registry: 'docker.io', repository: 'library/alpine', digest: `sha256:${hex('e')}` },
      ]);
      expect(r.ok).toBe(true);
      expect(r.warnings).toEqual([
        expect.objectContaining({ image: 'backup', message: expect.stringContaining('no service uses it') }),
      ]);
    });

    it('should accept an image pinned by digest without a placeholder', () => {
      const r = check(
        `services:\n  app:\n    image: {{ image.backend }}\n  proxy:\n    image: docker.io/library/nginx@sha256:${hex('f')}\n`,
        [IMAGES[2]!],
      );
      expect(r.ok).toBe(true);
    });

    it('should render site values with YAML-special characters so that they parse back exactly', () => {
      const template = [
        'services:',
        '  app:',
        '    image: {{ image.backend }}',
        '    environment:',
        '      PLAIN: {{ site.name }}',
        '      DOUBLE: "before {{ site.name }} after"',
        "      SINGLE: 'before {{ site.name }} after'",
        '      MIXED: site-{{ site.name }}-end',
        '    command: [ "run", {{ site.name }} ]',
        '    labels:',
        '      block: |',
        '        first line',
        '        {{ site.name }}',
        '',
      ].join('\n');
      const nasty = [
        'St. Mary\'s: #1 "Clinic"',
        '*star',
        '&anchor',
        '!tag',
        '- dash',
        '? question',
        'key: value',
        'a # not a comment',
        'line one\nline two',
        '  leading and trailing  ',
        '123',
        'true',
        'null',
        '~',
        '',
        '{{ image.backend }}',
        '[x, y]',
        '{a: b}',
        '@at',
        '`tick`',
        '|',
        '>',
        '%percent',
        '\ttab',
        'back\\slash',
        'ünïcødé 中文 🚑',
        '---',
        '...',
      ];
      for (const name of nasty) {
        const r = check(template, [IMAGES[2]!], { ...SITE, name });
        if (!r.ok) throw new Error(`${JSON.stringify(name)}: ${JSON.stringify(r.errors)}`);
        const out = parse(r.rendered);
        const env = out.services.app.environment;
        expect({ name, v: env.PLAIN }).toEqual({ name, v: name });
        expect({ name, v: env.DOUBLE }).toEqual({ name, v: `before ${name} after` });
        expect({ name, v: env.SINGLE }).toEqual({ name, v: `before ${name} after` });
        expect({ name, v: env.MIXED }).toEqual({ name, v: `site-${name}-end` });
        expect({ name, v: out.services.app.command }).toEqual({ name, v: ['run', name] });
        expect({ name, v: out.services.app.labels.block }).toEqual({ name, v: `first line\n${name}\n` });
      }
    });

    it("should double a site value's $ so that compose does not interpolate it", () => {
      const r = check(
        'services:\n  app:\n    image: {{ image.backend }}\n    environment:\n      NAME: {{ site.name }}\n',
        [IMAGES[2]!],
        { ...SITE, name: 'Clinic ${HOME} $5' },
      );
      expect(r.ok && parse(r.rendered).services.app.environment.NAME).toBe('Clinic $${HOME} $$5');
    });
  });

  describe('error', () => {
    it('should report a YAML syntax error at its line', () => {
      const bad = OPENMRS.replace(
        '    restart: unless-stopped\n    environment:\n      SPA_PATH',
        '    restart: unless-stopped\n   environment:\n      SPA_PATH',
      );
      const errors = errorsOf(check(bad));
      const lines = bad.split('\n');
      const badLine =
        lines.findIndex((l, i) => l === '   environment:' && lines[i + 1]!.includes('SPA_PATH')) + 1;
      expect(errors[0]).toMatchObject({ line: badLine, message: expect.stringMatching(/^YAML syntax/) });
    });

    it('should report an unclosed quote at the line it starts', () => {
      const bad = OPENMRS.replace('command: "mysqld', 'command: mysqld').replace(
        '      MYSQL_DATABASE: openmrs',
        '      MYSQL_DATABASE: "openmrs\n      OTHER: [1, 2',
      );
      const errors = errorsOf(check(bad));
      expect(errors[0]!.message).toMatch(/^YAML syntax/);
      expect(errors[0]!.line).toBeGreaterThanOrEqual(lineOf(bad, 'MYSQL_DATABASE: "openmrs'));
    });

    it('should report an unknown image placeholder at its line and column', () => {
      const bad = OPENMRS.replace('image: {{ image.db }}', 'image: {{ image.postgres }}');
      expect(errorsOf(check(bad))).toEqual([
        {
          line: lineOf(bad, 'image.postgres'),
          column: 12,
          message: expect.stringMatching(/No image named "postgres".*gateway, frontend, backend, db/),
        },
      ]);
    });

    it('should report an unknown site field and a malformed placeholder at their lines', () => {
      const bad = OPENMRS.replace('TZ: {{ site.timezone }}', 'TZ: {{ site.bogus }}').replace(
        'OUTPOST_RELEASE: {{ release.version }}',
        'OUTPOST_RELEASE: {{ image }}',
      );
      const errors = errorsOf(check(bad));
      expect(errors).toEqual([
        {
          line: lineOf(bad, '{{ image }}'),
          column: 24,
          message: expect.stringMatching(/Malformed placeholder \{\{ image \}\}/),
        },
        {
          line: lineOf(bad, 'site.bogus'),
          column: 11,
          message: expect.stringMatching(/Unknown site field "bogus"/),
        },
      ]);
    });

    it('should report an unknown placeholder name and an unclosed placeholder', () => {
      const bad =
        'services:\n  app:\n    image: {{ image.backend }}\n    environment:\n      A: {{ facility }}\n      B: {{ site.code\n';
      const errors = errorsOf(check(bad, [IMAGES[2]!]));
      expect(errors.map((e) => [e.line, e.message.slice(0, 30)])).toEqual([
        [5, 'Unknown placeholder {{ facilit'],
        [6, 'This placeholder is not closed'],
      ]);
    });

    it('should report an image that is not pinned at its line', () => {
      const bad = OPENMRS.replace('image: {{ image.db }}', 'image: mariadb:latest');
      expect(errorsOf(check(bad, IMAGES.slice(0, 3)))).toEqual([
        expect.objectContaining({
          line: lineOf(bad, 'mariadb:latest'),
          path: 'services.db.image',
          message: expect.stringContaining('pin it: use {{ image.<name> }}'),
        }),
      ]);
      const tagged = OPENMRS.replace('image: {{ image.db }}', 'image: {{ image.db }}-debug');
      expect(errorsOf(check(tagged))[0]).toMatchObject({
        line: lineOf(tagged, '-debug'),
        message: expect.stringContaining('not pinned'),
      });
    });

    it("should report a service without an image at the service's line", () => {
      const bad = 'services:\n  app:\n    image: {{ image.backend }}\n  worker:\n    build: .\n';
      expect(errorsOf(check(bad, [IMAGES[2]!]))).toEqual([
        expect.objectContaining({
          line: 4,
          path: 'services.worker',
          message: expect.stringContaining('has no image'),
        }),
      ]);
    });

    it('should report a schema violation (ports as a string) at its line', () => {
      const bad = OPENMRS.replace('    ports:\n      - "${GATEWAY_PORT:-80}:80"', '    ports: "80"');
      expect(errorsOf(check(bad))).toEqual([
        {
          line: lineOf(bad, 'ports: "80"'),
          column: 12,
          path: 'services.gateway.ports',
          message: 'services.gateway.ports must be a list.',
        },
      ]);
    });

    it('should report an unknown top-level key at its line', () => {
      const bad = `servics:\n  app:\n    image: {{ image.backend }}\n`;
      const errors = errorsOf(check(bad, [IMAGES[2]!]));
      expect(errors).toContainEqual({
        line: 1,
        column: 1,
        path: 'servics',
        message: expect.stringMatching(/Unknown top-level key "servics"/),
      });
      expect(errors).toContainEqual(
        expect.objectContaining({ message: 'Define at least one service under services:.' }),
      );
    });

    it('should report schema violations deep in a service at their lines', () => {
      const bad = OPENMRS.replace(
        'condition: service_healthy\n    environment:\n      OMRS',
        'condition: service_ready\n    environment:\n      OMRS',
      ).replace('      start_period: 120s', '      start_period: 120s\n      retrys: 3');
      const errors = errorsOf(check(bad));
      expect(errors).toEqual([
        expect.objectContaining({
          line: lineOf(bad, 'service_ready'),
          path: 'services.backend.depends_on.db.condition',
          message: expect.stringContaining('"service_healthy"'),
        }),
        expect.objectContaining({
          line: lineOf(bad, 'retrys'),
          path: 'services.backend.healthcheck.retrys',
          message: 'services.backend.healthcheck: unknown key "retrys".',
        }),
      ]);
    });

    it('should report an empty template, one of only comments, and one without services', () => {
      expect(errorsOf(check(''))).toEqual([{ line: 1, message: expect.stringContaining('empty') }]);
      expect(errorsOf(check('\n\n   \n'))).toEqual([{ line: 1, message: expect.stringContaining('empty') }]);
      expect(errorsOf(check('# nothing here\n'))[0]!.line).toBe(1);
      expect(errorsOf(check('name: x\nservices: {}\n'))).toEqual([
        expect.objectContaining({ line: 2, message: 'Define at least one service under services:.' }),
      ]);
      expect(errorsOf(check('- a\n- b\n'))).toEqual([
        expect.objectContaining({ line: 1, message: expect.stringContaining('must be a mapping') }),
      ]);
    });

    it('should throw a ValidationError listing the problems from renderCompose', () => {
      const bad = OPENMRS.replace('image: {{ image.db }}', 'image: {{ image.nope }}');
      let err: unknown;
      try {
        renderCompose({ template: bad, images: IMAGES, site: SITE, version: '1.0.0' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({
        kind: 'invalid',
        code: 'VALIDATION_FAILED',
        details: [
          {
            path: 'composeTemplate',
            line: lineOf(bad, 'image.nope'),
            column: 12,
            message: expect.stringContaining('nope'),
          },
        ],
      });
    });
  });
});

describe('the x-outpost section', () => {
  const withSection = (section: string) => `services:
  db:
    image: {{ image.db }}
    volumes: [data:/var/lib/mysql]
  backend:
    image: {{ image.backend }}
volumes:
  data: {}
x-outpost:
${section}`;
  const check = (section: string) =>
    validateComposeTemplate({
      template: withSection(section),
      images: IMAGES,
      sampleSite: SITE,
      version: '1.0.0',
    });

  it('should accept the documented keys and give them to the bundle with defaults filled in', () => {
    const r = check(`  wait-seconds: 600
  health-urls: [http://127.0.0.1:8080/openmrs/health]
  services:
    db:
      backup: mariadb-dump --all-databases -uroot -p"$MYSQL_ROOT_PASSWORD"
      restore: mariadb -uroot -p"$MYSQL_ROOT_PASSWORD"
`);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const section = outpostSection((r as { rendered: string }).rendered);
    expect(section).toEqual({
      'wait-seconds': 600,
      'health-urls': ['http://127.0.0.1:8080/openmrs/health'],
      services: {
        db: {
          backup: 'mariadb-dump --all-databases -uroot -p"$MYSQL_ROOT_PASSWORD"',
          restore: 'mariadb -uroot -p"$MYSQL_ROOT_PASSWORD"',
        },
      },
    });
    expect(
      outpostSection(
        renderCompose({
          template: 'services:\n  db:\n    image: {{ image.db }}\n',
          images: IMAGES,
          site: SITE,
          version: '1',
        }),
      ),
    ).toEqual({ 'wait-seconds': 300, 'health-urls': [], services: {} });
  });

  it('should point at the line of each mistake: unknown keys, a service the file does not have, a bad URL, a missing restore', () => {
    const r = check(`  wait-secs: 10
  health-urls: ["ftp://x"]
  services:
    cache:
      backup: redis-cli save
      restore: cp
    db:
      backup: dump
`);
    expect(r.ok).toBe(false);
    const errors = (r as { errors: { line: number; message: string; path?: string }[] }).errors;
    const template = withSection('');
    const base = template.split('\n').length - 1;
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          line: base + 1,
          message: expect.stringContaining('unknown key "wait-secs"'),
        }),
        expect.objectContaining({
          line: base + 2,
          message: expect.stringContaining('A health URL starts with http://'),
        }),
        expect.objectContaining({
          path: 'x-outpost.services.db.restore',
          message:
            'x-outpost.services.db.restore: Give the service a restore command (it reads the backup on its input).',
        }),
      ]),
    );
    const fixed = check(`  services:
    cache:
      backup: redis-cli save
      restore: cp
`);
    expect(fixed.ok).toBe(false);
    expect((fixed as { errors: { message: string }[] }).errors[0]!.message).toBe(
      'x-outpost.services names "cache", which is not a service of this file.',
    );
  });

  it('should refuse a wait outside 5 s to 2 hours and a command on several lines', () => {
    expect(check('  wait-seconds: 2\n').ok).toBe(false);
    expect(check('  wait-seconds: 99999\n').ok).toBe(false);
    const r = check('  services:\n    db:\n      backup: "dump\\nmore"\n      restore: load\n');
    expect(r.ok).toBe(false);
    expect((r as { errors: { message: string }[] }).errors[0]!.message).toContain(
      'Write the backup command on one line.',
    );
  });
});
