import type { Logger } from './logger.ts';

/**
 * Stops the process cleanly on SIGINT or SIGTERM: `stop` runs, then the process exits. A second
 * signal exits at once, and so does a `stop` that outlasts `graceMs` (a build in progress is left to
 * its lease: another worker takes it up again), so that stopping never hangs.
 */
export function onShutdown(log: Logger, stop: (signal: string) => Promise<void>, graceMs = 30_000): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log('warn', 'stopping at once (second signal)', { signal });
      process.exit(1);
    }
    stopping = true;
    setTimeout(() => {
      log('warn', `still stopping after ${graceMs / 1000} s; exiting`, { signal });
      process.exit(1);
    }, graceMs).unref();
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log('error', 'stopping failed', { signal, err: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
