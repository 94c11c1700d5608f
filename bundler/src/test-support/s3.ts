import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { ObjectStoreTarget } from '../archive/object-store.ts';

// Provided by the bundler's vitest set-up (./global-setup.ts), as the API's set-up provides its own.
declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3Secret: string;
  }
}

/** A client of the run's S3-compatible server (s3rver, its key from the set-up); `over` changes the rest. */
export function testS3Client(over: S3ClientConfig = {}): S3Client {
  return new S3Client({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: inject('s3Secret') },
    ...over,
  });
}

/**
 * The run's S3-compatible server (s3rver), and a key prefix of the suite's own so that what is
 * "already stored" does not depend on other suites.
 */
export function testStore(): { s3: ObjectStoreTarget; prefix: string } {
  const client = testS3Client({
    // The default checksum mode corrupts streamed bodies on s3rver (docs STACK.md).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    s3: { client, bucket: 'outpost-test' },
    prefix: `test-${randomBytes(4).toString('hex')}/blobs/sha256/`,
  };
}
