import { inject } from 'vitest';
import { createApp } from '../app.ts';
import type { DbHandle } from '../db/types.ts';
import { createObjectStore } from '../lib/object-store.ts';
import type { Logger } from '../lib/logger.ts';

export interface LogLine { level: string; msg: string; fields?: Record<string, unknown> }

/** The real app on a real database and the run's real S3 server; logs captured for secret checks. */
export function makeTestApp(handle: DbHandle, opts: { maxBodyBytes?: number } = {}) {
  const logs: LogLine[] = [];
  const logger: Logger = (level, msg, fields) => { logs.push({ level, msg, fields }); };
  const objectStore = createObjectStore({
    endpoint: inject('s3Endpoint'), bucket: 'outpost-test', region: 'us-east-1',
    accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER',
  });
  const app = createApp({ database: () => handle.db, objectStore, logger, maxBodyBytes: opts.maxBodyBytes });
  return { app, logs, objectStore };
}
