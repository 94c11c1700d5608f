import type { TargetState } from '$lib/api';

/** Target states in the order the chart stacks them (progress left to right, then trouble). */
export const TARGET_ORDER: Exclude<TargetState, 'healthy'>[] = [
  'installed',
  'installing',
  'downloaded',
  'bundled',
  'pending',
  'overdue',
  'failed',
  'rolled_back',
  'skipped',
];

/** One colour per target state, readable on white and distinct for common colour blindness (Okabe–Ito). */
export const TARGET_COLOURS: Record<Exclude<TargetState, 'healthy'>, string> = {
  installed: '#009E73',
  installing: '#56B4E9',
  downloaded: '#0072B2',
  bundled: '#8fb8d8',
  pending: '#c8ccd2',
  overdue: '#E69F00',
  failed: '#D55E00',
  rolled_back: '#CC79A7',
  skipped: '#efeff1',
};

/** "12 %" (a share 0..1) in the app's language. */
export function percent(share: number | null | undefined, locale: string): string {
  if (share === null || share === undefined) return '—';
  return new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(share);
}

/** A duration as a message key and its number, for `$t`. */
export function durationKey(seconds: number): { key: string; n: number } {
  if (seconds < 60) return { key: 'rollouts.duration.underMinute', n: 0 };
  const minutes = seconds / 60;
  if (minutes < 60) return { key: 'rollouts.duration.minutes', n: Math.ceil(minutes) };
  const hours = minutes / 60;
  if (hours < 48) return { key: 'rollouts.duration.hours', n: Math.round(hours * 2) / 2 };
  return { key: 'rollouts.duration.days', n: Math.round(hours / 24) };
}

/** A comma-separated field as a list (empty parts dropped). */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A `datetime-local` value (local time, minutes) for an instant (a Date or epoch milliseconds), and back to ISO. */
export function toLocalInput(at: Date | number): string {
  const d = new Date(at);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(v: string): string {
  return new Date(v).toISOString();
}
