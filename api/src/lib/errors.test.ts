import net from 'node:net';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { isStoreUnavailable } from './errors.ts';
import { createObjectStore } from './object-store.ts';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('isStoreUnavailable', () => {
  it("should know the object store's connection failure, and not take the database's for it", async () => {
    const port = await closedPort();
    const store = createObjectStore({
      endpoint: `http://127.0.0.1:${port}`,
      bucket: 'b',
      region: 'us-east-1',
      accessKeyId: 'k',
      secretAccessKey: 's',
    });
    const storeError = await store.ping().then(
      () => null,
      (e: unknown) => e,
    );
    store.client.destroy();
    expect(storeError).not.toBeNull();
    expect(isStoreUnavailable(storeError)).toBe(true);

    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    const dbError = await client.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect((dbError as { code?: string }).code).toBe('ECONNREFUSED');
    expect(isStoreUnavailable(dbError)).toBe(false);
    expect(isStoreUnavailable(new Error('a bug of ours'))).toBe(false);
    expect(isStoreUnavailable(null)).toBe(false);
  });
});
