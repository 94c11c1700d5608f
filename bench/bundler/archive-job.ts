// One measured build, in a child process so its resident set is the build's alone (the parent
// samples /proc/<pid>/status). BENCH_MODE picks what runs:
//   pipeline  the bundler from registry to a ready archive, as the worker runs it: resolve each image,
//             then one pass in which each blob is fetched once, verified, stored content-addressed
//             (teeingBlobReader) and run through the archive for its sha256, CRC and layout
//             (recordImagesArchive; the archive is served from the blobs, not stored)
//   plain     the baseline: GET each blob from the registry and PUT it to S3 streamed (one PutObject
//             with its Content-Length, the fastest plain copy here), nothing verified
// Prints `RESULT <json>` (a JobResult).
import { guardedFetch } from '@outpost/bundler/guarded-fetch';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  RegistryClient,
  archiveImageFromRegistry,
  recordImagesArchive,
  teeingBlobReader,
  type Descriptor,
} from '@outpost/bundler';
import { benchStore } from './common.ts';

export interface JobResult {
  ms: number;
  /** Pipeline phases. */
  resolveMs?: number;
  copyMs?: number;
  archiveMs?: number;
  copiedBytes?: number;
  archive?: { sha256: string; size: number; tarSize: number };
  bytes?: number;
  /** VmHWM at the end, VmRSS after the imports. */
  hwm: number;
  startRss: number;
  /** Peak VmRSS and CPU seconds by phase (`copy`, `archive`), as the job saw them itself. */
  phasePeaks: Record<string, number>;
  phaseCpu: Record<string, number>;
}

const mode = process.env.BENCH_MODE;
const store = benchStore(process.env.BENCH_S3_ENDPOINT!, process.env.BENCH_BUCKET!);
await store.ensureBucket();
const registry = process.env.BENCH_REGISTRY!;
// Our own view of the resident set by phase (the parent's sampling is the measurement).
let phasePeak = 0;
const phasePeaks: Record<string, number> = {};
const selfRss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const startRss = selfRss();
const watcher = setInterval(() => (phasePeak = Math.max(phasePeak, selfRss())), 20);
const phaseCpu: Record<string, number> = {};
let cpuMark = process.cpuUsage();
const endPhase = (name: string) => {
  phasePeaks[name] = Math.max(phasePeak, selfRss());
  phasePeak = 0;
  const used = process.cpuUsage(cpuMark);
  phaseCpu[name] = (used.user + used.system) / 1e6;
  cpuMark = process.cpuUsage();
};
const t0 = performance.now();
let result: Omit<JobResult, 'hwm' | 'startRss' | 'phasePeaks' | 'phaseCpu'>;

if (mode === 'plain') {
  const blobs = JSON.parse(process.env.BENCH_BLOBS!) as (Descriptor & { repository: string })[];
  const queue = [...blobs];
  // Same concurrency as copyBlobsToStore's default, and the same kind of upload the bundler makes.
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const res = await fetch(`http://${registry}/v2/${blob.repository}/blobs/${blob.digest}`);
      if (!res.ok || !res.body) throw new Error(`GET ${blob.digest}: ${res.status}`);
      const body = Readable.fromWeb(res.body as unknown as NodeWebReadableStream<Uint8Array>);
      await store.client.send(
        new PutObjectCommand({
          Bucket: store.bucket,
          Key: `plain/${blob.digest.slice(7)}`,
          Body: body,
          ContentLength: blob.size,
        }),
      );
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  endPhase('copy');
  result = { ms: performance.now() - t0, bytes: blobs.reduce((s, b) => s + b.size, 0) };
} else if (mode === 'pipeline') {
  const references = JSON.parse(process.env.BENCH_REFS!) as string[];
  // The bench's own loopback registry, allowed as OUTPOST_REGISTRY_ALLOW_INSECURE would allow it, through the production fetch.
  const client = new RegistryClient({ registry, allowInsecure: [registry], fetch: guardedFetch([registry]) });
  const images: Awaited<ReturnType<typeof archiveImageFromRegistry>>[] = [];
  for (const reference of references) images.push(await archiveImageFromRegistry(client, reference));
  const resolvedMs = performance.now() - t0;
  // As the worker does it (api/src/services/bundles/build.ts): each blob fetched once and stored
  // content-addressed while the archive's bytes are run through for its sha256; the archive is not stored.
  const sources = new Map(
    images.flatMap((image) =>
      [image.config, ...image.layers].map(
        (d) => [d.digest, { client, repository: image.repository }] as const,
      ),
    ),
  );
  const tee = teeingBlobReader({ s3: store, sources });
  const recorded = await recordImagesArchive({ images, readBlob: tee.readBlob });
  const stored = { sha256: recorded.sha256, size: recorded.size, tarSize: recorded.tarSize };
  const copied = await tee.settled();
  const ms = performance.now() - t0;
  endPhase('archive');
  result = {
    ms,
    resolveMs: resolvedMs,
    copyMs: 0,
    archiveMs: ms - resolvedMs,
    copiedBytes: copied.reduce((s, c) => s + c.size, 0),
    archive: stored,
  };
} else {
  throw new Error(`unknown BENCH_MODE ${mode}`);
}
clearInterval(watcher);
const hwm = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const report: JobResult = { ...result, hwm, startRss, phasePeaks, phaseCpu };
store.client.destroy();
process.stdout.write(`RESULT ${JSON.stringify(report)}\n`);
