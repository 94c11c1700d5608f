import http from 'node:http';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import {
  BLOB_PREFIX,
  blobKey,
  deleteQuietly,
  headSize,
  isNotFound,
  isStoreUnavailable,
  storeFailure,
} from './object-store.ts';
import { testS3Client, testStore } from '../test-support/s3.ts';

const servers: (net.Server | http.Server)[] = [];
const sockets = new Set<net.Socket>();
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(server: net.Server | http.Server): Promise<string> {
  servers.push(server);
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** An S3 client of the run's S3 server, or of `endpoint`, that does not retry and gives up after `idleMs`. */
function client(endpoint = inject('s3Endpoint'), idleMs = 10_000): S3Client {
  return testS3Client({
    endpoint,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2_000, socketTimeout: idleMs },
  });
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

const head = (c: S3Client, bucket = 'outpost-test') =>
  c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nothing/here' }));

describe('blobKey', () => {
  it('should place a sha256 digest under the blob prefix, and refuse anything else', () => {
    const hex = 'ab'.repeat(32);
    expect(blobKey(`sha256:${hex}`)).toBe(`${BLOB_PREFIX}${hex}`);
    expect(blobKey(`sha256:${hex}`, 'p/')).toBe(`p/${hex}`);
    for (const bad of [hex, `sha256:${hex.toUpperCase()}`, `sha512:${hex}`, 'sha256:../etc/passwd', ''])
      expect(() => blobKey(bad), bad).toThrow(TypeError);
  });
});

describe('headSize, deleteQuietly and isNotFound on the real S3 server', () => {
  it('should read a size, null for nothing, and delete without complaint', async () => {
    const { s3, prefix } = testStore();
    const key = `${prefix}object`;
    expect(await headSize(s3, key)).toBeNull();
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'twelve bytes' }));
    expect(await headSize(s3, key)).toBe(12);
    await deleteQuietly(s3, key);
    expect(await headSize(s3, key)).toBeNull();
    await deleteQuietly(s3, key); // gone already: still quiet
    await deleteQuietly({ client: s3.client, bucket: 'no-such-bucket-here' }, key);
    expect(isNotFound(await failureOf(head(s3.client)))).toBe(true);
    expect(isNotFound(new Error('NotFound'))).toBe(false);
    s3.client.destroy();
  });
});

describe('storeFailure', () => {
  it('should take a refused connection for the store unreachable, and not a database connection refused the same way', async () => {
    const port = await closedPort();
    const c = client(`http://127.0.0.1:${port}`);
    const storeError = await failureOf(head(c));
    c.destroy();
    expect(storeFailure(storeError)).toBe('unreachable');
    expect(isStoreUnavailable(storeError)).toBe(true);

    // What a database driver (pg) throws when PostgreSQL is down: the socket's own error.
    const socketError = await new Promise<Error>((resolve) =>
      net.connect(port, '127.0.0.1').once('error', resolve),
    );
    expect((socketError as { code?: string }).code).toBe('ECONNREFUSED');
    expect(storeFailure(socketError)).toBeNull();
    expect(isStoreUnavailable(socketError)).toBe(false);
  });

  it('should take a store that accepts the connection and then says nothing for a timeout', async () => {
    const quiet = net.createServer(() => undefined); // holds every connection open, silent
    const c = client(await listen(quiet), 300);
    const error = await failureOf(head(c));
    c.destroy();
    expect(storeFailure(error)).toBe('timeout');
    expect(isStoreUnavailable(error)).toBe(true);
  });

  it("should take the store's refusal (a bucket that does not exist) as refused, not unavailable", async () => {
    const c = client();
    const error = await failureOf(
      c.send(new CreateBucketCommand({ Bucket: 'outpost-test' })).then(() => head(c, 'no-such-bucket-here')),
    );
    c.destroy();
    expect(storeFailure(error)).toBe('refused');
    expect(isStoreUnavailable(error)).toBe(false);
  });

  it('should take a 5xx answer as the server failing', async () => {
    // s3rver cannot be made to fail on demand: a plain HTTP server answers 503 as S3 does under load.
    const busy = http.createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    });
    const c = client(await listen(busy));
    const error = await failureOf(c.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' })));
    c.destroy();
    expect(storeFailure(error)).toBe('server');
    expect(isStoreUnavailable(error)).toBe(true);
  });

  it('should take nothing else for the store, whatever its message says', () => {
    for (const e of [
      new Error('socket hang up'),
      new Error('connect ECONNREFUSED 127.0.0.1:5432'),
      Object.assign(new Error('timeout'), { name: 'TimeoutError' }),
      Object.assign(new Error('NoSuchBucket'), { code: 'ECONNRESET' }),
      null,
      undefined,
      'ECONNREFUSED',
    ])
      expect(storeFailure(e), String(e)).toBeNull();
  });
});
