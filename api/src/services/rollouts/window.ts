/**
 * Maintenance windows as sites carry them: "daily 22:00-04:00", "sat-sun 08:00-12:00", "mon 01:00-03:00",
 * in the site's time zone. A window that ends before it starts runs past midnight; its day is the
 * day it starts on.
 */
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const WINDOW =
  /^(mon|tue|wed|thu|fri|sat|sun|daily)(?:-(mon|tue|wed|thu|fri|sat|sun))? (\d{2}):(\d{2})-(\d{2}):(\d{2})$/i;

const formatters = new Map<string, Intl.DateTimeFormat>();
function localParts(at: Date, timeZone: string): { day: number; minutes: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  const parts = f.formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return {
    day: DAYS.indexOf(get('weekday').slice(0, 3).toLowerCase()),
    minutes: Number(get('hour')) * 60 + Number(get('minute')),
  };
}

function dayIn(day: number, from: string, to: string | undefined): boolean {
  if (from.toLowerCase() === 'daily') return true;
  const a = DAYS.indexOf(from.toLowerCase());
  const b = to ? DAYS.indexOf(to.toLowerCase()) : a;
  return a <= b ? day >= a && day <= b : day >= a || day <= b;
}

/** Whether `at` falls in the window; a site without a window (or with one we cannot read) may install any time. */
export function inMaintenanceWindow(window: string | null, timeZone: string, at: Date): boolean {
  if (!window) return true;
  const m = WINDOW.exec(window.trim());
  if (!m) return true;
  let local: { day: number; minutes: number };
  try {
    local = localParts(at, timeZone);
  } catch {
    local = localParts(at, 'UTC');
  }
  const start = Number(m[3]) * 60 + Number(m[4]);
  const end = Number(m[5]) * 60 + Number(m[6]);
  if (start === end) return dayIn(local.day, m[1]!, m[2]);
  if (start < end) return local.minutes >= start && local.minutes < end && dayIn(local.day, m[1]!, m[2]);
  // Past midnight: the evening part on a window day, or the early part on the day after one.
  if (local.minutes >= start) return dayIn(local.day, m[1]!, m[2]);
  if (local.minutes < end) return dayIn((local.day + 6) % 7, m[1]!, m[2]);
  return false;
}
