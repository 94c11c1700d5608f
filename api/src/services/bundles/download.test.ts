import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  buildSitePart,
  defaultReadme,
  generateSigningKey,
  stitchPlan,
  type SitePart,
  type StitchPlan,
} from '@outpost/bundler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putStream } from '../../lib/blob-store.ts';
import type { ObjectStore } from '../../lib/object-store.ts';
import { runStore, scratchBucket } from '../../test/store.ts';
import { contentDisposition, rangedResponse, type RangedRequest } from '../../routes/ranged.ts';
import { stitchedSource } from './download.ts';
import { seededRandom } from '../../lib/seeded-random.ts';

// Real parts throughout: the run's S3 server holds the shared objects, GNU tar reads the download,
// and a node:http server carries it to a real socket client for the byte count and the disconnect.
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const scratchStore = (): ObjectStore => runStore({ bucket: scratchBucket('bundles') });

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

const dir = mkdtempSync(join(tmpdir(), 'outpost-download-'));
const images = randomBytes(3 * 1024 * 1024 + 123); // not a multiple of 512: the object is followed by padding
const content = randomBytes(200 * 1024 + 7);
const etag = `"bundle-${sha(images).slice(0, 16)}"`;

let store: ObjectStore;
let part: SitePart;
let plan: StitchPlan;
let shared: { sha256: string }[];
let expected: Buffer;

/** The stitched file as the routes serve it: routes/ranged.ts answering the request from the byte source. */
function serve(
  request: RangedRequest,
  overrides: {
    store?: ObjectStore;
    fileName?: string;
    plan?: StitchPlan;
    shared?: { sha256: string }[];
  } = {},
) {
  const source = stitchedSource({
    store: overrides.store ?? store,
    plan: overrides.plan ?? plan,
    sitePart: part.tar,
    shared: overrides.shared ?? shared,
    etag,
    fileName: overrides.fileName ?? `${part.root}.tar`,
  });
  return rangedResponse(source, request);
}

beforeAll(async () => {
  store = scratchStore();
  await store.ensureBucket();
  const uploaded = await Promise.all(
    [content, images].map((bytes) =>
      putStream(store, Readable.from([bytes]), { mediaType: 'application/octet-stream', maxBytes: 10 << 20 }),
    ),
  );
  expect(uploaded.map((u) => u.sha256)).toEqual([sha(content), sha(images)]);

  const key = generateSigningKey();
  part = buildSitePart({
    site: { id: 'site_01', code: 'KSM-N', name: 'Kisumu North Clinic' },
    release: { id: 'rel_24', version: '2.4.0' },
    createdAt: new Date('2026-11-21T10:00:00Z'),
    expiresAt: new Date('2027-02-19T10:00:00Z'),
    compose:
      'name: outpost\nservices:\n  web:\n    image: registry.example.org/emr/web@sha256:' +
      sha(Buffer.from('web')) +
      '\n',
    env: { SITE_CODE: 'KSM-N', SITE_NAME: 'Kisumu North' },
    contentPackage: { fileName: 'emr-content-2.4.0.zip', sha256: sha(content), size: content.length },
    imagesArchive: { sha256: sha(images), size: images.length, delta: false },
    scripts: [{ path: 'install', content: '#!/bin/sh\nset -eu\necho "Step: install"\n' }],
    readme: defaultReadme({
      siteName: 'Kisumu North Clinic',
      version: '2.4.0',
      sizeBytes: images.length,
      estimatedMinutes: 10,
    }),
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
  });
  plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
  shared = part.shared.map((object) => ({ sha256: object.sha256 }));

  // The expected file, laid out independently of stitchedSource: the plan's segments in order.
  const objects = [content, images];
  expected = Buffer.concat(
    plan.segments.map((segment) =>
      segment.kind === 'site'
        ? part.tar
        : segment.kind === 'object'
          ? objects[segment.index]!
          : segment.bytes,
    ),
  );
  expect(expected.length).toBe(plan.totalSize);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stitchedSource, served with ranges', () => {
  it('should answer a GET with the whole file, exact Content-Length and the download headers', async () => {
    const res = await serve({ method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(plan.totalSize));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toBe(etag);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="outpost-KSM-N-2.4.0.tar"');
    expect(res.headers.get('content-range')).toBeNull();
    const body = await bytesOf(res);
    expect(body.length).toBe(plan.totalSize);
    expect(body.equals(expected)).toBe(true);
  });

  it('should write a file GNU tar extracts, with the uploaded images.tgz and content zip inside', async () => {
    const file = join(dir, 'bundle.tar');
    writeFileSync(file, await bytesOf(await serve({ method: 'GET' })));
    const out = join(dir, 'out');
    mkdirSync(out);
    const tar = spawnSync('tar', ['-xf', file], { cwd: out });
    expect(tar.stderr.toString()).toBe('');
    expect(tar.status).toBe(0);
    expect(sha(readFileSync(join(out, part.root, 'images/images.tgz')))).toBe(sha(images));
    expect(sha(readFileSync(join(out, part.root, 'content/emr-content-2.4.0.zip')))).toBe(sha(content));
    expect(readFileSync(join(out, part.root, 'scripts/install'), 'utf8')).toContain('Step: install');
  });

  it('should answer 200 random ranges, boundary-spanning, suffix and one-byte ones among them, with exactly those bytes', async () => {
    const total = plan.totalSize;
    // Seeded: a failure names a range that reproduces.
    const random = seededRandom(20261121);
    const int = (n: number) => Math.floor(random() * n);
    const boundaries = plan.segments.map((segment) => segment.offset).filter((offset) => offset > 0);
    const cases: { header: string; start: number; end: number }[] = [
      { header: 'bytes=0-0', start: 0, end: 0 },
      { header: `bytes=${total - 1}-${total - 1}`, start: total - 1, end: total - 1 },
      { header: 'bytes=-1', start: total - 1, end: total - 1 },
      { header: `bytes=-${total + 10}`, start: 0, end: total - 1 },
      { header: `bytes=0-${total + 1000}`, start: 0, end: total - 1 },
    ];
    for (const b of boundaries) {
      cases.push({ header: `bytes=${b - 1}-${b}`, start: b - 1, end: b }); // the last byte of one segment and the first of the next
      cases.push({ header: `bytes=${b}-${b}`, start: b, end: b });
    }
    while (cases.length < 200) {
      const kind = int(5);
      if (kind === 0) {
        // spans a boundary by up to 1000 bytes either side
        const b = boundaries[int(boundaries.length)]!;
        const start = Math.max(0, b - 1 - int(1000));
        const end = Math.min(total - 1, b + int(1000));
        cases.push({ header: `bytes=${start}-${end}`, start, end });
      } else if (kind === 1) {
        // open-ended, as a resuming client asks
        const start = int(total);
        cases.push({ header: `bytes=${start}-`, start, end: total - 1 });
      } else if (kind === 2) {
        // suffix
        const n = 1 + int(4096);
        cases.push({ header: `bytes=-${n}`, start: total - n, end: total - 1 });
      } else if (kind === 3) {
        // one byte anywhere
        const at = int(total);
        cases.push({ header: `bytes=${at}-${at}`, start: at, end: at });
      } else {
        // anything
        const start = int(total);
        const end = Math.min(total - 1, start + int(200_000));
        cases.push({ header: `bytes=${start}-${end}`, start, end });
      }
    }
    const started = performance.now();
    for (const c of cases) {
      const res = await serve({ method: 'GET', range: c.header });
      expect(res.status, c.header).toBe(206);
      expect(res.headers.get('content-range'), c.header).toBe(`bytes ${c.start}-${c.end}/${total}`);
      expect(res.headers.get('content-length'), c.header).toBe(String(c.end - c.start + 1));
      const body = await bytesOf(res);
      expect(body.equals(expected.subarray(c.start, c.end + 1)), c.header).toBe(true);
    }
    console.info(`${cases.length} range requests in ${Math.round(performance.now() - started)} ms`);
  });

  it('should honour the Range when If-Range names the current ETag, and send the whole file when it does not', async () => {
    const matching = await serve({ method: 'GET', range: 'bytes=100-199', ifRange: etag });
    expect(matching.status).toBe(206);
    expect((await bytesOf(matching)).equals(expected.subarray(100, 200))).toBe(true);
    for (const ifRange of ['"bundle-of-an-older-build"', `W/${etag}`, 'Sat, 21 Nov 2026 10:00:00 GMT']) {
      const changed = await serve({ method: 'GET', range: 'bytes=100-199', ifRange });
      expect(changed.status, ifRange).toBe(200);
      expect(changed.headers.get('content-length')).toBe(String(plan.totalSize));
      expect((await bytesOf(changed)).equals(expected), ifRange).toBe(true);
    }
  });

  it('should answer 416 with Content-Range bytes */total for a range past the end', async () => {
    for (const range of [
      `bytes=${plan.totalSize}-`,
      `bytes=${plan.totalSize + 5}-${plan.totalSize + 10}`,
      'bytes=-0',
    ]) {
      const res = await serve({ method: 'GET', range });
      expect(res.status, range).toBe(416);
      expect(res.headers.get('content-range')).toBe(`bytes */${plan.totalSize}`);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect((await res.json()).error.code).toBe('RANGE_NOT_SATISFIABLE');
    }
  });

  it('should ignore a malformed, foreign-unit or multi-range header and send the whole file', async () => {
    for (const range of [
      'bytes=abc',
      'items=0-1',
      'bytes=5-2',
      'bytes=-',
      'bytes=0-1,5-6',
      'bytes=1.5-3',
      '',
    ]) {
      const res = await serve({ method: 'GET', range });
      expect(res.status, range).toBe(200);
      expect(res.headers.get('content-range'), range).toBeNull();
      expect((await bytesOf(res)).equals(expected), range).toBe(true);
    }
  });

  it('should answer HEAD with the same headers and no body', async () => {
    const head = await serve({ method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBeNull();
    expect(head.headers.get('content-length')).toBe(String(plan.totalSize));
    expect(head.headers.get('etag')).toBe(etag);
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    const ranged = await serve({ method: 'HEAD', range: 'bytes=10-19' });
    expect(ranged.status).toBe(206);
    expect(ranged.body).toBeNull();
    expect(ranged.headers.get('content-range')).toBe(`bytes 10-19/${plan.totalSize}`);
    expect(ranged.headers.get('content-length')).toBe('10');
  });

  it('should name a non-ASCII file with an ASCII fallback and filename* in UTF-8 (RFC 6266)', async () => {
    const res = await serve({ method: 'HEAD' }, { fileName: 'outpost-Kisumu-Ñ-2.4.0 ü.tar' });
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="outpost-Kisumu-_-2.4.0 _.tar"; filename*=UTF-8''outpost-Kisumu-%C3%91-2.4.0%20%C3%BC.tar`,
    );
    expect(contentDisposition('a"b\\c.tar')).toBe(
      `attachment; filename="a_b_c.tar"; filename*=UTF-8''a%22b%5Cc.tar`,
    );
  });

  describe('over a real socket', () => {
    let server: Server;
    let base: string;
    // The S3 response bodies the serving store opened, to see that none is left reading.
    const opened: IncomingMessage[] = [];
    // How each response's pipeline to the socket ended: 'ok' or the error that stopped it.
    const served: string[] = [];
    // 24 copies of the images object (72 MB): far more than loopback socket buffers take in at once.
    const copies = 24;
    let big: StitchPlan;

    beforeAll(async () => {
      big = stitchPlan({
        sitePartSize: part.tarSize,
        shared: Array.from({ length: copies }, (_, i) => ({
          path: `${part.root}/images/copy-${i}.tgz`,
          size: images.length,
        })),
      });
      const watched = runStore({ bucket: store.bucket });
      watched.client.middlewareStack.add(
        (next) => async (args) => {
          const result = await next(args);
          const body = (result.response as { body?: unknown }).body;
          if (body instanceof Readable) opened.push(body as IncomingMessage);
          return result;
        },
        { step: 'deserialize', name: 'watchBodies' },
      );
      // What @hono/node-server does with a Response: status, headers, then the body piped to the socket.
      server = createServer(async (req, res) => {
        const answer = await serve(
          {
            method: req.method === 'HEAD' ? 'HEAD' : 'GET',
            range: req.headers.range,
            ifRange: req.headers['if-range'] as string | undefined,
          },
          req.url === '/big.tar'
            ? {
                store: watched,
                plan: big,
                shared: Array.from({ length: copies }, () => ({ sha256: sha(images) })),
              }
            : { store: watched },
        );
        res.writeHead(answer.status, Object.fromEntries(answer.headers));
        if (!answer.body) {
          res.end();
          return;
        }
        await pipeline(Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream), res).then(
          () => served.push('ok'),
          (err: Error) => served.push(`${err.message} ${(err as { code?: string }).code ?? ''}`),
        );
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('should send exactly Content-Length bytes', async () => {
      const { headers, received, sha256 } = await new Promise<{
        headers: IncomingMessage['headers'];
        received: number;
        sha256: string;
      }>((resolve, reject) => {
        httpGet(`${base}/bundle.tar`, (res) => {
          const hash = createHash('sha256');
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            hash.update(chunk);
          });
          res.on('end', () => resolve({ headers: res.headers, received, sha256: hash.digest('hex') }));
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(Number(headers['content-length'])).toBe(plan.totalSize);
      expect(received).toBe(plan.totalSize);
      expect(sha256).toBe(sha(expected));
    });

    it('should cancel the object store stream when the client disconnects mid-download', async () => {
      opened.length = 0;
      served.length = 0;
      // Start inside the first copy so the first bytes already come from S3.
      const start = big.segments.find((segment) => segment.kind === 'object')!.offset + 1000;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no data')), 10_000);
        const req = httpGet(`${base}/big.tar`, { headers: { range: `bytes=${start}-` } }, (res) => {
          expect(res.statusCode).toBe(206);
          res.once('data', () => {
            clearTimeout(timer);
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
      });
      const deadline = Date.now() + 5000;
      while ((served.length === 0 || opened.some((body) => !body.destroyed)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(served[0]).toMatch(/premature close|aborted|ECONNRESET|EPIPE/i);
      // Socket buffers took in a few objects' worth at most; the rest were never asked of S3, and none is left open.
      expect(opened.length).toBeGreaterThan(0);
      expect(opened.length).toBeLessThan(copies);
      expect(opened.every((body) => body.destroyed)).toBe(true);
      console.info(`disconnect: ${opened.length} of ${copies} S3 reads opened, all closed`);
    });
  });

  it('should stop reading from the object store when the body is cancelled', async () => {
    const watched = runStore({ bucket: store.bucket });
    const opened: IncomingMessage[] = [];
    watched.client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const body = (result.response as { body?: unknown }).body;
        if (body instanceof Readable) opened.push(body as IncomingMessage);
        return result;
      },
      { step: 'deserialize', name: 'watchBodies' },
    );
    const images = plan.segments.find((segment) => segment.kind === 'object' && segment.index === 1)!;
    const res = await serve({ method: 'GET', range: `bytes=${images.offset}-` }, { store: watched });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    expect(
      Buffer.from(first.value!).equals(expected.subarray(images.offset, images.offset + first.value!.length)),
    ).toBe(true);
    await reader.cancel('the client went away');
    expect(opened.length).toBe(1);
    const deadline = Date.now() + 5000;
    while (!opened[0]!.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(opened[0]!.destroyed).toBe(true);
    expect(opened[0]!.readableEnded).toBe(false); // stopped part-way, not drained
  });
});
