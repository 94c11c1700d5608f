import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestDb } from './db.ts';
import { makeTestApp } from './app.ts';
import { makeApiToken, makeOrg, makeRelease, makeSite, makeUser } from './factories.ts';
import type { DbHandle } from '../db/types.ts';

// Every operation the OpenAPI document lists — read from /api/openapi.json when the test runs, so
// routes added later are covered without touching this file — is sent requests generated from its
// own parameters and body schema, with hostile values mixed in: NUL and other control characters,
// huge strings, wrong types, unknown fields, malformed bodies. The API must never answer 5xx, and
// every 4xx must be the one error envelope.

type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  required?: string[];
  format?: string;
  nullable?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  const?: unknown;
};
type Parameter = {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
};
type Operation = {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
};
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
};

const MIN_REQUESTS = 1000;
/** A lone surrogate cannot be percent-encoded as UTF-8: it is sent as the invalid bytes it would be. */
const pathSegment = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return '%ED%A0%80';
  }
};
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

/** Strings an attacker sends: control characters, huge, odd Unicode, injection-shaped, numbers in disguise. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    'x\u0000y',
    '\u0000',
    'a\u001b[2Jb',
    '\u0007',
    'line\nbreak',
    '\u202eevil',
    '\ud800',
    '%00',
    '../../etc/passwd',
    "' or 1=1 --",
    '{{ 7*7 }}',
    '${jndi:ldap://x}',
    '-1',
    '0',
    '1e400',
    'NaN',
    'null',
    'true',
    '[]',
    '{}',
    ' ',
    '',
  ),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => 'A'.repeat(n)),
  fc.uuid(),
);
const hostileScalar: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e308, -0),
);

describe('fuzz: every documented operation with generated hostile requests', () => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let doc: Doc;
  let token: string;
  let ids: string[];
  beforeAll(async () => {
    h = await createTestDb('pglite');
    t = await makeTestApp(h);
    const org = await makeOrg(h.db);
    token = (await makeApiToken(h.db, org.id, 'owner')).token;
    const site = await makeSite(h.db, org.id);
    const release = await makeRelease(h.db, org.id, '1.0.0', 'draft');
    const user = await makeUser(h.db, org.id, 'viewer');
    const other = await makeOrg(h.db);
    const foreign = await makeSite(h.db, other.id);
    // Path parameters: the organisation's own objects (so bodies are validated past the lookup), another's, and garbage.
    ids = [site.id, release.id, user.id, foreign.id];
    doc = (await (await t.app.request('/api/openapi.json')).json()) as Doc;
  }, 180_000); // a first PGlite open is slow on a busy machine
  afterAll(async () => {
    await h?.close();
  });

  const resolve = (s: Schema | undefined): Schema => {
    let schema = s ?? {};
    for (let i = 0; schema.$ref && i < 10; i++)
      schema = doc.components?.schemas?.[schema.$ref.split('/').pop()!] ?? {};
    return schema;
  };

  /** A value for a schema: mostly the right shape, with hostile leaves and now and then the wrong type altogether. */
  function valueOf(s: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
    const schema = resolve(s);
    const alternatives = schema.anyOf ?? schema.oneOf;
    if (alternatives?.length) return fc.oneof(...alternatives.map((a) => valueOf(a, depth + 1)));
    if (schema.allOf?.length) return valueOf(schema.allOf[0], depth + 1);
    const type = Array.isArray(schema.type) ? schema.type.find((x) => x !== 'null') : schema.type;
    let shaped: fc.Arbitrary<unknown>;
    if (schema.enum) shaped = fc.oneof(fc.constantFrom(...schema.enum), hostileString);
    else if (type === 'object' || schema.properties) {
      if (depth > 4) return hostileScalar;
      const props = schema.properties ?? {};
      shaped = fc
        .record(Object.fromEntries(Object.entries(props).map(([k, v]) => [k, valueOf(v, depth + 1)])), {
          requiredKeys: [],
        })
        .chain((o) =>
          fc
            .option(fc.tuple(hostileString, hostileScalar), { nil: undefined })
            .map((extra) => (extra ? { ...o, [extra[0]]: extra[1] } : o)),
        );
    } else if (type === 'array') shaped = fc.array(valueOf(schema.items, depth + 1), { maxLength: 5 });
    else if (type === 'integer' || type === 'number')
      shaped = fc.oneof(
        fc.integer({ min: -10, max: 1000 }),
        fc.double(),
        fc.constantFrom(1e308, -1, 0, 2 ** 53),
      );
    else if (type === 'boolean') shaped = fc.boolean();
    else if (type === 'string' && schema.format === 'uuid')
      shaped = fc.oneof(fc.constantFrom(...ids), fc.uuid());
    else shaped = hostileString;
    // One time in five the value is of another kind entirely.
    return fc.oneof({ arbitrary: shaped, weight: 4 }, { arbitrary: hostileScalar, weight: 1 });
  }

  /** A value that follows the schema (patterns, lengths, formats, ranges, required fields), to get past validation. */
  function validOf(s: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
    const schema = resolve(s);
    if (schema.const !== undefined) return fc.constant(schema.const);
    const alternatives = schema.anyOf ?? schema.oneOf;
    if (alternatives?.length)
      return fc.oneof(
        ...alternatives.filter((a) => resolve(a).type !== 'null').map((a) => validOf(a, depth + 1)),
      );
    if (schema.allOf?.length) return validOf(schema.allOf[0], depth + 1);
    if (schema.enum) return fc.constantFrom(...schema.enum);
    const type = Array.isArray(schema.type) ? schema.type.find((x) => x !== 'null') : schema.type;
    if (type === 'object' || schema.properties) {
      if (depth > 4) return fc.constant({});
      const props = schema.properties ?? {};
      return fc.record(
        Object.fromEntries(Object.entries(props).map(([k, v]) => [k, validOf(v, depth + 1)])),
        { requiredKeys: (schema.required ?? []).filter((k) => k in props) },
      );
    }
    if (type === 'array') return fc.array(validOf(schema.items, depth + 1), { maxLength: 3 });
    if (type === 'integer')
      return fc.integer({
        min: Math.ceil(schema.minimum ?? 0),
        max: Math.floor(Math.min(schema.maximum ?? 1000, 1e9)),
      });
    if (type === 'number')
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1000, noNaN: true });
    if (type === 'boolean') return fc.boolean();
    if (schema.format === 'email') return fc.emailAddress();
    if (schema.format === 'uuid') return fc.constantFrom(...ids);
    if (schema.format === 'date-time')
      return fc
        .date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString());
    const [min, max] = [schema.minLength ?? 1, Math.min(schema.maxLength ?? 30, 60)];
    if (schema.pattern) {
      try {
        return fc
          .stringMatching(new RegExp(schema.pattern))
          .filter((v) => v.length >= min && v.length <= (schema.maxLength ?? Infinity));
      } catch {
        /* a pattern JavaScript cannot read: plain letters below */
      }
    }
    return fc.string({
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789 '),
      minLength: min,
      maxLength: Math.max(min, max),
    });
  }

  /** A valid body with one string in it turned hostile: the case that reached the database before. */
  function mutatedOf(schema: Schema | undefined): fc.Arbitrary<unknown> {
    return fc
      .tuple(
        validOf(schema),
        fc.nat(),
        fc.constantFrom('\u0000', 'x\u0000y', '\u001b[31m', '\u0001', '\u007f', '\u009b'),
      )
      .map(([value, pick, bad]) => {
        const leaves: { holder: Record<string, unknown> | unknown[]; key: string | number }[] = [];
        const walk = (v: unknown) => {
          if (Array.isArray(v))
            v.forEach((x, i) => (typeof x === 'string' ? leaves.push({ holder: v, key: i }) : walk(x)));
          else if (v && typeof v === 'object')
            for (const [k, x] of Object.entries(v)) {
              if (typeof x === 'string') leaves.push({ holder: v as Record<string, unknown>, key: k });
              else walk(x);
            }
        };
        walk(value);
        if (leaves.length === 0) return value;
        const leaf = leaves[pick % leaves.length]!;
        (leaf.holder as Record<string | number, unknown>)[leaf.key] =
          `${String((leaf.holder as Record<string | number, unknown>)[leaf.key])}${bad}`;
        return value;
      });
  }

  const pathValue = () =>
    fc.oneof(
      { arbitrary: fc.constantFrom(...ids), weight: 3 },
      { arbitrary: fc.uuid(), weight: 1 },
      { arbitrary: hostileString, weight: 2 },
    );
  const asText = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  const queryValue = (p: Parameter) =>
    fc.oneof(
      { arbitrary: valueOf(p.schema).map(asText), weight: 2 },
      { arbitrary: validOf(p.schema).map(asText), weight: 2 },
      { arbitrary: validOf(p.schema).map((v) => `${asText(v)}\u0000`), weight: 1 },
      { arbitrary: hostileString, weight: 2 },
    );

  function requestFor(path: string, method: string, op: Operation) {
    const params = op.parameters ?? [];
    const content = op.requestBody?.content ?? {};
    const types = Object.keys(content);
    return fc
      .record({
        path: fc.tuple(
          ...params.filter((p) => p.in === 'path').map((p) => pathValue().map((v) => [p.name, v] as const)),
          fc.constant(['', ''] as const),
        ),
        query: fc.tuple(
          ...params
            .filter((p) => p.in === 'query')
            .map((p) => fc.option(queryValue(p), { nil: undefined }).map((v) => [p.name, v] as const)),
          fc.constant(['', undefined] as const),
        ),
        extraQuery: fc.option(fc.tuple(hostileString, hostileString), { nil: undefined }),
        body:
          types.length === 0
            ? fc
                .option(
                  fc.oneof(
                    hostileString,
                    valueOf({ type: 'object' }).map((v) => JSON.stringify(v)),
                  ),
                  { nil: undefined },
                )
                .map((b) => (b === undefined ? undefined : { type: 'application/json', bytes: b }))
            : fc.constantFrom(...types).chain((type) =>
                type.includes('json')
                  ? fc.oneof(
                      {
                        arbitrary: valueOf(content[type]?.schema).map((v) => ({
                          type,
                          bytes: JSON.stringify(v) ?? 'null',
                        })),
                        weight: 4,
                      },
                      {
                        arbitrary: validOf(content[type]?.schema).map((v) => ({
                          type,
                          bytes: JSON.stringify(v) ?? 'null',
                        })),
                        weight: 2,
                      },
                      {
                        arbitrary: mutatedOf(content[type]?.schema).map((v) => ({
                          type,
                          bytes: JSON.stringify(v) ?? 'null',
                        })),
                        weight: 4,
                      },
                      { arbitrary: hostileString.map((b) => ({ type, bytes: b })), weight: 1 },
                      {
                        arbitrary: fc
                          .constantFrom('{', '{"a":', '[1,2', '\u0000')
                          .map((b) => ({ type, bytes: b })),
                        weight: 1,
                      },
                    )
                  : fc
                      .oneof(hostileString, fc.uint8Array({ maxLength: 2000 }))
                      .map((b) => ({ type, bytes: b })),
              ),
      })
      .map(({ path: pathParams, query, extraQuery, body }) => {
        let url = path;
        for (const [name, value] of pathParams) if (name) url = url.replace(`{${name}}`, pathSegment(value));
        const search = new URLSearchParams();
        for (const [name, value] of query) if (name && value !== undefined) search.append(name, value);
        if (extraQuery) search.append(extraQuery[0], extraQuery[1]);
        const qs = search.toString();
        return { method: method.toUpperCase(), url: qs ? `${url}?${qs}` : url, body };
      });
  }

  it(`should answer at least ${MIN_REQUESTS} generated requests without a 5xx, and every 4xx with the error envelope`, async () => {
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([m]) => METHODS.has(m))
        .map(([method, op]) => ({ path, method, op })),
    );
    expect(operations.length).toBeGreaterThan(40);
    const runsEach = Math.ceil(MIN_REQUESTS / operations.length) + 2;
    let sent = 0;
    const seen = new Map<string, number>();
    for (const { path, method, op } of operations) {
      await fc.assert(
        fc.asyncProperty(requestFor(path, method, op), async (req) => {
          const headers: Record<string, string> = { authorization: `Bearer ${token}` };
          if (req.body) headers['content-type'] = req.body.type;
          const res = await t.app.request(req.url, {
            method: req.method,
            headers,
            ...(req.body && req.method !== 'GET' ? { body: req.body.bytes as BodyInit } : {}),
          });
          sent++;
          seen.set(`${res.status}`, (seen.get(`${res.status}`) ?? 0) + 1);
          const text = await res.text();
          const where = `${req.method} ${req.url.slice(0, 200)} → ${res.status} ${text.slice(0, 300)}`;
          expect(res.status, where).toBeLessThan(500);
          if (res.status >= 400) {
            let body: { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
            try {
              body = JSON.parse(text) as typeof body;
            } catch {
              body = {};
            }
            expect(typeof body.error?.code, where).toBe('string');
            expect(typeof body.error?.message, where).toBe('string');
            expect(typeof body.error?.requestId, where).toBe('string');
          }
        }),
        { numRuns: runsEach, endOnFailure: true },
      );
    }
    expect(sent).toBeGreaterThanOrEqual(MIN_REQUESTS);
    // Nothing that failed on our side was logged as unhandled.
    expect(t.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 600_000);
});
