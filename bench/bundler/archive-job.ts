// One measured build, in a child process so its resident set is the build's alone (the parent
// samples /proc/<pid>/status). BENCH_MODE picks what runs:
//   pipeline  the bundler from registry to stored archive, as the worker runs it: resolve each image,
//             then one pass in which each blob is fetched once, verified, stored content-addressed
//             and streamed into the archive (teeingBlobReader), the archive written once to its key
//   plain     the baseline: GET each blob from the registry and Upload it to S3, nothing verified
// Prints `RESULT <json>` (a JobResult).
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { Upload } from '@aws-sdk/lib-storage';
import { RegistryClient, archiveImageFromRegistry, storeImagesArchive, teeingBlobReader, type Descriptor } from '@outpost/bundler';
import { benchStore } from './common.ts';

export interface JobResult {
  ms: number;
  /** Pipeline phases. */
  resolveMs?: number;
  copyMs?: number;
  archiveMs?: number;
  copiedBytes?: number;
  archive?: { key: string; sha256: string; size: number; tarSize: number };
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
  // Same concurrency, part size and queue as copyBlobsToStore's defaults: the ratio is what the bundler adds.
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const res = await fetch(`http://${registry}/v2/${blob.repository}/blobs/${blob.digest}`);
      if (!res.ok || !res.body) throw new Error(`GET ${blob.digest}: ${res.status}`);
      const body = Readable.fromWeb(res.body as unknown as NodeWebReadableStream<Uint8Array>);
      await new Upload({
        client: store.client,
        params: { Bucket: store.bucket, Key: `plain/${blob.digest.slice(7)}`, Body: body, ContentLength: blob.size },
        partSize: 8 * 1024 * 1024, queueSize: 4,
      }).done();
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  endPhase('copy');
  result = { ms: performance.now() - t0, bytes: blobs.reduce((s, b) => s + b.size, 0) };
} else if (mode === 'pipeline') {
  const references = JSON.parse(process.env.BENCH_REFS!) as string[];
  const client = new RegistryClient({ registry });
  const gzipLevel = process.env.BENCH_GZIP_LEVEL ? Number(process.env.BENCH_GZIP_LEVEL) : undefined;
  const images: Awaited<ReturnType<typeof archiveImageFromRegistry>>[] = [];
  for (const reference of references) images.push(await archiveImageFromRegistry(client, reference));
  const resolvedMs = performance.now() - t0;
  const knob = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
  const archiveTuning = { queueSize: knob('BENCH_ARCHIVE_QUEUE'), partSize: knob('BENCH_ARCHIVE_PART') };
  const clean = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  // As the worker does it (api/src/services/bundles/build.ts): each blob fetched once, stored
  // content-addressed while it flows into the archive, the archive written once to its own key.
  const sources = new Map(images.flatMap((image) => [image.config, ...image.layers].map((d) => [d.digest, { client, repository: image.repository }] as const)));
  const tee = teeingBlobReader({ s3: store, sources });
  const stored = await storeImagesArchive({
    images, s3: store, readBlob: tee.readBlob, key: `archives/bench-${Date.now()}.tgz`,
    ...(gzipLevel !== undefined ? { gzipLevel } : {}), ...clean(archiveTuning),
  });
  const copied = await tee.settled();
  const ms = performance.now() - t0;
  endPhase('archive');
  result = { ms, resolveMs: resolvedMs, copyMs: 0, archiveMs: ms - resolvedMs, copiedBytes: copied.reduce((s, c) => s + c.size, 0), archive: stored };
} else {
  throw new Error(`unknown BENCH_MODE ${mode}`);
}
clearInterval(watcher);
const hwm = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const report: JobResult = { ...result, hwm, startRss, phasePeaks, phaseCpu };
store.client.destroy();
process.stdout.write(`RESULT ${JSON.stringify(report)}\n`);
