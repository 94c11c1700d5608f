// What the web's end-to-end tests need from the API's side, exported as `@outpost/api/test-support`
// so the web reaches API code only through declared exports: a scratch PostgreSQL database for the
// real server to run on, with a client for the rows no HTTP call can set (an expired invite), and
// the receipt code a site's install prints, made with the site's own sealed key; the receipt vectors and the zip builder.
import pg from 'pg';
import { createSecretBox } from '../lib/secret-box.ts';
import { encodeReceiptCode, type ReceiptOutcome } from '../services/receipts/code.ts';
import { createScratchPgDatabase } from './db.ts';

export { receiptVectors } from './receipt-vectors.ts';
export { zipOf, type ZipOptions } from './zip.ts';

export interface ScratchDatabase {
  url: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]>;
  /** The code the site's install script prints, made with the site's receipt key as it holds it. */
  siteReceiptCode(input: {
    secretKey: Uint8Array;
    siteId: string;
    version: string;
    outcome?: ReceiptOutcome;
  }): Promise<string>;
  /** Closes the client and drops the database. */
  drop(): Promise<void>;
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const scratch = await createScratchPgDatabase();
  const client = new pg.Client({ connectionString: scratch.url });
  await client.connect();
  const query: ScratchDatabase['query'] = async (text, params) => (await client.query(text, params)).rows;
  return {
    url: scratch.url,
    query,
    async siteReceiptCode({ secretKey, siteId, version, outcome = 'installed' }) {
      const [row] = await query<{ receipt_key_sealed: string }>(
        'select receipt_key_sealed from sites where id = $1',
        [siteId],
      );
      const box = await createSecretBox(secretKey);
      const key = await box.open(row!.receipt_key_sealed, `receipt:${siteId}`);
      return encodeReceiptCode({ key, siteId, version, outcome, at: new Date() });
    },
    async drop() {
      await client.end();
      await scratch.drop();
    },
  };
}
