import { inject } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createObjectStore, type ObjectStore } from '../lib/object-store.ts';

/** A bucket of its own on the run's S3 server, so that listing it sees no other suite's objects. */
export async function scratchStore(name: string): Promise<ObjectStore> {
  const store = createObjectStore({
    endpoint: inject('s3Endpoint'), bucket: `${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER',
  });
  await store.ensureBucket();
  return store;
}

/** The keys stored under `prefix`. */
export async function storedKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const res = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}
