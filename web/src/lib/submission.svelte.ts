import { handleError, type Problem } from '$lib/api';

export interface RunOptions {
  /**
   * Stay busy after success: the next page takes over, and on a slow link an emptied, active form
   * invites typing it all again (sign-in, joining).
   */
  keepBusy?: boolean;
  /** Words a failure other than as `handleError` does (e.g. to list problems beside the form). */
  onError?: (err: unknown) => Problem | null;
}

/**
 * What a form shows while it sends: `busy` (buttons disabled, "Saving…") and the `problem` of the
 * last attempt. Every submit handler used to spell this out as busy/problem/try/catch/finally.
 *
 * @example
 * const form = new Submission();
 * async function submit(event: SubmitEvent) {
 *   event.preventDefault();
 *   await form.run(async () => onCreated(await api.tokens.create({ name })));
 * }
 * // <ProblemNotice problem={form.problem} /> … <button disabled={form.busy}>
 */
export class Submission {
  busy = $state(false);
  /** Set by a failed run, cleared when the next one starts; a component may also set it (a failed load). */
  problem = $state<Problem | null>(null);

  /** Runs `work`, busy meanwhile; a failure becomes `problem`. True when it succeeded. */
  async run(work: () => unknown, options: RunOptions = {}): Promise<boolean> {
    this.busy = true;
    this.problem = null;
    try {
      await work();
      if (!options.keepBusy) this.busy = false;
      return true;
    } catch (err) {
      this.problem = options.onError ? options.onError(err) : handleError(err);
      this.busy = false;
      return false;
    }
  }
}
