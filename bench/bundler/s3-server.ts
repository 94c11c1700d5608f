// The S3-compatible server for the bundler benchmark (s3rver, as in the tests and `npm start`), in a
// process of its own so that its work is not counted in the RSS of the build being measured and its
// event loop does not share one with the client. Prints `READY <port>`; stops on SIGTERM.
import fs from 'node:fs';
import { startEmbeddedS3 } from '../../api/src/embedded-s3.ts';

const dir = process.env.BENCH_S3_DIR!;
// The bench's clients sign with this fixed key (the store checks signatures as in npm start).
const s3 = await startEmbeddedS3(dir, 'outpost-bench', { secretAccessKey: 'S3RVER' });
process.stdout.write(`READY ${new URL(s3.endpoint).port}\n`);
process.on('SIGTERM', async () => {
  await s3.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
