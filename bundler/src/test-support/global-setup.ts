import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import S3rver from 's3rver';
import type { TestProject } from 'vitest/node';

// The bundler's own test set-up (vitest project "bundler"): one S3-compatible server (s3rver) on
// loopback for the run, started here rather than by the API's set-up, since the bundler sits below
// the API. s3rver knows one key pair, S3RVER/S3RVER.
export default async function setup(project: TestProject) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-bundler-s3-'));
  const s3rver = new S3rver({
    directory: dir,
    address: '127.0.0.1',
    port: 0,
    silent: true,
    configureBuckets: [{ name: 'outpost-test', configs: [] }],
  });
  const server = await s3rver.run();
  project.provide('s3Endpoint', `http://127.0.0.1:${server.port}`);
  project.provide('s3Secret', 'S3RVER');
  return async () => {
    await s3rver.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
}
