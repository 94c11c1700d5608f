import net from 'node:net';
import { inject } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createObjectStore, type ObjectStore, type ObjectStoreConfig } from '../lib/object-store.ts';

/** A client of the run's S3 server (its key from the global setup); `o` names the bucket and overrides the rest. */
export function runStore(o: Partial<ObjectStoreConfig> & { bucket: string }): ObjectStore {
  return createObjectStore({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: inject('s3Secret'),
    ...o,
  });
}

/** A bucket name of its own, so that listing it sees no other suite's objects. */
export const scratchBucket = (name: string) =>
  `${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** A bucket of its own on the run's S3 server, created. */
export async function scratchStore(name: string): Promise<ObjectStore> {
  const store = runStore({ bucket: scratchBucket(name) });
  await store.ensureBucket();
  return store;
}

/** The keys stored under `prefix`. */
export async function storedKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const res = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

/**
 * A network path to the store that goes quiet, as a stalled connection does (a dropped route, a NAT
 * that forgot the flow): connections are forwarded to `upstream` until `passRequests` requests (of
 * `method` only, when given) have gone through; from the next one on, nothing more is forwarded on
 * any connection and nothing is closed. No S3 server behaves like this on its own, hence the stand-in.
 */
export async function stallingPath(
  upstream: string,
  o: { passRequests: number; method?: string },
): Promise<{ endpoint: string; stalled: () => boolean; close: () => Promise<void> }> {
  const target = new URL(upstream);
  const sockets = new Set<net.Socket>();
  let passed = 0;
  let stalled = false;
  const server = net.createServer((client) => {
    const origin = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(origin);
    client.on('data', (chunk: Buffer) => {
      const method = /^([A-Z]+) \//.exec(chunk.toString('latin1', 0, 16))?.[1];
      if (!stalled && method && (!o.method || method === o.method) && passed++ >= o.passRequests)
        stalled = true;
      if (!stalled) origin.write(chunk);
    });
    origin.on('data', (chunk: Buffer) => {
      if (!stalled) client.write(chunk);
    });
    for (const s of [client, origin]) s.on('error', () => undefined).on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stalled: () => stalled,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
