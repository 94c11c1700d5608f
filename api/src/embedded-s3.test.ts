import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startEmbeddedS3 } from './embedded-s3.ts';
import { createObjectStore } from './lib/object-store.ts';

const dirs: string[] = [];
afterAll(async () => { await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))); });

describe('embedded object store', () => {
  it('should stop at once while a read is still streaming (a download to a slow site), cutting it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-embedded-s3-'));
    dirs.push(dir);
    const s3 = await startEmbeddedS3(dir, 'outpost');
    const store = createObjectStore({ endpoint: s3.endpoint, bucket: 'outpost', region: 'us-east-1', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
    try {
      // Larger than the socket buffers between the two, so the answer is still being sent while paused.
      await store.client.send(new PutObjectCommand({ Bucket: 'outpost', Key: 'big', Body: Buffer.alloc(48 * 2 ** 20, 7) }));
      const answer = await store.client.send(new GetObjectCommand({ Bucket: 'outpost', Key: 'big' }));
      const body = answer.Body as Readable;
      const cut = new Promise<string>((resolve) => body.once('error', () => resolve('error')).once('close', () => resolve('close')));
      body.pause();
      const started = Date.now();
      await s3.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      // The reader sees its stream end without the rest (it would resume with a Range elsewhere).
      body.resume();
      let rest = 0;
      body.on('data', (chunk: Buffer) => { rest += chunk.length; });
      expect(await cut).toMatch(/error|close/);
      expect(rest).toBeLessThan(48 * 2 ** 20);
    } finally {
      store.client.destroy();
    }
  });
});
