import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startEmbeddedS3 } from './embedded-s3.ts';
import { createObjectStore } from './lib/object-store.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

/** The embedded S3 server on a scratch folder of its own, and the API's client of it. */
async function startStore() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-embedded-s3-'));
  dirs.push(dir);
  const s3 = await startEmbeddedS3(dir, 'outpost');
  const store = createObjectStore({
    endpoint: s3.endpoint,
    bucket: 'outpost',
    region: 'us-east-1',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
  return { s3, store };
}

describe('embedded object store', () => {
  it('should stop at once while a read is still streaming (a download to a slow site), cutting it', async () => {
    const { s3, store } = await startStore();
    try {
      // Larger than the socket buffers between the two, so the answer is still being sent while paused.
      await store.client.send(
        new PutObjectCommand({ Bucket: 'outpost', Key: 'big', Body: Buffer.alloc(48 * 2 ** 20, 7) }),
      );
      const answer = await store.client.send(new GetObjectCommand({ Bucket: 'outpost', Key: 'big' }));
      const body = answer.Body as Readable;
      const cut = new Promise<string>((resolve) =>
        body.once('error', () => resolve('error')).once('close', () => resolve('close')),
      );
      body.pause();
      const started = Date.now();
      await s3.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      // The reader sees its stream end without the rest (it would resume with a Range elsewhere).
      body.resume();
      let rest = 0;
      body.on('data', (chunk: Buffer) => {
        rest += chunk.length;
      });
      expect(await cut).toMatch(/error|close/);
      expect(rest).toBeLessThan(48 * 2 ** 20);
    } finally {
      store.client.destroy();
    }
  });

  it('should answer only the server and presigned links: anonymous, wrongly signed, stripped and expired requests are 403', async () => {
    const { s3, store } = await startStore();
    const forger = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'S3RVER' },
    });
    try {
      await store.client.send(
        new PutObjectCommand({ Bucket: 'outpost', Key: 'blobs/sha256/secret', Body: 'private bytes' }),
      );
      expect((await store.client.send(new ListObjectsV2Command({ Bucket: 'outpost' }))).KeyCount).toBe(1);

      // Anyone on the machine, without the server's key.
      expect((await fetch(`${s3.endpoint}/outpost`)).status).toBe(403);
      expect((await fetch(`${s3.endpoint}/outpost/blobs/sha256/secret`)).status).toBe(403);
      expect(
        (await fetch(`${s3.endpoint}/outpost/blobs/sha256/planted`, { method: 'PUT', body: 'x' })).status,
      ).toBe(403);
      expect((await fetch(`${s3.endpoint}/outpost/blobs/sha256/secret`, { method: 'DELETE' })).status).toBe(
        403,
      );
      await expect(
        forger.send(new GetObjectCommand({ Bucket: 'outpost', Key: 'blobs/sha256/secret' })),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });

      // A presigned link works as given; stripped of its query, tampered with or expired it does not.
      const link = await getSignedUrl(
        store.client,
        new GetObjectCommand({ Bucket: 'outpost', Key: 'blobs/sha256/secret' }),
        { expiresIn: 60 },
      );
      const ok = await fetch(link);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('private bytes');
      expect((await fetch(link.split('?')[0]!)).status).toBe(403);
      expect((await fetch(link.replace('blobs/sha256/secret', 'blobs/sha256/other'))).status).toBe(403);
      expect((await fetch(link.replace(/X-Amz-Signature=[0-9a-f]{4}/, 'X-Amz-Signature=0000'))).status).toBe(
        403,
      );
      const short = await getSignedUrl(
        store.client,
        new GetObjectCommand({ Bucket: 'outpost', Key: 'blobs/sha256/secret' }),
        { expiresIn: 1 },
      );
      await new Promise((r) => setTimeout(r, 2100));
      expect((await fetch(short)).status).toBe(403);
      expect((await store.client.send(new ListObjectsV2Command({ Bucket: 'outpost' }))).KeyCount).toBe(1);
    } finally {
      store.client.destroy();
      forger.destroy();
      await s3.close();
    }
  });
});
