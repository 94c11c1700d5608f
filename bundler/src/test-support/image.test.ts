import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { buildLargeTestImage, buildTestImage } from './image.ts';

const run = promisify(execFile);
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-image-test-'));
});
afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('buildTestImage', () => {
  it('should give the same digests for the same input, and diff_ids of the uncompressed tars', async () => {
    const layers = [{ files: { 'etc/a.conf': 'a=1\n', 'bin/tool': 'x' } }];
    const one = await buildTestImage({ dir: path.join(tmp, 'one'), tag: 't', layers });
    const two = await buildTestImage({ dir: path.join(tmp, 'two'), tag: 't', layers });
    expect(two.digest).toBe(one.digest);

    const config = JSON.parse(
      await fs.readFile(path.join(one.dir, 'blobs/sha256', one.config.digest.slice(7)), 'utf8'),
    );
    const tar = createReadStream(path.join(one.dir, 'blobs/sha256', one.layers[0]!.digest.slice(7))).pipe(
      createGunzip(),
    );
    const hash = createHash('sha256');
    for await (const chunk of tar) hash.update(chunk as Buffer);
    expect(config.rootfs.diff_ids).toEqual(['sha256:' + hash.digest('hex')]);
  });

  it('should make a layout skopeo reads', async () => {
    const image = await buildTestImage({
      dir: path.join(tmp, 'inspect'),
      tag: 'v1',
      layers: [{ files: { x: 'y' } }],
    });
    const { stdout } = await run('skopeo', ['inspect', `oci:${image.dir}:v1`]);
    const inspected = JSON.parse(stdout);
    expect(inspected.Digest).toBe(image.digest);
    expect(inspected.Layers).toEqual([image.layers[0]!.digest]);
  });
});

describe('buildLargeTestImage', () => {
  it('should stream a layer of the requested size of seeded random bytes, the same for the same seed', async () => {
    const size = 3 * 1024 * 1024 + 17;
    const a = await buildLargeTestImage({ dir: path.join(tmp, 'large-a'), layerSize: size, seed: 's' });
    const b = await buildLargeTestImage({ dir: path.join(tmp, 'large-b'), layerSize: size, seed: 's' });
    expect(b.digest).toBe(a.digest);
    // Random bytes do not compress: the gzip layer is a little larger than the file.
    expect(a.layers[0]!.size).toBeGreaterThan(size);
    const { stdout } = await run('tar', [
      '-tvzf',
      path.join(a.dir, 'blobs/sha256', a.layers[0]!.digest.slice(7)),
    ]);
    expect(stdout).toContain(String(size));
    expect(stdout).toContain('data/random-0.bin');
  });
});
