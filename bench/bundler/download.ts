// Stitched download throughput: the one-file bundle through serveStitched over HTTP on loopback,
// against GETs of the same stored bytes straight from the S3 server. As in the API, images.tgz is
// not a stored object: it is produced from the image's blobs (eight 128 MiB layers and a config) by
// its layout, so the direct baseline GETs those blobs and the content package. Rounds alternate so
// both see the same machine. The verdict is taken with curl as the client on both sides (what a
// coordinator runs; the direct side fetches presigned links, as the API's direct links are); the
// same rounds with a Node client (SDK GetObject / node:http) are printed beside it.
import { execFile } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { putStream } from '../../api/src/lib/blob-store.ts';
import { recordImagesArchive, type Descriptor } from '@outpost/bundler';
import { imageOfDescriptors, randomStream } from '@outpost/bundler/test-support';
import {
  benchStore,
  cpuOf,
  dropBucket,
  fmtMiB,
  median as medianOf,
  MiB,
  spawnTs,
  verdict,
  waitForLine,
} from './common.ts';

export async function benchDownload(
  line: (s: string) => void,
  endpoint: string,
  s3Pid: number,
): Promise<void> {
  const rounds = Number(process.env.BENCH_DOWNLOAD_ROUNDS ?? 5);
  const bucket = 'bench-download';
  const store = benchStore(endpoint, bucket);
  await store.ensureBucket();
  const put = (size: number, seed: string) =>
    putStream(store, randomStream(size, seed), { mediaType: 'application/octet-stream', maxBytes: size });
  const descriptor = (o: { sha256: string; size: number }, mediaType: string): Descriptor => ({
    mediaType,
    digest: `sha256:${o.sha256}`,
    size: o.size,
  });
  const layers: Descriptor[] = [];
  for (let i = 0; i < 8; i++)
    layers.push(
      descriptor(
        await put(128 * MiB, `bench-download-layer-${i}`),
        'application/vnd.oci.image.layer.v1.tar+gzip',
      ),
    );
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const config = descriptor(
    await putStream(store, Readable.from([configBytes]), {
      mediaType: 'application/octet-stream',
      maxBytes: configBytes.length,
    }),
    'application/vnd.oci.image.config.v1+json',
  );
  const image = imageOfDescriptors('registry.example.org/bench/app:1.0', config, layers);
  const images = await recordImagesArchive({ images: [image], s3: store });
  const content = await put(48 * MiB, 'bench-download-content');
  const shared = {
    images: { sha256: images.sha256, size: images.size, layout: images.layout },
    content: { sha256: content.sha256, size: content.size },
  };
  const storedKeys = [content.sha256, config.digest.slice(7), ...layers.map((l) => l.digest.slice(7))].map(
    (hex) => `blobs/sha256/${hex}`,
  );

  const server = spawnTs('download-server.ts', {
    BENCH_S3_ENDPOINT: endpoint,
    BENCH_BUCKET: bucket,
    BENCH_SHARED: JSON.stringify(shared),
    BENCH_KEYS: JSON.stringify(storedKeys),
  });
  try {
    const [, port, totalText, nodeProxyPort] = await waitForLine(server, /READY (\d+) (\d+) (\d+)/);
    const total = Number(totalText);
    const direct = async () => {
      const t0 = performance.now();
      let bytes = 0;
      for (const key of storedKeys) {
        const answer = await store.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        // Drained the way the HTTP client below drains, so only the path differs.
        await new Promise<void>((resolve, reject) =>
          (answer.Body as Readable)
            .on('data', (chunk: Buffer) => (bytes += chunk.length))
            .on('end', resolve)
            .on('error', reject),
        );
      }
      return { ms: performance.now() - t0, bytes };
    };
    const fetchAll = (url: string, expected: number) =>
      new Promise<{ ms: number; bytes: number }>((resolve, reject) => {
        const t0 = performance.now();
        httpGet(url, (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => (bytes += chunk.length));
          res.on('end', () =>
            res.statusCode === 200 && bytes === expected
              ? resolve({ ms: performance.now() - t0, bytes })
              : reject(new Error(`${url}: ${res.statusCode}, ${bytes} of ${expected} bytes`)),
          );
          res.on('error', reject);
        }).on('error', reject);
      });
    // curl, the client a coordinator uses (README: `curl -C -`): the direct side fetches presigned
    // GET links of the stored objects (what the API's direct links are) in one invocation over one
    // connection; the stitched side fetches the bundle. Its CPU (children's times) is the client's.
    const presigned = await Promise.all(
      storedKeys.map((key) =>
        getSignedUrl(store.client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 }),
      ),
    );
    const curl = (urls: string[], expected: number) =>
      new Promise<{ ms: number; bytes: number; clientCpu: number }>((resolve, reject) => {
        const t0 = performance.now();
        const args = urls
          .flatMap((u) => ['-o', '/dev/null', u])
          .map((a) => `'${a}'`)
          .join(' ');
        execFile('bash', ['-c', `curl -sf -w '%{size_download}\\n' ${args} && times`], (error, stdout) => {
          if (error) return reject(error);
          const lines = stdout.trim().split('\n');
          const bytes = lines.filter((l) => /^\d+$/.test(l)).reduce((n, l) => n + Number(l), 0);
          const [user, sys] = lines
            .at(-1)!
            .split(/\s+/)
            .map((t) => {
              const m = /(\d+)m([\d.]+)s/.exec(t)!;
              return Number(m[1]) * 60 + Number(m[2]);
            });
          if (bytes !== expected) return reject(new Error(`curl: ${bytes} of ${expected} bytes`));
          resolve({ ms: performance.now() - t0, bytes, clientCpu: user! + sys! });
        });
      });
    const objectBytes = content.size + config.size + layers.reduce((n, l) => n + l.size, 0);
    const rate = (r: { ms: number; bytes: number }) => r.bytes / MiB / (r.ms / 1000);
    // On a loaded machine wall time moves with the neighbours; the CPU all the processes on the path
    // (s3rver, the download server, this client) spent per GiB does not, so it is printed too.
    // The client's CPU is this process's, unless the run measured its own (curl, a child).
    const cpuPerGiB = async (run: () => Promise<{ ms: number; bytes: number; clientCpu?: number }>) => {
      const before = { s3: cpuOf(s3Pid), server: cpuOf(server.pid!), client: process.cpuUsage() };
      const r = await run();
      const own = process.cpuUsage(before.client);
      const gib = r.bytes / 2 ** 30;
      const parts = {
        s3: (cpuOf(s3Pid) - before.s3) / gib,
        server: (cpuOf(server.pid!) - before.server) / gib,
        client: (r.clientCpu ?? (own.user + own.system) / 1e6) / gib,
      };
      return { ...r, cpu: parts.s3 + parts.server + parts.client, parts };
    };
    const curlRun = (urls: string[], expected: number) => cpuPerGiB(() => curl(urls, expected));
    type Run = Awaited<ReturnType<typeof curlRun>>;
    const fmtShares = (x: Run['parts']) =>
      `s3rver ${x.s3.toFixed(2)} + server ${x.server.toFixed(2)} + client ${x.client.toFixed(2)}`;
    const stitchedUrl = `http://127.0.0.1:${port}/bundle`;

    line(
      `\n3. Stitched download (serveStitched via Hono/@hono/node-server on loopback, ${fmtMiB(total)}: site part + ${fmtMiB(content.size)} content + ${fmtMiB(images.size)} images.tgz from ${layers.length + 1} blobs; direct = GET of those ${storedKeys.length} stored objects)`,
    );
    // Warm-up, unmeasured, of both paths: page cache, connections, and the server's JIT and heap (its
    // first gigabyte costs it up to twice the CPU of the later ones); a running API is warm.
    await curl(presigned, objectBytes);
    await curl([stitchedUrl], total);
    const ratios = { curl: [] as number[], node: [] as number[] };
    const cpu = { direct: [] as Run['parts'][], stitched: [] as Run['parts'][] };
    for (let round = 1; round <= rounds; round++) {
      // The verdict: curl — what a coordinator runs, and the API's direct links are presigned GETs.
      const cd = await curlRun(presigned, objectBytes);
      const cs = await curlRun([stitchedUrl], total);
      ratios.curl.push(rate(cs) / rate(cd));
      cpu.direct.push(cd.parts);
      cpu.stitched.push(cs.parts);
      line(
        `   round ${round}, curl: direct ${rate(cd).toFixed(0)} MiB/s · stitched ${rate(cs).toFixed(0)} MiB/s → ${((rate(cs) / rate(cd)) * 100).toFixed(0)} % (CPU/GiB: direct ${fmtShares(cd.parts)} · stitched ${fmtShares(cs.parts)})`,
      );
      // For comparison: a Node client (SDK GetObject / node:http) costs ~2 s of CPU per GiB, six times
      // curl, and on two cores shared with s3rver and the server that makes the whole path CPU-bound.
      const dRun = await cpuPerGiB(direct);
      const sRun = await cpuPerGiB(() => fetchAll(stitchedUrl, total));
      ratios.node.push(rate(sRun) / rate(dRun));
      // BENCH_DOWNLOAD_PROXIES=0 leaves the two plain proxies out (e.g. to profile the stitched path alone).
      const proxies = process.env.BENCH_DOWNLOAD_PROXIES !== '0';
      const nodePipe = proxies
        ? rate(await fetchAll(`http://127.0.0.1:${nodeProxyPort}/`, objectBytes))
        : NaN;
      const web = proxies ? rate(await fetchAll(`http://127.0.0.1:${port}/proxy/web`, objectBytes)) : NaN;
      const d = rate(dRun);
      line(
        `      Node client: direct ${d.toFixed(0)} MiB/s · stitched ${rate(sRun).toFixed(0)} MiB/s → ${((rate(sRun) / d) * 100).toFixed(0)} % (CPU/GiB: direct ${fmtShares(dRun.parts)} · stitched ${fmtShares(sRun.parts)})${proxies ? ` · plain proxies in the same server: Node pipe ${((nodePipe / d) * 100).toFixed(0)} %, Hono web stream ${((web / d) * 100).toFixed(0)} %` : ''}`,
      );
    }
    const median = medianOf(ratios.curl);
    line(
      `   stitched ÷ direct with curl, median ${(median * 100).toFixed(1)} % (target ≥ 90 %) → ${verdict(median >= 0.9)}; with the Node client, median ${(medianOf(ratios.node) * 100).toFixed(1)} %`,
    );
    const meanShares = (xs: Run['parts'][]) => ({
      s3: xs.reduce((n, x) => n + x.s3, 0) / xs.length,
      server: xs.reduce((n, x) => n + x.server, 0) / xs.length,
      client: xs.reduce((n, x) => n + x.client, 0) / xs.length,
    });
    line(
      `   CPU per GiB with curl, mean: direct ${fmtShares(meanShares(cpu.direct))} · stitched ${fmtShares(meanShares(cpu.stitched))}`,
    );
  } finally {
    server.kill('SIGTERM');
    await dropBucket(store);
    store.client.destroy();
  }
}
