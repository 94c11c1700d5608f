import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy } from '../test-support/allow-list.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { corruptBlob, startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage } from '../test-support/skopeo.ts';

// Its own registry: tampering with stored blobs must not leak into other suites' images.
let registry: TestRegistry;
let layout: string;
let image: TestImage;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  layout = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layout-'));
  image = await buildTestImage({
    dir: layout,
    tag: 'v1',
    layers: [
      { files: { 'etc/integrity': 'the original bytes\n' } },
      { files: { 'big.bin': new Uint8Array(300 * 1024).fill(7) } },
    ],
  });
  await pushImage(layout, 'v1', `${registry.host}/tamper/app:v1`);
  client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
});

afterAll(async () => {
  await registry?.stop();
  if (layout) await fs.rm(layout, { recursive: true, force: true });
});

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) n += chunk.byteLength;
  return n;
}

describe('digest verification against altered storage', () => {
  it('should end a blob stream with digest-mismatch, after passing all bytes, when the stored bytes were altered', async () => {
    const layer = image.layers[1]!;
    await corruptBlob(registry, layer.digest);
    const stream = await client.blob('tamper/app', layer.digest, { size: layer.size });
    const reader = stream.getReader();
    let received = 0;
    let failure: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
      }
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(RegistryError);
    expect((failure as RegistryError).kind).toBe('digest-mismatch');
    expect((failure as RegistryError).message).toContain(`blob ${layer.digest} of tamper/app`);
    // The same length: only the hash can tell.
    expect(received).toBe(layer.size);
  });

  it('should refuse a manifest fetched by digest whose stored bytes were altered', async () => {
    const before = await client.getManifest('tamper/app', image.digest);
    expect(before.digest).toBe(image.digest);
    // Change one hex digit of the first layer's digest: still a manifest the registry serves.
    await corruptBlob(registry, image.digest, (bytes) => {
      const found = bytes.indexOf(image.layers[0]!.digest.slice(7));
      if (found === -1) throw new Error('layer digest not found in the stored manifest');
      const at = found + 5;
      bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
    });
    const error = await client.getManifest('tamper/app', image.digest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).kind).toBe('digest-mismatch');
    // By tag, the registry still announces the original digest, which the bytes no longer match.
    const byTag = await client.getManifest('tamper/app', 'v1').catch((e: unknown) => e);
    expect((byTag as RegistryError).kind).toBe('digest-mismatch');
  });

  it('should still pass an unaltered blob of the same image', async () => {
    const layer = image.layers[0]!;
    expect(await drain(await client.blob('tamper/app', layer.digest, { size: layer.size }))).toBe(layer.size);
  });
});
