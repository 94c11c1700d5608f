// The stitched download as the API serves it: stitchedSource answered by routes/ranged.ts behind a
// Hono route on @hono/node-server, in a process of its own (the client measuring it is the parent).
// Builds the site part for the shared objects it is given; prints `READY <port> <total bytes>`. Two
// plain proxies of the same objects show where the time goes: `/proxy/node` pipes GetObject bodies
// into the Node response, `/proxy/web` returns them as a web stream through Hono (what the ranged
// answer's body is). The images archive is produced from its blobs by its layout, as the API does.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { buildSitePart, generateSigningKey, stitchPlan, type ImagesArchiveLayout } from '@outpost/bundler';
import { stitchedSource } from '../../api/src/services/bundles/download.ts';
import { rangedResponse } from '../../api/src/routes/ranged.ts';
import { benchStore } from './common.ts';
import { siteOptions } from './site-inputs.ts';

const store = benchStore(process.env.BENCH_S3_ENDPOINT!, process.env.BENCH_BUCKET!);
const shared = JSON.parse(process.env.BENCH_SHARED!) as {
  images: { sha256: string; size: number; layout: ImagesArchiveLayout };
  content: { sha256: string; size: number };
};
const part = buildSitePart(siteOptions(1, shared, generateSigningKey()));
const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });

const app = new Hono().on(['GET', 'HEAD'], '/bundle', (c) =>
  rangedResponse(
    stitchedSource({
      store,
      plan,
      sitePart: part.tar,
      shared: part.shared.map((o) =>
        o.sha256 === shared.images.sha256 ? { ...o, archive: shared.images.layout } : o,
      ),
      etag: `bundle-${part.manifest.site.id}`,
      fileName: `${part.root}.tar`,
    }),
    {
      method: c.req.method as 'GET' | 'HEAD',
      range: c.req.header('range') ?? null,
      ifRange: c.req.header('if-range') ?? null,
    },
  ),
);
// The proxies send the stored objects the bundle's bytes come from: the content package and the image's blobs.
const objects = JSON.parse(process.env.BENCH_KEYS!) as string[];
const getObject = (key: string) =>
  store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
app.get('/proxy/web', () => {
  let i = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  return new Response(
    new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          for (;;) {
            if (!reader) {
              const key = objects[i++];
              if (!key) return controller.close();
              reader = (
                (await getObject(key)).Body!.transformToWebStream() as ReadableStream<Uint8Array>
              ).getReader();
            }
            const { done, value } = await reader.read();
            if (done) {
              reader = null;
              continue;
            }
            return controller.enqueue(value);
          }
        },
      },
      { highWaterMark: 0 },
    ),
  );
});
// Outside Hono: plain node:http, GetObject bodies piped into the response one after the other.
const nodeProxy = createServer(async (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  for (const key of objects) {
    const body = (await getObject(key)).Body as Readable;
    await new Promise<void>((resolve, reject) => {
      body.on('end', resolve).on('error', reject);
      body.pipe(res, { end: false });
    });
  }
  res.end();
});
await new Promise<void>((resolve) => nodeProxy.listen(0, '127.0.0.1', resolve));
const nodeProxyPort = (nodeProxy.address() as AddressInfo).port;
serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
  process.stdout.write(`READY ${info.port} ${plan.totalSize} ${nodeProxyPort}\n`),
);
process.on('SIGTERM', () => process.exit(0));
