import { guardedFetch } from '../registry/guarded-fetch.ts';

/**
 * The tests' `OUTPOST_REGISTRY_ALLOW_INSECURE`: the `host:port` of every registry, token service and
 * stand-in server a test started on loopback (added when it starts, removed when it stops). Nothing
 * else on loopback is allowed, so the destination policy is exercised by every test that fetches.
 */
export const testAllowInsecure = new Set<string>();

/** Registry client options for tests: the allow-list above and the guarded fetch, as the entry points pass them. */
export function testRegistryPolicy(): { allowInsecure: Set<string>; fetch: typeof globalThis.fetch } {
  return { allowInsecure: testAllowInsecure, fetch: policyFetch };
}
const policyFetch = guardedFetch(testAllowInsecure);

/** Allows one more test server (e.g. a stand-in registry written in a test); returns a function that removes it. */
export function allowTestHost(hostPort: string): () => void {
  testAllowInsecure.add(hostPort);
  return () => {
    testAllowInsecure.delete(hostPort);
  };
}
