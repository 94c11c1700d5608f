// The API as the benchmark sees it: a child process on PostgreSQL, so the load generator does not
// share its event loop. Adds one no-op Hono endpoint as the throughput baseline.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createApp } from '../api/src/app.ts';
import { createPgDb } from '../api/src/db/client-pg.ts';
import { createObjectStore } from '../api/src/lib/object-store.ts';
import { createSecretBox } from '../api/src/lib/secret-box.ts';
import { startEmbeddedS3 } from '../api/src/embedded-s3.ts';
import { registryImageResolver } from '../api/src/services/releases/registry-resolver.ts';
import { CheckinInput } from '../api/src/routes/checkin.ts';
import { sha256Hex } from '../api/src/lib/crypto.ts';

const url = process.env.BENCH_DATABASE_URL!;
const handle = await createPgDb(url, { max: 10 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-s3-'));
const s3 = await startEmbeddedS3(dir, 'outpost', { secretAccessKey: 'S3RVER' });
const secretBox = await createSecretBox(Buffer.from(process.env.BENCH_SECRET_KEY!, 'base64'));
const api = createApp({
  database: () => handle.db,
  secretBox,
  logger: () => {},
  checkinsPerMinute: 1_000_000,
  imageResolver: registryImageResolver(),
  objectStore: createObjectStore({
    endpoint: s3.endpoint,
    bucket: 'outpost',
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  }),
});
const server = new Hono();
server.post('/bench/noop', (c) => c.json({ ok: true }, 200));
// The least any check-in must do before its write, for scale: read the token and hash it, read and
// validate the body, answer in the check-in's shape. No middleware, no database.
server.post('/bench/checkin-dry', async (c) => {
  const token = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  const input = CheckinInput.safeParse(await c.req.json());
  if (!token || !input.success)
    return c.json({ error: { code: 'VALIDATION', message: 'bad check-in' } }, 400);
  const hash = await sha256Hex(token);
  return c.json(
    {
      reportId: hash.slice(0, 36),
      duplicate: false,
      receivedAt: new Date().toISOString(),
      site: { code: input.data.version },
      targetVersion: null,
    },
    200,
  );
});
server.route('/', api);
serve({ fetch: server.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`READY ${info.port}\n`);
});
process.on('SIGTERM', async () => {
  await s3.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await handle.close();
  process.exit(0);
});
