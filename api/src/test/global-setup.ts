import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import type { TestProject } from 'vitest/node';
import { startEmbeddedS3 } from '../embedded-s3.ts';

// One real S3-compatible server (s3rver) on loopback for the whole run.
export default async function setup(project: TestProject) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-s3-'));
  const s3 = await startEmbeddedS3(dir, 'outpost-test');
  project.provide('s3Endpoint', s3.endpoint);
  // The store checks signatures: tests sign with the key it was started with.
  project.provide('s3Secret', s3.secretAccessKey);
  return async () => {
    await s3.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3Secret: string;
  }
}
