import type { Role } from '$lib/api';
import { get } from 'svelte/store';
import { currentLocale, t } from '$lib/i18n';

/**
 * Intl formatters follow the app's language (not the browser's), so a French page says
 * "il y a 2 minutes" and an English one "2 minutes ago". One formatter per language and options.
 */
function formatter<T>(make: (locale: string) => T): () => T {
  const made = new Map<string, T>();
  return () => {
    const locale = currentLocale();
    let f = made.get(locale);
    if (!f) made.set(locale, (f = make(locale)));
    return f;
  };
}

const dateTime = formatter((l) => new Intl.DateTimeFormat(l, { dateStyle: 'medium', timeStyle: 'short' }));
const dateOnly = formatter((l) => new Intl.DateTimeFormat(l, { dateStyle: 'medium' }));

export function formatDateTime(iso: string | null | undefined, empty = '—'): string {
  return iso ? dateTime().format(new Date(iso)) : empty;
}

export function formatDate(iso: string | null | undefined, empty = '—'): string {
  return iso ? dateOnly().format(new Date(iso)) : empty;
}

export const ROLE_LABELS: Record<Role, string> = {
  owner: 'states.role.owner',
  admin: 'states.role.admin',
  operator: 'states.role.operator',
  viewer: 'states.role.viewer',
  coordinator: 'states.role.coordinator',
};

/** One line per role, for role pickers. */
export const ROLE_HINTS: Record<Role, string> = {
  owner: 'states.roleHint.owner',
  admin: 'states.roleHint.admin',
  operator: 'states.roleHint.operator',
  viewer: 'states.roleHint.viewer',
  coordinator: 'states.roleHint.coordinator',
};

const relative = formatter((l) => new Intl.RelativeTimeFormat(l, { numeric: 'auto' }));
const RELATIVE_STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['week', 7 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** "3 days ago", "in 2 hours", "just now"; pair it with formatDateTime in a title for the exact time. */
export function formatRelative(iso: string | null | undefined, empty?: string, now = Date.now()): string {
  if (!iso) return empty ?? get(t)('common.never');
  const diff = Date.parse(iso) - now;
  if (Math.abs(diff) < 60_000) return get(t)('common.justNow');
  for (const [unit, ms] of RELATIVE_STEPS) {
    if (Math.abs(diff) >= ms) return relative().format(Math.trunc(diff / ms), unit);
  }
  return get(t)('common.justNow');
}

const dayMonth = formatter((l) => new Intl.DateTimeFormat(l, { day: 'numeric', month: 'short' }));
const dayMonthYear = formatter(
  (l) => new Intl.DateTimeFormat(l, { day: 'numeric', month: 'short', year: 'numeric' }),
);
const hourMinute = formatter((l) => new Intl.DateTimeFormat(l, { hour: '2-digit', minute: '2-digit' }));

/** "20 Nov at 09:41" (the year only when it is not this one). */
export function formatDayAndTime(iso: string): string {
  const d = new Date(iso);
  const day = d.getFullYear() === new Date().getFullYear() ? dayMonth().format(d) : dayMonthYear().format(d);
  return get(t)('common.dayAtTime', { values: { day, time: hourMinute().format(d) } });
}

const count = formatter((l) => new Intl.NumberFormat(l));

export function formatCount(n: number): string {
  return count().format(n);
}

/** A capped total as the API gives it: "10,000+" when the count stopped at the cap. */
export function formatTotal(total: number, exact: boolean): string {
  return exact ? count().format(total) : `${count().format(total)}+`;
}

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

export function formatBytes(n: number | null | undefined, empty = '—'): string {
  if (n === null || n === undefined) return empty;
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0
    ? get(t)('common.bytes', { values: { n: formatCount(v) } })
    : `${formatCount(Number(v.toFixed(v < 10 ? 1 : 0)))} ${UNITS[i]}`;
}

/** A link speed as people quote it: "256 kbit/s", "1 Mbit/s", "2.5 Mbit/s". */
export function formatBandwidth(kbps: number): string {
  if (kbps < 1000) return `${Math.round(kbps)} kbit/s`;
  const mbit = kbps / 1000;
  return `${Number.isInteger(mbit) || mbit >= 10 ? Math.round(mbit) : mbit.toFixed(1)} Mbit/s`;
}

/** A rough duration for a download: "under a minute", "about 20 min", "about 2.5 h", "about 3 days". */
export function formatDuration(seconds: number): string {
  const tr = get(t);
  if (seconds < 60) return tr('common.duration.underMinute');
  const minutes = seconds / 60;
  if (minutes < 60) return tr('common.duration.minutes', { values: { n: formatCount(Math.ceil(minutes)) } });
  const hours = minutes / 60;
  if (hours < 10)
    return tr('common.duration.hours', { values: { n: formatCount(Math.round(hours * 2) / 2) } });
  if (hours < 48) return tr('common.duration.hours', { values: { n: formatCount(Math.round(hours)) } });
  return tr('common.duration.days', { values: { n: formatCount(Math.round(hours / 24)) } });
}

/** "about 3 h at 1 Mbit/s", or null when the site's bandwidth is not known. */
export function formatDownloadTime(seconds: number | null, kbps: number | null): string | null {
  return seconds === null || !kbps
    ? null
    : get(t)('common.durationAt', {
        values: { duration: formatDuration(seconds), speed: formatBandwidth(kbps) },
      });
}

const percent = formatter((l) => new Intl.NumberFormat(l, { style: 'percent', maximumFractionDigits: 0 }));
const percentFine = formatter(
  (l) => new Intl.NumberFormat(l, { style: 'percent', maximumFractionDigits: 1 }),
);

/** A share (0–1) as "42 %"; below 10 % with one decimal, so 0.4 % does not read as 0 %. */
export function formatShare(share: number): string {
  return share > 0 && share < 0.1 ? percentFine().format(share) : percent().format(share);
}

const decimal = formatter((l) => new Intl.NumberFormat(l, { maximumFractionDigits: 2 }));

export function formatDecimal(n: number): string {
  return decimal().format(n);
}

/** A calendar day as the API sends it ("2026-12-03", UTC) → "3 Dec 2026" in the app's language. */
export function formatDay(day: string): string {
  return dayMonthYear().format(new Date(`${day}T12:00:00Z`));
}
