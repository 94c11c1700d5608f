import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import { verifySigV4 } from './lib/sigv4.ts';

/**
 * The embedded object store for `npm start` without S3 settings: an S3-compatible server on
 * loopback keeping its data under the data dir, so the same S3 code path runs everywhere.
 *
 * s3rver answers anyone and does not check Version 4 signatures, so it never listens itself: its
 * request handler runs behind a front of ours that checks every request's signature (the server's
 * own S3 client, or a presigned link it made) with a key generated at each start, and answers
 * 403 AccessDenied to anything else — anonymous listing, PUT and DELETE, a link stripped of its
 * query, tampered with or expired.
 */
export async function startEmbeddedS3(
  directory: string,
  bucket: string,
  options: { port?: number; /** Default: random at each start. */ secretAccessKey?: string } = {},
) {
  const port = options.port ?? 0;
  await fs.mkdir(directory, { recursive: true });
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  await (s3rver as unknown as { configureBuckets(): Promise<void> }).configureBuckets();
  const handle = s3rver.callback();
  // s3rver only knows its built-in key id; the secret that matters is checked here.
  const credentials = {
    accessKeyId: 'S3RVER',
    secretAccessKey: options.secretAccessKey ?? randomBytes(32).toString('base64url'),
  };
  const server = http.createServer((req, res) => {
    const verdict = verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
      credentials,
    );
    if (verdict.ok) return void handle(req, res);
    res.writeHead(403, { 'content-type': 'application/xml', connection: 'close' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
    );
    // Whatever body was being sent is not read.
    req.resume();
  });
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(port, '127.0.0.1', resolve),
  );
  const actual = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${actual}`,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    // Connections still streaming (a paused read of a download to a slow site) would hold close() for
    // as long as they last: they are cut, as the API's own are when it stops.
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
