// What the bundler benchmark's processes share: the S3 client settings, the child-process plumbing
// and the RSS sampler.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createObjectStore, type ObjectStore } from '../../api/src/lib/object-store.ts';

export function benchStore(endpoint: string, bucket: string): ObjectStore {
  return createObjectStore({
    endpoint,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  });
}

/** Empties and removes a bucket (the benchmark's buckets hold a few dozen keys, one page). */
export async function dropBucket(store: ObjectStore): Promise<void> {
  for (;;) {
    const page = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket }));
    for (const o of page.Contents ?? [])
      await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: o.Key! }));
    if (!page.IsTruncated) break;
  }
  await store.client.send(new DeleteBucketCommand({ Bucket: store.bucket })).catch(() => undefined);
}

/** Runs a TypeScript file of this folder as `node --import tsx`, so the child's pid is the Node process itself. */
export function spawnTs(file: string, env: Record<string, string>): ChildProcess {
  const profiled = (process.env.BENCH_PROF_FILES ?? 'archive-job.ts').split(',').includes(file);
  return spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROF && profiled ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []),
      '--import',
      'tsx',
      path.join(import.meta.dirname, file),
    ],
    {
      env: {
        ...process.env,
        ...env,
        NODE_OPTIONS: '--openssl-legacy-provider',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
}

/** The first stdout line matching `pattern`, or a rejection when the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (b: Buffer) => {
      buffered += b.toString();
      const m = pattern.exec(buffered);
      if (m) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        resolve(m);
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`${child.spawnargs.at(-1)} exited with ${code} before printing ${pattern}`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

export const MiB = 1024 * 1024;

export function rssOf(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  } catch {
    return 0; // the process has just exited
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuOf(pid: number): number {
  try {
    const fields = fs
      .readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Samples a process's resident set every `everyMs` until stopped; returns the peak and the samples' count. */
export function sampleRss(pid: number, everyMs = 25): { stop: () => { peak: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
    samples++;
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { peak, samples };
    },
  };
}

export const fmtMiB = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
export const fmtRate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
export const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
/** The middle value; for an even count the mean of the two middle ones. */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
