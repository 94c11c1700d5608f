import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { SitePartScript } from '@outpost/bundler';
// Its own entry point: it reads the file system, which the Cloudflare Worker's bundle must not pull in.
import { loadEdgeScripts } from '@outpost/bundler/edge-scripts';
import type { Logger } from '../../lib/logger.ts';
import {
  buildImageArchive,
  buildSiteBundles,
  classifyFailure,
  failImageArchive,
  failSiteBundle,
  newBatchCache,
  type BuildDeps,
} from './build.ts';
import { claimJobs, completeJobs, deferJob, failJob, renewLease, type JobRow } from './jobs.ts';

export interface BuildRunnerOptions extends Omit<BuildDeps, 'scripts'> {
  logger: Logger;
  scripts?: SitePartScript[];
  runnerId?: string;
  /** How long a claimed job stays ours without renewal; a dead runner's jobs return after it. Default 60 s. */
  leaseMs?: number;
  /** Pause between polls when the queue is empty. Default 1 s. */
  pollMs?: number;
  /** First retry delay; doubles per attempt. Default 5 s. */
  backoffMs?: number;
  /** Site bundles claimed at once (their parts are built side by side). Default 100. */
  batch?: number;
  /** Site parts written to the object store at once. Default 16. */
  concurrency?: number;
  /** When an archive is not ready yet, how long a bundle job waits before looking again. Default 2 s. */
  waitMs?: number;
}

/**
 * Consumes the build queue: images archives first (one at a time per runner: they are large), then
 * site bundles in batches. Any number of runners, in `npm start` or `npm run build-runner`, on any number
 * of machines, share one queue.
 */
export class BuildRunner {
  readonly id: string;
  private readonly o: Required<
    Pick<BuildRunnerOptions, 'leaseMs' | 'pollMs' | 'backoffMs' | 'batch' | 'concurrency' | 'waitMs'>
  > &
    BuildRunnerOptions;
  private readonly deps: BuildDeps;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(options: BuildRunnerOptions) {
    this.id = options.runnerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.o = {
      leaseMs: 60_000,
      pollMs: 1000,
      backoffMs: 5000,
      batch: 100,
      concurrency: 16,
      waitMs: 2000,
      ...options,
    };
    this.deps = {
      db: options.db,
      store: options.store,
      secretBox: options.secretBox,
      scripts: options.scripts ?? loadEdgeScripts(),
      ...(options.registry ? { registry: options.registry } : {}),
      ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        let worked = false;
        try {
          worked = await this.runOnce();
        } catch (e) {
          this.o.logger('error', 'build runner: queue error', {
            runner: this.id,
            error: (e as Error).message,
          });
        }
        if (!worked && this.running)
          await new Promise<void>((r) => {
            this.wake = r;
            setTimeout(r, this.o.pollMs);
          });
      }
    })();
  }

  /** Stops claiming; resolves when the job in hand is finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Claims and runs what is due once; true when there was something to do. */
  async runOnce(): Promise<boolean> {
    const [archiveJob] = await claimJobs(this.o.db, {
      runnerId: this.id,
      kind: 'image-archive',
      limit: 1,
      leaseMs: this.o.leaseMs,
    });
    if (archiveJob) {
      await this.withLease([archiveJob], () => this.runArchive(archiveJob));
      return true;
    }
    const jobs = await claimJobs(this.o.db, {
      runnerId: this.id,
      kind: 'site-bundle',
      limit: this.o.batch,
      leaseMs: this.o.leaseMs,
    });
    if (jobs.length === 0) return false;
    await this.withLease(jobs, () => this.runSiteBundles(jobs));
    return true;
  }

  /** Runs until nothing is due (tests and the CLI use it). */
  async drain(maxRounds = 10_000): Promise<void> {
    for (let i = 0; i < maxRounds && (await this.runOnce()); i++);
  }

  private async withLease(jobs: JobRow[], work: () => Promise<void>): Promise<void> {
    const ids = jobs.map((j) => j.id);
    const timer = setInterval(
      () => {
        renewLease(this.o.db, this.id, ids, this.o.leaseMs).catch((e) =>
          this.o.logger('warn', 'build runner: lease renewal failed', {
            runner: this.id,
            error: (e as Error).message,
          }),
        );
      },
      Math.max(50, Math.floor(this.o.leaseMs / 3)),
    );
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
  }

  private async runArchive(job: JobRow): Promise<void> {
    const started = Date.now();
    try {
      await buildImageArchive(this.deps, job.targetId);
      await completeJobs(this.o.db, [job.id], this.id);
      this.o.logger('info', 'images archive ready', {
        runner: this.id,
        archiveId: job.targetId,
        ms: Date.now() - started,
      });
    } catch (e) {
      const failure = classifyFailure(e);
      const final = await failJob(this.o.db, job, this.id, failure, this.o.backoffMs);
      if (final) await failImageArchive(this.o.db, job.targetId, failure);
      this.o.logger(
        final ? 'error' : 'warn',
        final ? 'images archive failed' : 'images archive attempt failed; will retry',
        {
          runner: this.id,
          archiveId: job.targetId,
          attempt: job.attempts,
          code: failure.code,
          error: failure.message,
        },
      );
    }
  }

  private async runSiteBundles(jobs: JobRow[]): Promise<void> {
    const outcomes = await buildSiteBundles(
      this.deps,
      jobs.map((j) => j.targetId),
      newBatchCache(),
      this.o.concurrency,
    );
    const done: string[] = [];
    for (const job of jobs) {
      const outcome = outcomes.get(job.targetId)!;
      if (!('error' in outcome)) {
        if (outcome.state === 'waiting') await deferJob(this.o.db, job, this.id, this.o.waitMs);
        else done.push(job.id);
        continue;
      }
      const failure = classifyFailure(outcome.error);
      const final = await failJob(this.o.db, job, this.id, failure, this.o.backoffMs);
      if (final) await failSiteBundle(this.o.db, job.targetId, failure);
      this.o.logger(final ? 'error' : 'warn', final ? 'bundle failed' : 'bundle attempt failed; will retry', {
        runner: this.id,
        bundleId: job.targetId,
        attempt: job.attempts,
        code: failure.code,
        error: failure.message,
      });
    }
    await completeJobs(this.o.db, done, this.id);
  }
}
