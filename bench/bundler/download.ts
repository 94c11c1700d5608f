// Stitched download throughput: the one-file bundle through serveStitched over HTTP on loopback,
// against GetObject streams of the same stored bytes straight from the S3 server. As in the API,
// images.tgz is not a stored object: it is produced from the image's blobs (eight 128 MiB layers
// and a config) by its layout, so the direct baseline GETs those blobs and the content package.
// Rounds alternate so both see the same machine.
import { get as httpGet } from 'node:http';
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { putStream } from '../../api/src/lib/blob-store.ts';
import { recordImagesArchive, type Descriptor } from '@outpost/bundler';
import { imageOfDescriptors, randomStream } from '@outpost/bundler/test-support';
import { benchStore, cpuOf, dropBucket, fmtMiB, MiB, spawnTs, verdict, waitForLine } from './common.ts';

export async function benchDownload(line: (s: string) => void, endpoint: string, s3Pid: number): Promise<void> {
  const rounds = Number(process.env.BENCH_DOWNLOAD_ROUNDS ?? 5);
  const bucket = 'bench-download';
  const store = benchStore(endpoint, bucket);
  await store.ensureBucket();
  const put = (size: number, seed: string) => putStream(store, randomStream(size, seed), { mediaType: 'application/octet-stream', maxBytes: size });
  const descriptor = (o: { sha256: string; size: number }, mediaType: string): Descriptor => ({ mediaType, digest: `sha256:${o.sha256}`, size: o.size });
  const layers: Descriptor[] = [];
  for (let i = 0; i < 8; i++) layers.push(descriptor(await put(128 * MiB, `bench-download-layer-${i}`), 'application/vnd.oci.image.layer.v1.tar+gzip'));
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const config = descriptor(await putStream(store, Readable.from([configBytes]), { mediaType: 'application/octet-stream', maxBytes: configBytes.length }), 'application/vnd.oci.image.config.v1+json');
  const image = imageOfDescriptors('registry.example.org/bench/app:1.0', config, layers);
  const images = await recordImagesArchive({ images: [image], s3: store });
  const content = await put(48 * MiB, 'bench-download-content');
  const shared = { images: { sha256: images.sha256, size: images.size, layout: images.layout }, content: { sha256: content.sha256, size: content.size } };
  const storedKeys = [content.sha256, config.digest.slice(7), ...layers.map((l) => l.digest.slice(7))].map((hex) => `blobs/sha256/${hex}`);

  const server = spawnTs('download-server.ts', { BENCH_S3_ENDPOINT: endpoint, BENCH_BUCKET: bucket, BENCH_SHARED: JSON.stringify(shared), BENCH_KEYS: JSON.stringify(storedKeys) });
  try {
    const [, port, totalText, nodeProxyPort] = await waitForLine(server, /READY (\d+) (\d+) (\d+)/);
    const total = Number(totalText);
    const direct = async () => {
      const t0 = performance.now();
      let bytes = 0;
      for (const key of storedKeys) {
        const answer = await store.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        // Drained the way the HTTP client below drains, so only the path differs.
        await new Promise<void>((resolve, reject) => (answer.Body as Readable).on('data', (chunk: Buffer) => (bytes += chunk.length)).on('end', resolve).on('error', reject));
      }
      return { ms: performance.now() - t0, bytes };
    };
    const fetchAll = (url: string, expected: number) => new Promise<{ ms: number; bytes: number }>((resolve, reject) => {
      const t0 = performance.now();
      httpGet(url, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => (res.statusCode === 200 && bytes === expected ? resolve({ ms: performance.now() - t0, bytes }) : reject(new Error(`${url}: ${res.statusCode}, ${bytes} of ${expected} bytes`))));
        res.on('error', reject);
      }).on('error', reject);
    });
    const objectBytes = content.size + config.size + layers.reduce((n, l) => n + l.size, 0);
    const rate = (r: { ms: number; bytes: number }) => (r.bytes / MiB) / (r.ms / 1000);
    // On a loaded machine wall time moves with the neighbours; the CPU all the processes on the path
    // (s3rver, the download server, this client) spent per GiB does not, so it is printed too.
    const cpuPerGiB = async (run: () => Promise<{ ms: number; bytes: number }>) => {
      const before = { s3: cpuOf(s3Pid), server: cpuOf(server.pid!), client: process.cpuUsage() };
      const r = await run();
      const client = process.cpuUsage(before.client);
      const gib = r.bytes / 2 ** 30;
      const s3 = (cpuOf(s3Pid) - before.s3) / gib;
      const srv = (cpuOf(server.pid!) - before.server) / gib;
      const cli = (client.user + client.system) / 1e6 / gib;
      return { ...r, cpu: s3 + srv + cli, parts: { s3, server: srv, client: cli } };
    };
    const cpuSums = { direct: 0, stitched: 0 };
    const shares = { direct: { s3: 0, server: 0, client: 0 }, stitched: { s3: 0, server: 0, client: 0 } };
    const addShares = (to: typeof shares.direct, from: typeof shares.direct) => { for (const k of ['s3', 'server', 'client'] as const) to[k] += from[k] / rounds; };

    line(`\n3. Stitched download (serveStitched via Hono/@hono/node-server on loopback, ${fmtMiB(total)}: site part + ${fmtMiB(content.size)} content + ${fmtMiB(images.size)} images.tgz from ${layers.length + 1} blobs; direct = GetObject of those ${storedKeys.length} objects)`);
    await direct(); // warm-up: page cache, connections
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const dRun = await cpuPerGiB(direct);
      const d = rate(dRun);
      // BENCH_DOWNLOAD_PROXIES=0 leaves the two plain proxies out (e.g. to profile the stitched path alone).
      const proxies = process.env.BENCH_DOWNLOAD_PROXIES !== '0';
      const node = proxies ? rate(await fetchAll(`http://127.0.0.1:${nodeProxyPort}/`, objectBytes)) : NaN;
      const web = proxies ? rate(await fetchAll(`http://127.0.0.1:${port}/proxy/web`, objectBytes)) : NaN;
      const sRun = await cpuPerGiB(() => fetchAll(`http://127.0.0.1:${port}/bundle`, total));
      const s = rate(sRun);
      cpuSums.direct += dRun.cpu;
      cpuSums.stitched += sRun.cpu;
      addShares(shares.direct, dRun.parts);
      addShares(shares.stitched, sRun.parts);
      ratios.push(s / d);
      line(`   round ${round}: direct GetObject ${d.toFixed(0)} MiB/s · stitched ${s.toFixed(0)} MiB/s → ${(s / d * 100).toFixed(0)} % (CPU ${dRun.cpu.toFixed(1)} vs ${sRun.cpu.toFixed(1)} s/GiB) · for scale, plain proxies in the same server: Node pipe ${node.toFixed(0)} MiB/s (${(node / d * 100).toFixed(0)} %), Hono web stream ${web.toFixed(0)} MiB/s (${(web / d * 100).toFixed(0)} %)`);
    }
    const median = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
    line(`   stitched ÷ direct, median ${(median * 100).toFixed(1)} % (target ≥ 90 %) → ${verdict(median >= 0.9)}`);
    line(`   CPU on the whole path per GiB, mean: direct ${(cpuSums.direct / rounds).toFixed(2)} s, stitched ${(cpuSums.stitched / rounds).toFixed(2)} s (the stitched path adds a process hop)`);
    const fmtShares = (x: typeof shares.direct) => `s3rver ${x.s3.toFixed(2)} + server ${x.server.toFixed(2)} + client ${x.client.toFixed(2)}`;
    line(`   per process: direct ${fmtShares(shares.direct)} · stitched ${fmtShares(shares.stitched)}`);
  } finally {
    server.kill('SIGTERM');
    await dropBucket(store);
    store.client.destroy();
  }
}
