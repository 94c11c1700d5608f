import type { RolloutPolicy, RolloutState, TargetState, WaveState } from '../../db/schema/index.ts';

/**
 * The rollout state machine, as pure functions: which transitions exist, and what a wave's counts
 * decide. The services apply these to rows; the property tests (machine.test.ts) drive them with
 * random event sequences. docs/rollouts.md draws the same machine.
 */

export const ROLLOUT_STATES = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'completed',
  'cancelled',
] as const satisfies readonly RolloutState[];
export const WAVE_STATES = [
  'pending',
  'preparing',
  'open',
  'succeeded',
  'failed',
  'paused',
  'cancelled',
] as const satisfies readonly WaveState[];
export const TARGET_STATES = [
  'pending',
  'bundled',
  'downloaded',
  'installing',
  'installed',
  'failed',
  'rolled_back',
  'skipped',
  'overdue',
] as const satisfies readonly TargetState[];

export type RolloutEvent = 'schedule' | 'start' | 'pause' | 'resume' | 'complete' | 'cancel';
const ROLLOUT: Record<RolloutState, Partial<Record<RolloutEvent, RolloutState>>> = {
  draft: { schedule: 'scheduled', cancel: 'cancelled' },
  scheduled: { start: 'running', pause: 'paused', cancel: 'cancelled' },
  running: { pause: 'paused', complete: 'completed', cancel: 'cancelled' },
  // Resuming a rollout paused before it started puts it back to running: the scheduler opens what is due.
  paused: { resume: 'running', cancel: 'cancelled' },
  completed: {},
  cancelled: {},
};
export const ROLLOUT_EVENTS = [
  'schedule',
  'start',
  'pause',
  'resume',
  'complete',
  'cancel',
] as const satisfies readonly RolloutEvent[];

export function rolloutNext(from: RolloutState, event: RolloutEvent): RolloutState | null {
  return ROLLOUT[from][event] ?? null;
}

export type WaveEvent = 'prepare' | 'open' | 'succeed' | 'fail' | 'pause' | 'resume' | 'cancel';
const WAVE: Record<WaveState, Partial<Record<WaveEvent, WaveState>>> = {
  pending: { prepare: 'preparing', open: 'open', cancel: 'cancelled' },
  preparing: { open: 'open', cancel: 'cancelled' },
  open: { succeed: 'succeeded', fail: 'failed', pause: 'paused', cancel: 'cancelled' },
  paused: { resume: 'open', succeed: 'succeeded', cancel: 'cancelled' },
  // A failed wave opens again when the rollout is resumed (after retrying or excluding sites).
  failed: { resume: 'open', succeed: 'succeeded', cancel: 'cancelled' },
  succeeded: {},
  cancelled: {},
};
export const WAVE_EVENTS = [
  'prepare',
  'open',
  'succeed',
  'fail',
  'pause',
  'resume',
  'cancel',
] as const satisfies readonly WaveEvent[];

export function waveNext(from: WaveState, event: WaveEvent): WaveState | null {
  return WAVE[from][event] ?? null;
}

/** What moves a site's target: a bundle build, a download, a report, the deadline, a person. */
export type TargetSignal =
  | 'bundled'
  | 'downloaded'
  | 'installing'
  | 'installed'
  | 'failed'
  | 'rolled_back'
  | 'deadline'
  | 'retry'
  | 'exclude';
export const TARGET_SIGNALS = [
  'bundled',
  'downloaded',
  'installing',
  'installed',
  'failed',
  'rolled_back',
  'deadline',
  'retry',
  'exclude',
] as const satisfies readonly TargetSignal[];

const PROGRESS: TargetState[] = ['pending', 'bundled', 'downloaded', 'installing', 'installed'];
/** States in which the site still owes us news: the deadline turns them overdue. */
export const WAITING: readonly TargetState[] = ['pending', 'bundled', 'downloaded', 'installing'];
export const FAILED: readonly TargetState[] = ['failed', 'rolled_back'];

/**
 * The next state of a target, or null when the signal does not apply. Progress only moves forward
 * (a late "downloaded" does not undo "installing"); a report of the outcome (installed, failed,
 * rolled back) applies from any live state, including overdue — a silent site may report late — and
 * a later report supersedes an earlier outcome (a retried install). Skipped is final.
 */
export function targetNext(from: TargetState, signal: TargetSignal): TargetState | null {
  if (from === 'skipped') return null;
  switch (signal) {
    case 'bundled':
    case 'downloaded':
    case 'installing': {
      if (from === 'overdue') return signal === 'installing' ? 'installing' : null;
      const i = PROGRESS.indexOf(from);
      const j = PROGRESS.indexOf(signal);
      return i >= 0 && j > i && from !== 'installed' ? signal : null;
    }
    case 'installed':
      return from === 'installed' ? null : 'installed';
    case 'failed':
      return from === 'failed' ? null : 'failed';
    case 'rolled_back':
      return from === 'rolled_back' ? null : 'rolled_back';
    case 'deadline':
      return WAITING.includes(from) ? 'overdue' : null;
    case 'retry':
      return from === 'failed' || from === 'rolled_back' || from === 'overdue' ? 'pending' : null;
    case 'exclude':
      return from === 'installed' ? null : 'skipped';
  }
}

export type TargetCounts = Record<TargetState, number> & { healthy: number };

export function emptyCounts(): TargetCounts {
  return {
    pending: 0,
    bundled: 0,
    downloaded: 0,
    installing: 0,
    installed: 0,
    failed: 0,
    rolled_back: 0,
    skipped: 0,
    overdue: 0,
    healthy: 0,
  };
}

export function totalOf(c: TargetCounts): number {
  return TARGET_STATES.reduce((n, s) => n + c[s], 0);
}

export type WaveVerdict = {
  verdict: 'succeed' | 'fail' | 'wait';
  reason: string;
  successShare: number;
  failureShare: number;
};

/**
 * What a wave's counts decide. The denominator leaves skipped sites out. Failures are checked
 * first: a wave that crossed the failure threshold fails even if it also reached success. Success
 * needs the share installed-and-healthy and the soak time since the wave opened. Past its deadline,
 * a wave that has not succeeded fails ("deadline"): its silent sites are overdue by then.
 * An empty wave (every site skipped) succeeds.
 */
export function judgeWave(
  c: TargetCounts,
  policy: Pick<RolloutPolicy, 'successThreshold' | 'failureThreshold' | 'soakMinutes'>,
  wave: { openedAt: Date; deadlineAt: Date },
  now: Date,
): WaveVerdict {
  const denominator = totalOf(c) - c.skipped;
  if (denominator <= 0)
    return { verdict: 'succeed', reason: 'every site was skipped', successShare: 1, failureShare: 0 };
  const successShare = c.healthy / denominator;
  const failureShare = (c.failed + c.rolled_back) / denominator;
  if (c.failed + c.rolled_back > 0 && failureShare >= policy.failureThreshold) {
    return { verdict: 'fail', reason: 'failure threshold crossed', successShare, failureShare };
  }
  const soaked = now.getTime() - wave.openedAt.getTime() >= policy.soakMinutes * 60_000;
  if (successShare >= policy.successThreshold && soaked)
    return { verdict: 'succeed', reason: 'success threshold reached', successShare, failureShare };
  if (now.getTime() >= wave.deadlineAt.getTime())
    return {
      verdict: 'fail',
      reason: 'deadline passed before the success threshold',
      successShare,
      failureShare,
    };
  return {
    verdict: 'wait',
    reason: successShare >= policy.successThreshold ? 'soaking' : 'waiting for reports',
    successShare,
    failureShare,
  };
}

/**
 * The target signal a report implies, given the version the rollout installs. A receipt (code, file,
 * manual) is the outcome of an install, so its failure counts whatever version it names; a heartbeat
 * that says "failed" counts only on the new version (a site unhealthy on its old one has not failed
 * this install). A healthy or degraded report on the new version is an install.
 */
export function signalOfReport(
  report: { source: string; version: string | null; status: string },
  targetVersion: string,
): TargetSignal | null {
  const onTarget = report.version === targetVersion;
  switch (report.status) {
    case 'installing':
      return 'installing';
    case 'rolled_back':
      return 'rolled_back';
    case 'failed':
      return onTarget || report.source !== 'heartbeat' ? 'failed' : null;
    case 'healthy':
    case 'degraded':
    case 'installed':
      return onTarget ? 'installed' : null;
    default:
      return null;
  }
}
