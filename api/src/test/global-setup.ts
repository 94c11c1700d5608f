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
  return async () => {
    await s3.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext { s3Endpoint: string }
}
