import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createScratchPgDatabase } from '../test/db.ts';
import { createPgDb, PG_DEFAULTS } from './client-pg.ts';

// The node-postgres pool must not wait for ever: on a server that hangs, a statement that never
// ends or a transaction left open would otherwise hold the connection (and the request) indefinitely.
describe('node-postgres pool timeouts', () => {
  let scratch: Awaited<ReturnType<typeof createScratchPgDatabase>>;
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
  });
  afterAll(async () => {
    await scratch?.drop();
  });

  it('should have a connection, statement and idle-in-transaction timeout by default', () => {
    expect(PG_DEFAULTS.connectionTimeoutMs).toBeGreaterThan(0);
    expect(PG_DEFAULTS.statementTimeoutMs).toBeGreaterThan(0);
    expect(PG_DEFAULTS.idleInTransactionTimeoutMs).toBeGreaterThan(0);
  });

  it('should cancel a statement that runs past the statement timeout', async () => {
    const h = await createPgDb(scratch.url, { max: 1, statementTimeoutMs: 300 });
    try {
      const started = Date.now();
      await expect(h.db.execute(sql`select pg_sleep(5)`)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3000);
      const answer = (await h.db.execute(
        sql`select current_setting('statement_timeout') as t`,
      )) as unknown as { rows: { t: string }[] };
      const [row] = answer.rows;
      expect(row!.t).toBe('300ms');
    } finally {
      await h.close();
    }
  });

  it('should turn JIT off on every pooled connection (server default is on)', async () => {
    const h = await createPgDb(scratch.url, { max: 2 });
    try {
      const settings = await Promise.all(
        [1, 2].map(
          async () =>
            (
              (await h.db.execute(sql`select current_setting('jit') as jit, pg_sleep(0.05)`)) as unknown as {
                rows: { jit: string }[];
              }
            ).rows[0]!.jit,
        ),
      );
      expect(settings).toEqual(['off', 'off']);
    } finally {
      await h.close();
    }
  });

  it('should give up connecting to a server that does not answer', async () => {
    const net = await import('node:net');
    // A listener that accepts and never speaks: the PostgreSQL handshake waits for ever without a timeout.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const h = await createPgDb(`postgres://x@127.0.0.1:${port}/x`, { max: 1, connectionTimeoutMs: 300 });
    try {
      const started = Date.now();
      await expect(h.db.execute(sql`select 1`)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await h.close().catch(() => {});
      silent.close();
    }
  });
});
