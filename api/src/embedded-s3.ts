import fs from 'node:fs/promises';
import S3rver from 's3rver';

/**
 * The embedded object store for `npm start` without S3 settings: an S3-compatible server on
 * loopback keeping its data under the data dir, so the same S3 code path runs everywhere.
 */
export async function startEmbeddedS3(directory: string, bucket: string, port = 0) {
  await fs.mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1', port, directory, silent: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port: actual } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${actual}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    // Connections still streaming (a paused read of a download to a slow site) would hold close() for
    // as long as they last: they are cut, as the API's own are when it stops.
    close: async () => {
      const closed = server.close();
      (server as unknown as { httpServer?: { closeAllConnections?: () => void } }).httpServer?.closeAllConnections?.();
      await closed;
    },
  };
}
