import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FAILED,
  ROLLOUT_EVENTS,
  ROLLOUT_STATES,
  TARGET_SIGNALS,
  TARGET_STATES,
  WAITING,
  WAVE_EVENTS,
  WAVE_STATES,
  emptyCounts,
  judgeWave,
  rolloutNext,
  signalOfReport,
  targetNext,
  totalOf,
  waveNext,
  type TargetSignal,
} from './machine.ts';
import type { RolloutState, TargetState, WaveState } from '../../db/schema/index.ts';

// The legal edges, written out independently of the transition tables, as docs/rollouts.md draws them.
const ROLLOUT_EDGES = new Set([
  'draft>scheduled',
  'draft>cancelled',
  'scheduled>running',
  'scheduled>paused',
  'scheduled>cancelled',
  'running>paused',
  'running>completed',
  'running>cancelled',
  'paused>running',
  'paused>cancelled',
]);
const WAVE_EDGES = new Set([
  'pending>preparing',
  'pending>open',
  'preparing>open',
  'open>succeeded',
  'open>failed',
  'open>paused',
  'paused>open',
  'failed>open',
  'paused>succeeded',
  'failed>succeeded',
  ...['pending', 'preparing', 'open', 'paused', 'failed'].map((s) => `${s}>cancelled`),
]);
const LIVE: TargetState[] = [
  'pending',
  'bundled',
  'downloaded',
  'installing',
  'installed',
  'failed',
  'rolled_back',
  'overdue',
];
const TARGET_EDGES = new Set([
  'pending>bundled',
  'pending>downloaded',
  'pending>installing',
  'bundled>downloaded',
  'bundled>installing',
  'downloaded>installing',
  'overdue>installing',
  ...LIVE.flatMap((s) =>
    ['installed', 'failed', 'rolled_back'].filter((t) => t !== s).map((t) => `${s}>${t}`),
  ),
  ...WAITING.map((s) => `${s}>overdue`),
  'failed>pending',
  'rolled_back>pending',
  'overdue>pending',
  ...LIVE.filter((s) => s !== 'installed').map((s) => `${s}>skipped`),
]);

const policyArb = fc.record({
  successThreshold: fc.double({ min: 0.01, max: 1, noNaN: true }),
  failureThreshold: fc.double({ min: 0.01, max: 1, noNaN: true }),
  soakMinutes: fc.integer({ min: 0, max: 600 }),
});

describe('rollout state machine (property-based)', () => {
  it('should only ever take the drawn rollout transitions, and never leave completed or cancelled', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ROLLOUT_EVENTS), { maxLength: 40 }), (events) => {
        let s: RolloutState = 'draft';
        for (const e of events) {
          const next = rolloutNext(s, e);
          if (next === null) continue;
          expect(ROLLOUT_EDGES.has(`${s}>${next}`)).toBe(true);
          expect(s === 'completed' || s === 'cancelled').toBe(false);
          s = next;
        }
        expect(ROLLOUT_STATES).toContain(s);
      }),
    );
  });

  it('should only ever take the drawn wave transitions, with succeeded and cancelled final', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...WAVE_STATES),
        fc.array(fc.constantFrom(...WAVE_EVENTS), { maxLength: 40 }),
        (start, events) => {
          let s: WaveState = start;
          for (const e of events) {
            const next = waveNext(s, e);
            if (next === null) continue;
            expect(WAVE_EDGES.has(`${s}>${next}`)).toBe(true);
            s = next;
          }
          for (const e of WAVE_EVENTS) {
            expect(waveNext('succeeded', e)).toBeNull();
            expect(waveNext('cancelled', e)).toBeNull();
          }
        },
      ),
    );
  });

  it('should move targets only along legal edges, with skipped final and installs never sliding back to progress states', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TARGET_STATES),
        fc.array(fc.constantFrom(...TARGET_SIGNALS), { maxLength: 60 }),
        (start, signals) => {
          let s: TargetState = start;
          for (const sig of signals) {
            const next = targetNext(s, sig);
            if (next === null) continue;
            expect(next).not.toBe(s);
            expect(TARGET_EDGES.has(`${s}>${next}`), `${s} --${sig}--> ${next}`).toBe(true);
            if (s === 'installed') expect(['installed', 'failed', 'rolled_back']).toContain(next);
            s = next;
          }
          for (const sig of TARGET_SIGNALS) expect(targetNext('skipped', sig)).toBeNull();
        },
      ),
    );
  });

  it("should keep a wave's counts adding up to its sites whatever signals arrive, with healthy never above installed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...TARGET_SIGNALS), fc.boolean()), { maxLength: 300 }),
        (n, signals) => {
          const states: TargetState[] = Array.from({ length: n }, () => 'pending');
          const healthy: boolean[] = Array.from({ length: n }, () => false);
          for (const [i, sig, ok] of signals) {
            const k = i % n;
            const next = targetNext(states[k]!, sig as TargetSignal);
            if (next === null) continue;
            states[k] = next;
            healthy[k] = next === 'installed' && ok;
          }
          const c = emptyCounts();
          states.forEach((s, k) => {
            c[s]++;
            if (healthy[k]) c.healthy++;
          });
          expect(totalOf(c)).toBe(n);
          expect(c.healthy).toBeLessThanOrEqual(c.installed);
        },
      ),
    );
  });

  it('should succeed a wave only at the success threshold after the soak time, and never past the failure threshold', () => {
    const countsArb = fc.record(
      Object.fromEntries(TARGET_STATES.map((s) => [s, fc.integer({ min: 0, max: 200 })])) as Record<
        TargetState,
        fc.Arbitrary<number>
      >,
    );
    fc.assert(
      fc.property(
        countsArb,
        fc.integer({ min: 0, max: 200 }),
        policyArb,
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 1, max: 2000 }),
        (states, healthyRaw, policy, minutesOpen, deadlineMinutes) => {
          const c = { ...states, healthy: Math.min(healthyRaw, states.installed) };
          const openedAt = new Date(Date.UTC(2026, 0, 1));
          const now = new Date(openedAt.getTime() + minutesOpen * 60_000);
          const deadlineAt = new Date(openedAt.getTime() + deadlineMinutes * 60_000);
          const v = judgeWave(c, policy, { openedAt, deadlineAt }, now);
          const denominator = totalOf(c) - c.skipped;
          if (denominator === 0) {
            expect(v.verdict).toBe('succeed');
            return;
          }
          const failures = c.failed + c.rolled_back;
          expect(v.successShare).toBeCloseTo(c.healthy / denominator, 12);
          expect(v.failureShare).toBeCloseTo(failures / denominator, 12);
          if (v.verdict === 'succeed') {
            expect(v.successShare).toBeGreaterThanOrEqual(policy.successThreshold);
            expect(minutesOpen).toBeGreaterThanOrEqual(policy.soakMinutes);
            expect(failures === 0 || v.failureShare < policy.failureThreshold).toBe(true);
          }
          if (failures > 0 && v.failureShare >= policy.failureThreshold) expect(v.verdict).toBe('fail');
          if (v.verdict === 'wait') expect(now.getTime()).toBeLessThan(deadlineAt.getTime());
        },
      ),
    );
  });

  it('should read reports as the installer writes them', () => {
    expect(signalOfReport({ source: 'heartbeat', version: '2.0.0', status: 'healthy' }, '2.0.0')).toBe(
      'installed',
    );
    expect(signalOfReport({ source: 'heartbeat', version: '1.0.0', status: 'healthy' }, '2.0.0')).toBeNull();
    expect(signalOfReport({ source: 'heartbeat', version: '1.0.0', status: 'failed' }, '2.0.0')).toBeNull();
    expect(signalOfReport({ source: 'receipt_code', version: '2.0.0', status: 'failed' }, '2.0.0')).toBe(
      'failed',
    );
    expect(signalOfReport({ source: 'receipt_code', version: '1.0.0', status: 'rolled_back' }, '2.0.0')).toBe(
      'rolled_back',
    );
    expect(signalOfReport({ source: 'heartbeat', version: '1.0.0', status: 'installing' }, '2.0.0')).toBe(
      'installing',
    );
    expect(FAILED).toEqual(['failed', 'rolled_back']);
  });
});
