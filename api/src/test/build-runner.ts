import { count, sql } from 'drizzle-orm';
import { testRegistryPolicy } from '@outpost/bundler/test-support';
import { bundleJobs } from '../db/schema/index.ts';
import type { Db } from '../db/types.ts';
import type { SecretBox } from '../lib/secret-box.ts';
import type { ObjectStore } from '../lib/object-store.ts';
import { BuildRunner } from '../services/bundles/build-runner.ts';

type RunnerOptions = ConstructorParameters<typeof BuildRunner>[0];

/**
 * A build runner on the test app's store and key, retrying and polling at test speed (tests exercise
 * unreachable registries and should not wait for production backoff); `over` changes the rest.
 */
export function testBuildRunner(
  db: Db,
  app: { objectStore: ObjectStore; secretBox: SecretBox },
  over: Partial<RunnerOptions> = {},
): BuildRunner {
  return new BuildRunner({
    db,
    store: app.objectStore,
    secretBox: app.secretBox,
    logger: () => {},
    registry: { retries: 0, backoffMs: 10, timeoutMs: 5000, ...testRegistryPolicy() },
    backoffMs: 10,
    leaseMs: 10_000,
    pollMs: 20,
    waitMs: 10,
    ...over,
  });
}

/** Runs `runner` until no build job is queued or running (retries included), or throws after `timeoutMs`. */
export async function settleBuilds(db: Db, runner: BuildRunner, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await runner.runOnce()) continue;
    const [open] = await db
      .select({ n: count() })
      .from(bundleJobs)
      .where(sql`state in ('queued', 'running')`);
    if (open!.n === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the build queue did not settle');
}
